"""The server's view of the chain: the deployment file (written by `make chain` /
`python -m openmetering.chain up`) and read-only calls to its contracts.

The registry on-chain is the one place a meter's device address lives; the server asks it
(cached briefly) rather than keeping a second copy.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from pathlib import Path
from typing import Any

from . import attestation


class ChainUnavailable(Exception):
    """No deployment configured, or the chain's RPC does not answer."""


class Deployment:
    def __init__(self, doc: dict[str, Any], rpc_url: str | None = None):
        self.doc = doc
        self.chain_id = int(doc["chain_id"])
        self.verifier = doc["contracts"]["AttestationVerifier"]["address"]
        self.rpc_url = rpc_url or doc["rpc_url"]
        self._w3 = None
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, rpc_url: str | None = None) -> Deployment:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ChainUnavailable(f"cannot read deployment file {path}: {exc}") from None
        return cls(doc, rpc_url)

    def w3(self):
        if self._w3 is None:
            from web3 import HTTPProvider, Web3

            self._w3 = Web3(HTTPProvider(self.rpc_url, request_kwargs={"timeout": 5}))
        return self._w3

    def contract(self, name: str):
        c = self.doc["contracts"][name]
        return self.w3().eth.contract(address=c["address"], abi=c["abi"])

    def meter(self, meter_id: str, max_age_s: float = 10.0) -> dict[str, Any]:
        """MeterRegistry.meter(keccak256(meter_id)) as a dict; device is the zero address for
        a meter that is not registered. Cached for max_age_s (a rotation shows within it)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(meter_id)
            if hit and now - hit[0] < max_age_s:
                return hit[1]
        try:
            m = self.contract("MeterRegistry").functions.meter(
                attestation.meter_key(meter_id)).call()
        except Exception as exc:  # requests/web3 errors of every kind: the chain is not there
            raise ChainUnavailable(f"chain RPC {self.rpc_url} did not answer: "
                                   f"{type(exc).__name__}") from None
        keys = ("device", "ratedPowerW", "epoch", "revoked", "owner", "commissionedAt",
                "gridZone")
        out = dict(zip(keys, m, strict=True))
        with self._lock:
            self._cache[meter_id] = (now, out)
        return out

    def verified_block(self, digest: bytes) -> int:
        """AttestationVerifier.verifiedAt(digest): the block it was minted in, 0 if not."""
        try:
            return self.contract("AttestationVerifier").functions.verifiedAt(digest).call()
        except Exception as exc:
            raise ChainUnavailable(f"chain RPC {self.rpc_url} did not answer: "
                                   f"{type(exc).__name__}") from None


@functools.cache
def _cached(path: str, rpc_url: str, mtime: float) -> Deployment:
    return Deployment.load(path, rpc_url or None)


def deployment(cfg) -> Deployment:
    """The configured deployment (reloaded when the file changes), or ChainUnavailable."""
    path = getattr(cfg, "deployment_file", "")
    if not path:
        raise ChainUnavailable("no chain deployment configured (deployment_file)")
    try:
        mtime = Path(path).stat().st_mtime
    except OSError as exc:
        raise ChainUnavailable(f"deployment file {path}: {exc.strerror}") from None
    return _cached(str(path), getattr(cfg, "chain_rpc_url", ""), mtime)
