"""The oracle on the local chain: Chainlink Functions' router and coordinator (from
@chainlink/functions-toolkit), our FunctionsConsumer, a funded subscription, and the local DON
loop (oracle/don.js: simulateScript in Deno, then the coordinator test helper's report).

    omd chain up                    # anvil -> contracts -> oracle -> DON (make chain)
    omd chain oracle-deploy         # onto a running dev chain with a deployment file
    omd chain don                   # only the DON loop, against the deployment file

The deployment file gains an "oracle" section (router, coordinator, DON id, subscription, the
consumer's request configuration, the requester account) and FunctionsConsumer among its
contracts. The consumer gets the verifier's SUBMITTER_ROLE and nothing else; the requester
account gets the consumer's REQUESTER_ROLE.

The coordinator here is the toolkit's FunctionsCoordinatorTestHelper: its report call skips
the DON's OCR signatures, so anyone can fulfil any request with anything. Dev chains only; a
public network uses Chainlink's own router and DON (docs/guides/oracle.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from . import chain, kicad
from .errors import ToolError
from .paths import ProjectPaths, project

P: ProjectPaths = project()
DON_JS = P.root / "oracle" / "don.js"
SOURCE_JS = P.root / "oracle" / "source.js"
# anvil's well-known development mnemonic: public keys for a public dev chain, nothing else
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = {"admin": 0, "relayer": 1, "demo_owner": 2, "don": 3, "requester": 4}
CALLBACK_GAS_LIMIT = 300_000  # the router's first tier, also the public networks' maximum
EXPIRE_AFTER_S = 300


def dev_key(role: str) -> str:
    """Private key of a dev-chain role's anvil account (derived from the public mnemonic)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    acct = Account.from_mnemonic(DEV_MNEMONIC,
                                 account_path=f"m/44'/60'/0'/0/{DEV_ACCOUNTS[role]}")
    return "0x" + bytes(acct.key).hex()


def node_env() -> dict[str, str]:
    """Node finds the toolkit in tools/node; the toolkit finds `deno` on PATH."""
    return dict(os.environ, NODE_PATH=str(P.root / "tools" / "node" / "node_modules"),
                PATH=f"{P.node_bin}:{os.environ.get('PATH', '')}")


def _node(*args: str, timeout: float = 120) -> dict[str, Any]:
    r = kicad.run(["node", str(DON_JS), *args], what="oracle/don.js", env=node_env(),
                  timeout=timeout, check=False)
    if r.returncode != 0:
        raise chain.ChainError(f"oracle/don.js {args[0]} failed: {r.stderr.strip()[-1500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def request_source() -> str:
    """oracle/source.js without its comment lines: the consumer stores the source and every
    request reads it from storage, so each byte costs gas on every request."""
    lines = SOURCE_JS.read_text(encoding="utf-8").splitlines()
    return "\n".join(ln for ln in lines if ln.strip() and not ln.lstrip().startswith("//")) + "\n"


def deploy(dep: dict[str, Any], base_url: str, out: Path | None = None,
           url: str | None = None) -> dict[str, Any]:
    """Deploy the Functions oracle and our consumer onto the dev chain of `dep`; `base_url` is
    where the DON fetches attestations (the server). Returns dep with the oracle added."""
    url = url or dep["rpc_url"]
    w3 = chain.web3(url)
    admin = dep["accounts"]["admin"]
    don = _node("deploy", "--rpc", url, "--key", dev_key("admin"))
    ver = chain.contract(w3, dep, "AttestationVerifier")
    art = chain.artifact("FunctionsConsumer")
    consumer, _ = chain._deploy(w3, "FunctionsConsumer", admin, don["router"], ver.address, admin)
    cfg = (don["subscriptionId"], CALLBACK_GAS_LIMIT, EXPIRE_AFTER_S,
           bytes.fromhex(don["donIdBytes32"][2:]), base_url, request_source(), b"")
    chain._send(w3, consumer.functions.setRequestConfig(cfg), admin)
    _node("add-consumer", "--rpc", url, "--key", dev_key("admin"), "--router", don["router"],
          "--link", don["linkToken"], "--sub", str(don["subscriptionId"]), "--consumer",
          consumer.address)
    requester = w3.eth.accounts[DEV_ACCOUNTS["requester"]]
    chain._send(w3, ver.functions.grantRole(ver.functions.SUBMITTER_ROLE().call(),
                                            consumer.address), admin)
    chain._send(w3, consumer.functions.grantRole(consumer.functions.REQUESTER_ROLE().call(),
                                                 requester), admin)
    doc = dict(dep)
    doc["contracts"] = dict(dep["contracts"], FunctionsConsumer={"address": consumer.address,
                                                                 "abi": art["abi"]})
    doc["accounts"] = dict(dep["accounts"], requester=requester,
                           don_transmitter=w3.eth.accounts[DEV_ACCOUNTS["don"]])
    doc["oracle"] = {
        "kind": "local-functions-testnet",
        "warning": "FunctionsCoordinatorTestHelper: reports skip the DON's OCR signatures. "
                   "Dev chains only.",
        "router": don["router"], "coordinator": don["coordinator"],
        "link_token": don["linkToken"], "don_id": don["donId"],
        "don_id_bytes32": don["donIdBytes32"], "subscription_id": don["subscriptionId"],
        "callback_gas_limit": CALLBACK_GAS_LIMIT, "expire_after_s": EXPIRE_AFTER_S,
        "base_url": base_url, "deployed_block": don["deployedBlock"],
        "max_response_bytes": don["maxOnChainResponseBytes"],
        "abi": don["abi"],
    }
    if out is not None:
        chain.write_deployment(doc, out)
    return doc


def set_base_url(dep: dict[str, Any], base_url: str, out: Path | None = None) -> dict[str, Any]:
    """Point the consumer's requests at another server address (admin call)."""
    w3 = chain.web3(dep["rpc_url"])
    consumer = chain.contract(w3, dep, "FunctionsConsumer")
    cur = consumer.functions.requestConfig().call()
    new = (cur[0], cur[1], cur[2], cur[3], base_url, cur[5], cur[6])
    chain._send(w3, consumer.functions.setRequestConfig(new), dep["accounts"]["admin"])
    doc = dict(dep, oracle=dict(dep["oracle"], base_url=base_url))
    if out is not None:
        chain.write_deployment(doc, out)
    return doc


class Don:
    """The local DON loop (node oracle/don.js run) as a child process."""

    def __init__(self, dep: dict[str, Any], state_file: Path, log: Path | None = None,
                 nodes: int = 4, url: str | None = None):
        self.dep, self.state_file, self.log, self.nodes = dep, state_file, log, nodes
        self.url = url or dep["rpc_url"]
        self.proc = None

    def start(self, timeout: float = 30) -> Don:
        o = self.dep["oracle"]
        args = ["node", str(DON_JS), "run", "--rpc", self.url, "--key", dev_key("don"),
                "--coordinator", o["coordinator"], "--state", str(self.state_file),
                "--from-block", str(o["deployed_block"]), "--nodes", str(self.nodes)]
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.log or self.state_file.with_suffix(".log")
        start = log.stat().st_size if log.exists() else 0
        self.proc = kicad.spawn(args, what="local DON (oracle/don.js)", log=log, env=node_env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ToolError(f"local DON exited with {self.proc.returncode}: "
                                f"{log.read_text(errors='replace')[start:][-1500:]}")
            with open(log, "rb") as fh:
                fh.seek(start)
                if b'"event":"ready"' in fh.read():
                    return self
            time.sleep(0.1)
        self.stop()
        raise ToolError(f"local DON not ready within {timeout} s (log {log})")

    def stop(self) -> None:
        if self.proc is not None:
            kicad.stop(self.proc)
        self.proc = None

    def __enter__(self) -> Don:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


