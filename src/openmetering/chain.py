"""Local chain stage: build the contracts, run anvil with its state in a file, deploy, register
meters, and measure gas. Everything runs offline: forge/anvil from tools/node, solc through
tools/solc/solc.

    omd chain build                  # forge build (contracts/out)
    omd chain up [--port 8545]       # anvil (state in var/chain/) + deploy + oracle + local DON
                                     #   (make chain; the server comes after it)
    omd chain oracle-deploy          # Functions router/coordinator + consumer on a dev chain
    omd chain don                    # only the local DON loop
    omd chain register METER_ID 0xDEVICE [--owner 0x..] [--zone DE] [--rated-w 5000]
    omd chain gas-report             # docs/generated/gas-report.md          (make contracts)

`up` writes the deployment file (var/chain/local.json): chain id, RPC URL, the EIP-712 domain,
every contract's address and ABI, the zones' feeds and the roles. The server, the oracle and
the tests read that file and nothing else. On a second `up` the chain state is reloaded from
the file and the deployment is reused if its code is still there.

The local chain uses anvil's well-known development accounts (public keys, public private
keys): account 0 is admin and registrar, account 1 the relayer holding SUBMITTER_ROLE,
account 2 the demo meter owner. Never use them anywhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from . import kicad
from .errors import DesignError, ToolError, guarded
from .paths import ProjectPaths, project

P: ProjectPaths = project()
CHAIN_ID = 31337
# a demo factor for the local chain only: labelled as such wherever it appears
DEMO_ZONE = "DE"
DEMO_FACTOR_G_PER_KWH = 380
DEMO_SOURCE = "demo value for the local chain (MockV3Aggregator), not a published emission factor"
FEED_DECIMALS = 8
MAX_FUTURE_SKEW_S = 300
FACTOR_MAX_AGE_S = 400 * 86400
CONTRACT_NAMES = ("MeterRegistry", "AttestationVerifier", "EnergyToken", "CarbonCredit",
                  "MockV3Aggregator")


class ChainError(DesignError):
    """The chain refused something (a revert, named) or cannot be reached."""


def tool(name: str) -> str:
    exe = P.node_bin / name
    if not exe.exists():
        raise ToolError(f"{P.rel(exe)} missing: run scripts/setup.sh (npm tools in tools/node)")
    return str(exe)


def build(quiet: bool = True) -> None:
    """forge build; the artifacts in contracts/out are what gets deployed."""
    r = kicad.run([tool("forge"), "build", "--skip", "test"], what="forge build",
                  cwd=P.contracts)
    if not quiet:
        print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "forge build: ok")


def forge_test(*args: str):
    """forge test (unit, fuzz, invariant) in contracts/; the caller checks the result."""
    return kicad.run([tool("forge"), "test", *args], what="forge test", cwd=P.contracts,
                     check=False)


def slither(project_dir: Path | None = None) -> list[dict[str, Any]]:
    """Slither's findings on the project's sources (not its dependencies or tests).

    The build goes to a temporary folder (slither's own compile step would run `forge clean`
    on contracts/out), and slither runs from its own venv (it pins web3 < 8)."""
    project_dir = project_dir or P.contracts
    if not P.slither.exists():
        raise ToolError(f"{P.rel(P.slither)} missing: run scripts/setup.sh (slither venv)")
    with tempfile.TemporaryDirectory(prefix="omd-slither-") as tmp:
        kicad.run([tool("forge"), "build", "--build-info", "--skip", "./test/**", "--skip",
                   "./script/**", "--out", f"{tmp}/out", "--cache-path", f"{tmp}/cache"],
                  what="forge build (for slither)", cwd=project_dir)
        env = dict(os.environ, PATH=f"{P.node_bin}:{os.environ.get('PATH', '')}")
        r = kicad.run([str(P.slither), ".", "--foundry-ignore-compile", "--foundry-out-directory",
                       f"{tmp}/out", "--filter-paths", "node_modules", "--json",
                       f"{tmp}/slither.json"], what="slither", cwd=project_dir, env=env,
                      check=False)
        try:
            doc = json.loads(Path(f"{tmp}/slither.json").read_text())
        except (OSError, ValueError):
            raise ToolError("slither produced no report:\n" + r.stdout[-2000:]
                            + r.stderr[-3000:]) from None
    if not doc.get("success"):
        raise ToolError(f"slither failed: {doc.get('error')}")
    return doc.get("results", {}).get("detectors", [])


def artifact(name: str) -> dict[str, Any]:
    """ABI and creation bytecode of a contract from forge's output (build() first)."""
    hits = sorted(P.contracts_out.glob(f"*/{name}.json"))
    if not hits:
        build()
        hits = sorted(P.contracts_out.glob(f"*/{name}.json"))
    if not hits:
        raise ToolError(f"no forge artifact for {name} in {P.rel(P.contracts_out)}")
    data = json.loads(hits[0].read_text())
    return {"abi": data["abi"], "bytecode": data["bytecode"]["object"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Anvil:
    """An anvil process on 127.0.0.1; state kept in state_file when given."""

    def __init__(self, port: int | None = None, state_file: Path | None = None,
                 timestamp: int | None = None, log: Path | None = None):
        self.port = port or free_port()
        self.state_file = state_file
        self.timestamp = timestamp
        self.log = log
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Anvil:
        cmd = [tool("anvil"), "--host", "127.0.0.1", "--port", str(self.port),
               "--chain-id", str(CHAIN_ID), "--hardfork", "cancun"]
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--state", str(self.state_file), "--state-interval", "2"]
        if self.timestamp is not None:
            cmd += ["--timestamp", str(self.timestamp)]
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = kicad.spawn(cmd, what="anvil", log=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ToolError(f"anvil exited with {self.proc.returncode} "
                                f"(port {self.port} busy?)")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ToolError(f"anvil did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None:
            kicad.stop(self.proc)  # SIGINT: anvil writes --state on a clean exit
        self.proc = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def web3(url: str):
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 30}))
    if not w3.is_connected():
        raise ChainError(f"no Ethereum JSON-RPC at {url}")
    return w3


def decode_error(data: str | bytes, abis: list[list[dict[str, Any]]] | None = None) -> str:
    """'Name(arg, ...)' of a custom-error revert, from the contracts' ABIs (web3 8 gives the raw
    revert data in ContractCustomError.data)."""
    from eth_abi import decode
    from eth_utils import keccak, to_checksum_address

    raw = bytes.fromhex(data[2:] if isinstance(data, str) and data.startswith("0x") else data) \
        if isinstance(data, str) else bytes(data)
    if abis is None:
        abis = [artifact(n)["abi"] for n in CONTRACT_NAMES]
    for abi in abis:
        for e in abi:
            if e.get("type") != "error":
                continue
            types = [i["type"] for i in e["inputs"]]
            sig = f"{e['name']}({','.join(types)})"
            if keccak(sig.encode())[:4] == raw[:4]:
                args = decode(types, raw[4:])
                shown = ["0x" + a.hex() if isinstance(a, bytes) else
                         to_checksum_address(a) if t == "address" else str(a)
                         for a, t in zip(args, types, strict=True)]
                return f"{e['name']}({', '.join(shown)})"
    return "0x" + raw.hex()


def _send(w3, fn, sender: str) -> dict[str, Any]:
    """Send a contract call from an unlocked dev account; raise with the revert if it fails."""
    from web3.exceptions import ContractCustomError

    try:
        tx = fn.transact({"from": sender})
    except ContractCustomError as exc:
        raise ChainError(f"reverted: {decode_error(exc.data)}") from None
    rcpt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    if rcpt["status"] != 1:
        raise ChainError(f"transaction {tx.hex()} reverted")
    return rcpt


def _deploy(w3, name: str, sender: str, *args) -> tuple[Any, dict[str, Any]]:
    art = artifact(name)
    c = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    rcpt = _send(w3, c.constructor(*args), sender)
    return w3.eth.contract(address=rcpt["contractAddress"], abi=art["abi"]), rcpt


def zone_id(zone: str) -> bytes:
    """bytes32 grid zone id: the zone name's ASCII, right-padded (as Solidity's bytes32("DE"))."""
    b = zone.encode("ascii")
    if not b or len(b) > 32:
        raise ValueError("a grid zone is 1-32 ASCII characters")
    return b.ljust(32, b"\0")


def deploy(url: str, out: Path | None = P.deployment, zone: str = DEMO_ZONE,
           factor_g_per_kwh: float = DEMO_FACTOR_G_PER_KWH) -> dict[str, Any]:
    """Deploy registry, verifier (which deploys both tokens) and a demo zone feed; grant the
    relayer SUBMITTER_ROLE. Returns the deployment document (also written to `out`)."""
    from eth_utils import keccak

    w3 = web3(url)
    admin, relayer = w3.eth.accounts[0], w3.eth.accounts[1]
    spec = json.loads(P.attestation.read_text())
    dom = spec["eip712"]["domain"]
    registry, r0 = _deploy(w3, "MeterRegistry", admin, admin)
    verifier, _ = _deploy(w3, "AttestationVerifier", admin, registry.address, admin, dom["name"],
                          dom["version"], MAX_FUTURE_SKEW_S)
    answer = int(round(factor_g_per_kwh * 10**FEED_DECIMALS))
    feed, _ = _deploy(w3, "MockV3Aggregator", admin, FEED_DECIMALS, answer)
    energy_addr = verifier.functions.energy().call()
    carbon_addr = verifier.functions.carbon().call()
    carbon = w3.eth.contract(address=carbon_addr, abi=artifact("CarbonCredit")["abi"])
    source_hash = keccak(DEMO_SOURCE.encode())
    _send(w3, carbon.functions.setZoneFactor(zone_id(zone), feed.address, FACTOR_MAX_AGE_S,
                                             DEMO_SOURCE, source_hash), admin)
    submitter = verifier.functions.SUBMITTER_ROLE().call()
    _send(w3, verifier.functions.grantRole(submitter, relayer), admin)
    addresses = {"MeterRegistry": registry.address, "AttestationVerifier": verifier.address,
                 "EnergyToken": energy_addr, "CarbonCredit": carbon_addr,
                 "MockV3Aggregator": feed.address}
    doc = {
        "description": "Deployment of contracts/ on a local anvil chain (omd chain up). "
                       "Read by omd-server, the oracle and the tests.",
        "network": "local",
        "chain_id": w3.eth.chain_id,
        "rpc_url": url,
        "deployed_block": r0["blockNumber"],
        "eip712": {"name": dom["name"], "version": dom["version"], "chainId": w3.eth.chain_id,
                   "verifyingContract": verifier.address},
        "accounts": {"admin": admin, "registrar": admin, "relayer": relayer,
                     "demo_owner": w3.eth.accounts[2]},
        "roles": {"SUBMITTER_ROLE": "0x" + submitter.hex(),
                  "REGISTRAR_ROLE": "0x" + registry.functions.REGISTRAR_ROLE().call().hex()},
        "zones": {zone: {"feed": feed.address, "decimals": FEED_DECIMALS,
                         "factor_g_per_kwh": factor_g_per_kwh, "max_age_s": FACTOR_MAX_AGE_S,
                         "source": DEMO_SOURCE, "source_hash": "0x" + source_hash.hex(),
                         "mock": True}},
        "contracts": {n: {"address": addresses[n], "abi": artifact(n)["abi"]}
                      for n in CONTRACT_NAMES},
    }
    if out is not None:
        write_deployment(doc, out)
    return doc


def write_deployment(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def load_deployment(path: Path = P.deployment) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ChainError(f"no deployment file {path}: run `make chain`") from None


def contract(w3, dep: dict[str, Any], name: str):
    c = dep["contracts"][name]
    return w3.eth.contract(address=c["address"], abi=c["abi"])


def deployed(url: str, dep: dict[str, Any]) -> bool:
    """True if the chain at url still holds this deployment's verifier code."""
    try:
        w3 = web3(url)
    except ChainError:
        return False
    addr = dep["contracts"]["AttestationVerifier"]["address"]
    return w3.eth.chain_id == dep["chain_id"] and len(w3.eth.get_code(addr)) > 0


def register(dep: dict[str, Any], meter_id: str, device: str, owner: str | None = None,
             zone: str = DEMO_ZONE, rated_power_w: int = 10_000, url: str | None = None) -> str:
    """Register a meter's device address (the registrar is the deployment's admin account)."""
    w3 = web3(url or dep["rpc_url"])
    reg = contract(w3, dep, "MeterRegistry")
    owner = owner or dep["accounts"]["demo_owner"]
    rcpt = _send(w3, reg.functions.register(meter_id, w3.to_checksum_address(device),
                                            w3.to_checksum_address(owner), zone_id(zone),
                                            rated_power_w), dep["accounts"]["registrar"])
    return "0x" + rcpt["transactionHash"].hex().removeprefix("0x")


def up(port: int = 8545, state: Path = P.chain_dir / "anvil-state.json",
       out: Path = P.deployment, server_url: str = "http://127.0.0.1:8080",
       with_oracle: bool = True) -> None:  # pragma: no cover - long-running command
    """Run anvil in the foreground with state in a file; deploy unless already deployed; then
    the Chainlink Functions oracle and the local DON loop (chain -> deploy -> DON; the
    server comes after, reading the deployment file)."""
    from . import oracle

    build(quiet=False)
    anvil = Anvil(port=port, state_file=state, log=state.parent / "anvil.log").start()
    don = None
    try:
        dep = None
        if out.exists():
            dep = load_deployment(out)
            if not deployed(anvil.url, dep) or dep.get("rpc_url") != anvil.url:
                dep = None
        if dep is None:
            dep = deploy(anvil.url, out)
            print(f"deployed; addresses in {out}", flush=True)
        else:
            print(f"chain state reloaded from {state}; deployment {out} is current", flush=True)
        if with_oracle:
            if "oracle" not in dep:
                dep = oracle.deploy(dep, server_url, out)
                print(f"Functions oracle deployed; the DON fetches from {server_url}", flush=True)
            elif dep["oracle"]["base_url"] != server_url:
                dep = oracle.set_base_url(dep, server_url, out)
            don = oracle.Don(dep, state.parent / "don-state.json",
                             log=state.parent / "don.log").start()
            print(f"local DON running (log {P.rel(state.parent / 'don.log')}); dev chain only: "
                  "its reports skip the OCR signatures", flush=True)
        for n in ("MeterRegistry", "AttestationVerifier", "EnergyToken", "CarbonCredit",
                  "FunctionsConsumer"):
            if n in dep["contracts"]:
                print(f"  {n:20s} {dep['contracts'][n]['address']}", flush=True)
        print(f"anvil on {anvil.url} (chain id {dep['chain_id']}); Ctrl-C stops it", flush=True)
        while anvil.proc.poll() is None and (don is None or don.proc.poll() is None):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if don is not None:
            don.stop()
        anvil.stop()


# -- gas report ---------------------------------------------------------------------------------
def gas_report(out: Path | None = P.gas_report) -> str:
    """Gas of registering a meter and of submitting attestations, measured on a fresh anvil
    with fixed inputs (so the figures are reproducible), as a Markdown page."""
    from omd_server import attestation as att

    t0 = 1_722_000_000
    build()
    with Anvil(timestamp=t0) as anvil:
        dep = deploy(anvil.url, None)
        w3 = web3(anvil.url)
        vec = json.loads(P.attestation_vectors.read_text())
        rows = []
        reg = contract(w3, dep, "MeterRegistry")
        rcpt = _send(w3, reg.functions.register("meter-01", vec["address"],
                                                dep["accounts"]["demo_owner"],
                                                zone_id(DEMO_ZONE), 10_000),
                     dep["accounts"]["registrar"])
        rows.append(("register a meter", rcpt["gasUsed"]))
        w3.provider.make_request("evm_increaseTime", [10 * 900])
        w3.provider.make_request("evm_mine", [])
        ver = contract(w3, dep, "AttestationVerifier")
        start = w3.eth.get_block("latest")["timestamp"] - 9 * 900
        start -= start % 900
        counters = [10_000, 2_000_010_000, 4_500_010_000, 4_500_010_000]
        names = ["first attestation (baseline, mints nothing)",
                 "attestation mint, first credit to the owner (new balances)",
                 "attestation mint, steady state",
                 "attestation with zero export (night)"]
        for k, (exp, name) in enumerate(zip(counters, names, strict=True)):
            doc = {"meterId": "meter-01", "seq": k + 1, "intervalStart": start + k * 900,
                   "intervalEnd": start + (k + 1) * 900, "exportMj": exp, "importMj": 50 * k,
                   "firstReadingSeq": 1 + 90 * k, "readingCount": 90,
                   "readingsRoot": "0x" + bytes([k + 1]).hex() * 32,
                   "chainId": dep["chain_id"],
                   "verifyingContract": dep["contracts"]["AttestationVerifier"]["address"]}
            doc["signature"] = att.sign(doc, vec["private_key"])
            rcpt = _send(w3, ver.functions.submit(att.abi_tuple(doc),
                                                  bytes.fromhex(doc["signature"][2:])),
                         dep["accounts"]["relayer"])
            rows.append((name, rcpt["gasUsed"]))
        carbon = contract(w3, dep, "CarbonCredit")
        rcpt = _send(w3, carbon.functions.retire(100_000, "Alice Example", "household 2026"),
                     dep["accounts"]["demo_owner"])
        rows.append(("retire aC for a beneficiary", rcpt["gasUsed"]))
    lines = [
        "# Gas report",
        "",
        "Gas used by the transactions of the token flow, measured by "
        "`omd chain gas-report` on a fresh local anvil (cancun) with fixed "
        "inputs; regenerated by `make contracts`, so the figures are the build's, never typed. "
        "Each includes the 21,000 base cost and calldata.",
        "",
        "| transaction | gas |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {gas:,} |" for name, gas in rows]
    mint = rows[3][1]
    lines += [
        "",
        f"One attestation mint costs about **{mint:,} gas** (steady state). What it costs in "
        "money is gas × the network's gas price × the coin's price; at 1 gwei that is "
        f"{mint / 1e9:.6f} ETH. A meter attesting every 15 minutes sends 35,040 a year.",
        "",
    ]
    text = "\n".join(lines)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
    return text


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="omd chain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build", help="forge build (contracts/out)")
    u = sub.add_parser("up", help="anvil with its state in a file, deployed once (Ctrl-C stops)")
    u.add_argument("--port", type=int, default=8545)
    u.add_argument("--state", type=Path, default=P.chain_dir / "anvil-state.json")
    u.add_argument("--out", type=Path, default=P.deployment)
    u.add_argument("--server-url", default="http://127.0.0.1:8080",
                   help="where the DON fetches attestations (the omd-server)")
    u.add_argument("--no-oracle", action="store_true", help="contracts only, no Functions DON")
    o = sub.add_parser("oracle-deploy", help="deploy the Functions oracle + consumer onto a "
                       "running dev chain (adds it to the deployment file)")
    o.add_argument("--server-url", default="http://127.0.0.1:8080")
    o.add_argument("--deployment", type=Path, default=P.deployment)
    dn = sub.add_parser("don", help="run only the local DON loop (Ctrl-C stops)")
    dn.add_argument("--deployment", type=Path, default=P.deployment)
    dn.add_argument("--state", type=Path, default=P.chain_dir / "don-state.json")
    dm = sub.add_parser("demo", help="the whole path: broker, chain, oracle, DON, server, a "
                        "simulated meter (make demo)")
    dm.add_argument("--intervals", type=int, default=4)
    dm.add_argument("--once", action="store_true", help="exit when done instead of running on")
    d = sub.add_parser("deploy", help="deploy onto a running dev chain (unlocked accounts)")
    d.add_argument("--rpc", default="http://127.0.0.1:8545")
    d.add_argument("--out", type=Path, default=P.deployment)
    r = sub.add_parser("register", help="register a meter's device address")
    r.add_argument("meter_id")
    r.add_argument("device", help="the address `provision` printed on the meter")
    r.add_argument("--owner", help="receives mJ and aC (default: the demo owner account)")
    r.add_argument("--zone", default=DEMO_ZONE)
    r.add_argument("--rated-w", type=int, default=10_000, help="the inverter's rated power")
    r.add_argument("--deployment", type=Path, default=P.deployment)
    g = sub.add_parser("gas-report", help="measure gas on a fresh anvil -> Markdown page")
    g.add_argument("--out", type=Path, default=P.gas_report)
    return ap


def run(a: argparse.Namespace) -> None:
    try:
        if a.cmd == "build":
            build(quiet=False)
        elif a.cmd == "up":
            up(a.port, a.state, a.out, a.server_url, not a.no_oracle)
        elif a.cmd == "demo":
            from . import demo

            demo.run(a.intervals, a.once)
        elif a.cmd == "oracle-deploy":
            from . import oracle

            build()
            dep = oracle.deploy(load_deployment(a.deployment), a.server_url, a.deployment)
            print(json.dumps({k: dep["oracle"][k] for k in ("router", "coordinator", "don_id",
                                                            "subscription_id")}, indent=1))
        elif a.cmd == "don":
            from . import oracle

            don = oracle.Don(load_deployment(a.deployment), a.state).start()
            print(f"local DON running, log {don.state_file.with_suffix('.log')}; Ctrl-C stops")
            try:
                while don.proc.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            finally:
                don.stop()
        elif a.cmd == "deploy":
            build()
            dep = deploy(a.rpc, a.out)
            print(json.dumps({n: c["address"] for n, c in dep["contracts"].items()}, indent=1))
        elif a.cmd == "register":
            tx = register(load_deployment(a.deployment), a.meter_id, a.device, a.owner, a.zone,
                          a.rated_w)
            print(f"registered {a.meter_id}: tx {tx}")
        elif a.cmd == "gas-report":
            print(gas_report(a.out))
    except ValueError as exc:  # a bad zone name or address from the command line
        raise DesignError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    return guarded(run, parser().parse_args(argv))
