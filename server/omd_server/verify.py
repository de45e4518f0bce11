"""`omd-server verify`: check one certified interval without trusting the server or the oracle.

    omd-server verify --server https://meter.example.org --rpc http://127.0.0.1:8545 METER SEQ

1. fetch the attestation and its batch of signed readings from the server's public API;
2. recompute the batch's Merkle root (contract/attestation.json merkle) from the readings'
   canonical texts, and check the seq range is complete;
3. recover the device signature (EIP-712) and compare it with the device address the on-chain
   MeterRegistry holds for the meter;
4. read the on-chain record: AttestationVerifier.verifiedAt(digest) and the
   AttestationVerified event, whose readingsRoot must equal the recomputed root.

The chain and the verifier's address come from the attestation itself (its EIP-712 domain);
only an RPC URL of that chain is needed. Exit status 0: verified; 1: a check failed; 2: the
server or the chain could not be asked.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import attestation, contract

# the few entries of the verifier and registry ABIs this needs (a verifier needs no checkout)
ABI = [
    {"type": "function", "name": "verifiedAt", "stateMutability": "view",
     "inputs": [{"name": "digest", "type": "bytes32"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "registry", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "address"}]},
    {"type": "function", "name": "digestOf", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "tuple", "components": [
         {"name": n, "type": t} for n, t in (
             ("meterId", "bytes32"), ("seq", "uint64"), ("intervalStart", "uint64"),
             ("intervalEnd", "uint64"), ("exportMj", "uint64"), ("importMj", "uint64"),
             ("firstReadingSeq", "uint64"), ("readingCount", "uint32"),
             ("readingsRoot", "bytes32"))]}],
     "outputs": [{"name": "", "type": "bytes32"}]},
]
REGISTRY_ABI = [
    {"type": "function", "name": "meter", "stateMutability": "view",
     "inputs": [{"name": "id", "type": "bytes32"}],
     "outputs": [{"name": "", "type": "tuple", "components": [
         {"name": "device", "type": "address"}, {"name": "ratedPowerW", "type": "uint32"},
         {"name": "epoch", "type": "uint32"}, {"name": "revoked", "type": "bool"},
         {"name": "owner", "type": "address"}, {"name": "commissionedAt", "type": "uint64"},
         {"name": "gridZone", "type": "bytes32"}]}]},
]


MAX_BYTES = 50_000_000  # an hour of readings is a few hundred kB; a server sending more is refused


class Unreachable(Exception):
    pass


def fetch(server: str, meter_id: str, seq: int) -> dict[str, Any]:
    url = (f"{server.rstrip('/')}/api/v1/meters/{urllib.parse.quote(meter_id, safe='')}"
           f"/attestations/{int(seq)}")
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            body = r.read(MAX_BYTES + 1)
        if len(body) > MAX_BYTES:
            raise Unreachable(f"{url}: answer larger than {MAX_BYTES} bytes")
        return json.loads(body)
    except urllib.error.HTTPError as e:
        raise Unreachable(f"{url}: HTTP {e.code} {e.read()[:200].decode(errors='replace')}") from None
    except (OSError, ValueError) as e:
        raise Unreachable(f"{url}: {e}") from None


def check(doc: dict[str, Any], rpc: str | None) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) for one fetched attestation document."""
    from eth_utils import to_checksum_address

    a = doc.get("attestation") if isinstance(doc, dict) else None
    if not isinstance(a, dict):
        return [("attestation present", False, "the server's answer has no attestation object")]
    batch = doc.get("batch")
    readings = batch.get("readings") if isinstance(batch, dict) else None
    if not isinstance(readings, list) or not all(isinstance(r, dict) for r in readings):
        return [("batch present", False, "the server's answer has no list of readings")]
    out: list[tuple[str, bool, str]] = []
    bad = attestation.problems(a)
    out.append(("attestation well formed", not bad, "; ".join(f"{loc}: {m}" for loc, m in bad[:3])))
    if bad:
        return out
    seqs = [r.get("seq") for r in readings]
    want = list(range(a["firstReadingSeq"], a["firstReadingSeq"] + a["readingCount"]))
    out.append(("batch complete", seqs == want,
                f"{len(readings)} readings, seq {seqs[:1]}..{seqs[-1:]}; signed: {a['readingCount']}"
                f" from {a['firstReadingSeq']}"))
    try:
        root = attestation.batch_root([contract.canonical(r) for r in readings])
    except Exception as exc:  # a reading the canonical form cannot express: not a signed one
        out.append(("Merkle root of the batch", False, f"a reading has no canonical form: {exc}"))
        return out
    out.append(("Merkle root of the batch", root == a["readingsRoot"],
                f"recomputed {root}, signed {a['readingsRoot']}"))
    signer = attestation.recover(a)
    digest = attestation.digest(a)
    if rpc is None:
        out.append(("on-chain record", False, "no --rpc given: the chain was not asked"))
        return out
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(rpc, request_kwargs={"timeout": 15}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise Unreachable(f"chain RPC {rpc}: {type(exc).__name__}") from None
    out.append(("chain of the signature", chain_id == a["chainId"],
                f"RPC is chain {chain_id}, attestation signed for {a['chainId']}"))
    ver = w3.eth.contract(address=to_checksum_address(a["verifyingContract"]), abi=ABI)
    try:
        reg = w3.eth.contract(address=ver.functions.registry().call(), abi=REGISTRY_ABI)
        device = reg.functions.meter(attestation.meter_key(a["meterId"])).call()[0]
        at = ver.functions.verifiedAt(digest).call()
        onchain_digest = ver.functions.digestOf(attestation.abi_tuple(a)).call()
    except Exception as exc:
        raise Unreachable(f"reading {a['verifyingContract']} on chain {chain_id}: "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None
    out.append(("device signature", signer.lower() == device.lower(),
                f"signed by {signer}; registry device {device}"))
    out.append(("digest as the verifier computes it", onchain_digest == digest,
                "0x" + digest.hex()))
    out.append(("verified on-chain", at > 0, f"verifiedAt = block {at}" if at else
                "verifiedAt = 0: this attestation (with this root) never minted"))
    return out


def main(args) -> int:
    try:
        doc = fetch(args.server, args.meter_id, args.seq)
        results = check(doc, args.rpc)
    except Unreachable as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    ok = all(p for _, p, _ in results)
    if args.json:
        print(json.dumps({"verified": ok, "checks": [
            {"check": c, "passed": p, "detail": d} for c, p, d in results]}, indent=1))
    else:
        for c, p, d in results:
            print(f"{'ok  ' if p else 'FAIL'} {c}: {d}")
        print(f"{args.meter_id} #{args.seq}: {'VERIFIED' if ok else 'NOT VERIFIED'}")
    return 0 if ok else 1


def add_arguments(p) -> None:
    p.add_argument("meter_id")
    p.add_argument("seq", type=int)
    p.add_argument("--server", required=True, help="the meter server's base URL")
    p.add_argument("--rpc", help="JSON-RPC URL of the chain the attestation names")
    p.add_argument("--json", action="store_true", help="machine-readable result")
