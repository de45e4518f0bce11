"""Done-when for device-signed attestations: a real anvil chain with the deployed contracts, the
real omd-server process, and the firmware's App/Attestor code path (CPython, cross-checked on
the MicroPython unix port) for a simulated meter.

The meter measures and signs; its readings and attestations travel through store-and-forward
to the server; the attestations are relayed from the server's read API to the verifier (as the
oracle will). Balances must equal the signed counter deltas exactly; forged, replayed,
reordered, revoked-meter and over-limit attestations revert with their named errors (decoded
from the revert data with web3 8); the server's Merkle batch verifies against the on-chain
record, and one altered reading makes that check fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from eth_account import Account
from omd_server import attestation as ref
from web3.exceptions import ContractCustomError

from openmetering import chain

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
for p in (str(FW), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import attest  # noqa: E402
import config  # noqa: E402
import main  # noqa: E402
import net  # noqa: E402
import secp256k1  # noqa: E402

import contract as fwcontract  # noqa: E402
from firmware.tools import bundle, simdevice  # noqa: E402

METER = "sun-01"
MICROPYTHON = Path(sys.executable).parent / "micropython"
ATT_PERIOD = 900
READ_S = 60


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OMD_")}


class Server:
    def __init__(self, tmp: Path, deployment: Path):
        self.port = chain.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cfg = tmp / "omd.toml"
        self.cfg.write_text(f'database_url = "sqlite:///{tmp}/omd.db"\nimage_dir = "{tmp}/img"\n'
                            f'host = "127.0.0.1"\nport = {self.port}\n'
                            f'deployment_file = "{deployment}"\n')
        self.log = open(tmp / "server.log", "ab")
        self.proc = None

    def cli(self, *args):
        return subprocess.run([sys.executable, "-m", "omd_server.cli", *args, "--config",
                               str(self.cfg)], env=_env(), capture_output=True, text=True,
                              check=True, timeout=60).stdout

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "omd_server.cli", "serve",
                                      "--config", str(self.cfg)], env=_env(), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if self.get("/api/v1/health")[1]["status"] == "ok":
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.1)
        raise TimeoutError("server not healthy")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.log.close()

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def post(self, path, doc):
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        req = urllib.request.Request(self.url + path, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    chain.build()
    genesis = int(time.time()) - 2 * 86400
    anvil = chain.Anvil(timestamp=genesis, state_file=tmp / "anvil-state.json",
                        log=tmp / "anvil.log").start()
    dep_file = tmp / "deployment.json"
    dep = chain.deploy(anvil.url, dep_file)
    srv = Server(tmp, dep_file)
    try:
        yield tmp, anvil, dep, srv
    finally:
        srv.stop()
        anvil.stop()


def _errname(exc: ContractCustomError) -> str:
    return chain.decode_error(exc.data)


def test_meter_to_chain(world):
    tmp, anvil, dep, srv = world
    w3 = chain.web3(anvil.url)
    ver = chain.contract(w3, dep, "AttestationVerifier")
    energy = chain.contract(w3, dep, "EnergyToken")
    carbon = chain.contract(w3, dep, "CarbonCredit")
    registry = chain.contract(w3, dep, "MeterRegistry")
    relayer, owner = dep["accounts"]["relayer"], dep["accounts"]["demo_owner"]

    # -- provisioning: the device makes its key from the RNG; only the address leaves it
    dev = tmp / "device"
    bundle.build(dev)
    assert (dev / "contract" / "attestation.json").read_bytes() == \
        (ROOT / "contract" / "attestation.json").read_bytes()
    key_path = str(dev / "device.key")
    import provision

    address = provision.device_key(key_path)
    key = attest.load_key(key_path)
    hmac_key = srv.cli("keys", "add", METER).strip()
    srv.start()
    chain.register(dep, METER, address, owner=owner, rated_power_w=5_000)
    commissioned = registry.functions.meter(ref.meter_key(METER)).call()[5]

    # -- the meter runs: readings every 60 s, attestations every 900 s, over HTTP to the server
    cfg, _ = config.load(str(dev / "config.json"))
    cfg.update(meter_id=METER, key_hex=hmac_key, server_url=srv.url, interval_s=READ_S)
    cfg["attest"].update(chain_id=dep["chain_id"],
                         verifier=dep["contracts"]["AttestationVerifier"]["address"])
    att = main.attestor_of(cfg, str(dev / "contract"), str(dev / "data"), key_path)
    assert att.address == address
    t_start = commissioned - commissioned % ATT_PERIOD + ATT_PERIOD  # first whole interval
    # the chip as minichip (constant power per interval): 75 min of device time in seconds
    dev_ = simdevice.SimDevice(
        cfg, fwcontract.load(str(dev / "contract")), str(dev / "data"),
        lambda u, b, c="application/json", h=None: net.http_post(u, b, c, h, 5),
        t_start - READ_S, chip="mini", log=lambda *a: None, attestor=att)
    app = dev_.app
    # five intervals: sunny, cloudy, night (import), sunny, sunny; then one reading into the 6th
    plan = [(6.0, True), (2.0, True), (0.4, False), (7.0, True), (5.5, True)]
    seen = []
    for irms, export in plan:
        w = 231.0 * irms * 0.985 * (1 if export else -1)
        dev_.set_power(w, w - 400.0)  # the house uses 400 W of it
        for _ in range(ATT_PERIOD // READ_S):
            dev_.interval()
            seen.append(att.seq)
    dev_.interval()
    assert att.spool.pending() == 0 and app.rejected == 0
    assert att.seq == 5

    # -- the server holds five attestations, each with a complete, matching batch
    code, listing = srv.get(f"/api/v1/meters/{METER}/attestations")
    assert code == 200 and [a["attestation"]["seq"] for a in listing["attestations"]] == [1, 2, 3, 4, 5]
    full = []
    for k in range(1, 6):
        code, doc = srv.get(f"/api/v1/meters/{METER}/attestations/{k}")
        assert code == 200
        b = doc["batch"]
        assert b["complete"] and b["root_matches"] and b["stored_text_intact"], b
        assert ref.recover(doc["attestation"]) == address
        full.append(doc)
    a = [d["attestation"] for d in full]
    assert a[0]["intervalStart"] == t_start >= commissioned
    assert all(x["intervalEnd"] == y["intervalStart"] for x, y in zip(a, a[1:], strict=False))
    assert a[2]["exportMj"] - a[1]["exportMj"] == 0 and a[2]["importMj"] > a[1]["importMj"]

    # -- cross-check: the MicroPython unix port signs the very same attestations
    texts = [[ref_canonical(r) for r in d["batch"]["readings"]] for d in full]
    mp = micropython_attestations(tmp, key, dep, texts, a)
    assert mp == [d["attestation"] for d in full]

    # -- relay to the chain as the oracle will (chain time now past the intervals)
    w3.provider.make_request("evm_setNextBlockTimestamp", [a[-1]["intervalEnd"] + 60])
    w3.provider.make_request("evm_mine", [])

    def submit(doc, sig=None):
        return ver.functions.submit(ref.abi_tuple(doc), bytes.fromhex((sig or doc["signature"])[2:]))

    def send(doc, sig=None):
        fn = submit(doc, sig)
        minted = fn.call({"from": relayer})
        rcpt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": relayer}))
        assert rcpt["status"] == 1
        return minted

    def reverts(doc, sig=None) -> str:
        with pytest.raises(ContractCustomError) as ei:
            submit(doc, sig).call({"from": relayer})
        return _errname(ei.value)

    assert send(a[0]) == [0, 0]  # the baseline
    m1 = send(a[1])
    m2 = send(a[2])  # the night: nothing exported, nothing minted
    assert m2 == [0, 0]
    # reordered: interval 4 arrives before interval 3's replay... interval 5 before 4
    m4 = send(a[4])
    assert reverts(a[3]).startswith("OutOfOrder(5, 4)")
    # replayed
    assert reverts(a[1]).startswith("AttestationReplayed(")
    deltas = [a[1]["exportMj"] - a[0]["exportMj"], a[4]["exportMj"] - a[2]["exportMj"]]
    assert m1[0] == deltas[0] and m4[0] == deltas[1]
    bal = energy.functions.balanceOf(owner).call()
    assert bal == sum(deltas) == a[4]["exportMj"] - a[0]["exportMj"]
    assert energy.functions.totalSupply().call() == bal
    factor = dep["zones"]["DE"]["factor_g_per_kwh"] * 10 ** dep["zones"]["DE"]["decimals"]
    want_mg = sum(d * factor // (3_600_000 * 10 ** dep["zones"]["DE"]["decimals"]) for d in deltas)
    assert carbon.functions.balanceOf(owner).call() == want_mg == m1[1] + m4[1] > 0

    # forged: other numbers under the device's signature, or a signature by another key
    tampered = dict(a[3], seq=6, intervalStart=a[4]["intervalEnd"],
                    intervalEnd=a[4]["intervalEnd"] + ATT_PERIOD, exportMj=a[4]["exportMj"] + 10**6)
    w3.provider.make_request("evm_setNextBlockTimestamp", [tampered["intervalEnd"] + 60])
    w3.provider.make_request("evm_mine", [])
    assert reverts(tampered, a[3]["signature"]).startswith("InvalidDeviceSignature(")
    mallory = Account.create()
    assert reverts(tampered, ref.sign(tampered, mallory.key)).startswith(
        f"InvalidDeviceSignature(0x{ref.meter_key(METER).hex()}, {mallory.address}")
    # malleable twin of a genuine signature (high s, flipped v)
    genuine = sign_with_firmware(key, tampered)
    r, s, v = ref.split_signature(genuine)
    twin = "0x" + (r.to_bytes(32, "big") + (secp256k1.N - s).to_bytes(32, "big")
                   + bytes([55 - v])).hex()
    assert reverts(tampered, twin).startswith("InvalidDeviceSignature(")
    # over-limit: the device "signs" more than 5 kW could export since the last counter
    limit = 5_000 * (tampered["intervalEnd"] - a[4]["intervalEnd"]) * 1000
    greedy = dict(tampered, exportMj=a[4]["exportMj"] + limit + 1)
    assert reverts(greedy, sign_with_firmware(key, greedy)) == f"OverLimit({limit + 1}, {limit})"
    assert send(tampered, genuine)[0] == 10**6  # the same interval, honestly signed, mints

    # -- the server's batch verifies against the on-chain record; one altered reading fails
    doc = full[1]
    readings = doc["batch"]["readings"]
    rebuilt = dict(doc["attestation"], readingsRoot=firmware_root(readings))
    digest = ref.digest(rebuilt)
    assert ver.functions.verifiedAt(digest).call() > 0
    logs = ver.events.AttestationVerified().get_logs(from_block=0,
                                                      argument_filters={"digest": digest})
    assert len(logs) == 1 and "0x" + logs[0]["args"]["attestation"]["readingsRoot"].hex() == rebuilt["readingsRoot"]
    altered = [dict(r) for r in readings]
    altered[3]["watts"] = round(altered[3]["watts"] + 0.01, 2)
    forged_batch = dict(doc["attestation"], readingsRoot=firmware_root(altered))
    assert forged_batch["readingsRoot"] != rebuilt["readingsRoot"]
    assert ver.functions.verifiedAt(ref.digest(forged_batch)).call() == 0

    # -- the server refuses what the chain would refuse, with clear 4xx, never 5xx
    code, body = srv.post("/api/v1/attestations", dict(a[1], signature=twin))
    assert code == 422 and "upper half" in json.dumps(body)
    code, body = srv.post("/api/v1/attestations", dict(a[1], chainId=1))
    assert code == 422 and body["detail"][0]["loc"] == ["body", "chainId"]
    code, body = srv.post("/api/v1/attestations", dict(a[1], exportMj=2**64))
    assert code == 422 and body["detail"][0]["loc"] == ["body", "exportMj"]
    code, _ = srv.post("/api/v1/attestations", b"{not json")
    assert code == 400
    code, body = srv.post("/api/v1/attestations", dict(tampered, signature=a[3]["signature"]))
    assert code == 401 and body["detail"][0]["type"] == "auth.bad_signature"
    assert srv.post("/api/v1/attestations", a[1])[0] == 200  # identical re-send: duplicate
    other = dict(a[1], importMj=a[1]["importMj"] + 1)
    code, body = srv.post("/api/v1/attestations", dict(other, signature=sign_with_firmware(key, other)))
    assert code == 409 and body["detail"][0]["loc"] == ["body", "seq"]

    # -- a revoked meter mints nothing more
    _send(w3, registry.functions.revoke(ref.meter_key(METER), "meter replaced"), owner)
    nxt = dict(tampered, seq=7, intervalStart=tampered["intervalEnd"],
               intervalEnd=tampered["intervalEnd"] + ATT_PERIOD, exportMj=tampered["exportMj"] + 5)
    w3.provider.make_request("evm_setNextBlockTimestamp", [nxt["intervalEnd"] + 60])
    w3.provider.make_request("evm_mine", [])
    assert reverts(nxt, sign_with_firmware(key, nxt)) == \
        f"MeterRevoked(0x{ref.meter_key(METER).hex()})"
    assert energy.functions.totalSupply().call() == sum(deltas) + 10**6
    srv.log.flush()
    log = (tmp / "server.log").read_text(errors="replace")
    assert '" 500' not in log and "Traceback" not in log


def _send(w3, fn, sender):
    rcpt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    assert rcpt["status"] == 1
    return rcpt


def ref_canonical(r: dict) -> str:
    from omd_server import contract

    return contract.canonical(r)


def firmware_root(readings: list[dict]) -> str:
    """Recompute a batch's root with the firmware's own Merkle code (not the server's)."""
    tree = attest.Merkle()
    for r in readings:
        tree.add(attest.leaf(ref_canonical(r).encode()))
    return "0x" + tree.root().hex()


def sign_with_firmware(key: int, doc: dict) -> str:
    a = attest.Attestor(json.loads((ROOT / "contract" / "attestation.json").read_text()),
                        {"chainId": doc["chainId"], "verifyingContract": doc["verifyingContract"]},
                        doc["meterId"], key, str(Path(os.environ.get("TMPDIR", "/tmp")) /
                                                  f"omd-sign-{os.getpid()}"), 900)
    rec = (doc["seq"], doc["intervalStart"], doc["intervalEnd"], doc["exportMj"], doc["importMj"],
           doc["firstReadingSeq"], doc["readingCount"], bytes.fromhex(doc["readingsRoot"][2:]))
    return "0x" + secp256k1.signature_bytes(*secp256k1.sign(key, a.digest(a.message_of(rec)))).hex()


MP = r"""
import sys, json
sys.path.insert(0, FW)
import attest
with open(SPEC) as f:
    spec = json.load(f)
with open(JOB) as f:
    job = json.load(f)
a = attest.Attestor(spec, job["domain"], job["meter"], job["key"], TMP, 900)
out = []
for iv in job["intervals"]:
    for i, t in enumerate(iv["texts"]):
        rec = a.add(t.encode(), iv["first"] + i, iv["start"] + 30 + 60 * i, iv["export"], iv["import"])
        if rec:
            out.append(json.loads(a.body(rec)))
out.append(json.loads(a.body(a.close())))
print(json.dumps(out))
"""


def micropython_attestations(tmp: Path, key: int, dep: dict, texts, atts) -> list[dict]:
    """The same readings fed to attest.Attestor on the MicroPython unix port."""
    job = {"key": key, "meter": METER,
           "domain": {"chainId": dep["chain_id"],
                      "verifyingContract": dep["contracts"]["AttestationVerifier"]["address"]},
           "intervals": [{"texts": t, "first": x["firstReadingSeq"], "start": x["intervalStart"],
                          "export": x["exportMj"], "import": x["importMj"]}
                         for t, x in zip(texts, atts, strict=True)]}
    (tmp / "mp-job.json").write_text(json.dumps(job))
    (tmp / "mp.py").write_text(f"FW={str(FW)!r}\nSPEC={str(ROOT / 'contract' / 'attestation.json')!r}\n"
                               f"JOB={str(tmp / 'mp-job.json')!r}\nTMP={str(tmp / 'mp-data')!r}\n" + MP)
    p = subprocess.run([str(MICROPYTHON), str(tmp / "mp.py")], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])
