"""Done-when of the oracle: a real mosquitto, anvil with the contracts, the Chainlink Functions
router and coordinator from @chainlink/functions-toolkit with the local DON loop (simulateScript
in Deno, then the test helper's report), the real omd-server process with its requester, and
the firmware's App/Attestor code path for a simulated meter over several intervals.

Asserted: every interval minted exactly once with mJ and aC equal to the signed deltas; Home
Assistant's retained MQTT sensors carry the balances; the public API lists the intervals and
`omd-server verify` verifies one. Across a DON outage and a server restart while a request is
on its way (the DON then finds the server down: a retryable failure), requests resume and
nothing is lost or doubled. Tamper cases: an altered batch fails verification; a forged
attestation (planted in the server's database, as a compromised server would) reverts on-chain
and is recorded as failed; a replay is refused at request time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from omd_server import attestation as ref
from omd_server import verify
from web3.exceptions import ContractCustomError

from openmetering import chain, oracle

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
for p in (str(FW), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import attest  # noqa: E402,F401
import config  # noqa: E402
import main  # noqa: E402
import net  # noqa: E402

import contract as fwcontract  # noqa: E402
from firmware.tools import bundle, simdevice  # noqa: E402

pytestmark = pytest.mark.slow
METER = "sun-02"
ATT_PERIOD = 900
READ_S = 60
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OMD_")}


class Server:
    def __init__(self, tmp: Path, deployment: Path, mqtt_port: int, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.db = tmp / "omd.db"
        self.cfg = tmp / "omd.toml"
        self.cfg.write_text(
            f'database_url = "sqlite:///{self.db}"\nimage_dir = "{tmp}/img"\n'
            f'host = "127.0.0.1"\nport = {port}\ndeployment_file = "{deployment}"\n'
            f'mqtt_host = "127.0.0.1"\nmqtt_port = {mqtt_port}\n'
            "oracle_requester = true\noracle_poll_s = 0.3\noracle_backoff_s = 0.5\n"
            "public_data = true\n")
        self.logpath = tmp / "server.log"
        self.proc = None

    def cli(self, *args, check=True):
        return subprocess.run([sys.executable, "-m", "omd_server.cli", *args, "--config",
                               str(self.cfg)], env=_env(), capture_output=True, text=True,
                              check=check, timeout=120)

    def start(self):
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "omd_server.cli", "serve",
                                      "--config", str(self.cfg)], env=_env(), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if self.get("/api/v1/health")[1]["status"] == "ok":
                    return
            assert self.proc.poll() is None, self.logpath.read_text()[-3000:]
            time.sleep(0.1)
        raise TimeoutError("server not healthy")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


class Retained:
    """Every retained message under a prefix, as a fresh subscriber (Home Assistant) sees it."""

    @staticmethod
    def snapshot(port: int, topics: list[str], wait: float = 0.8) -> dict[str, dict]:
        got: dict[str, dict] = {}
        c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        c.on_message = lambda cl, u, m: got.__setitem__(m.topic, m.payload.decode())
        c.connect("127.0.0.1", port)
        for t in topics:
            c.subscribe(t)
        c.loop_start()
        time.sleep(wait)
        c.loop_stop()
        c.disconnect()
        return got


def wait_for(pred, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oracle")
    procs = []
    port = chain.free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    mosq = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    procs.append(mosq)
    chain.build()
    anvil = chain.Anvil(timestamp=int(time.time()) - 2 * 86400, log=tmp / "anvil.log").start()
    dep_file = tmp / "deployment.json"
    srv_port = chain.free_port()
    dep = chain.deploy(anvil.url, None)
    dep = oracle.deploy(dep, f"http://127.0.0.1:{srv_port}", dep_file)
    don = oracle.Don(dep, tmp / "don-state.json", log=tmp / "don.log")
    srv = Server(tmp, dep_file, port, srv_port)
    try:
        yield tmp, anvil, dep, srv, don, port
    finally:
        srv.stop()
        don.stop()
        anvil.stop()
        for p in procs:
            p.terminate()
            p.wait(5)


def test_meter_to_home_assistant_through_the_oracle(world):
    tmp, anvil, dep, srv, don, mqtt_port = world
    w3 = chain.web3(anvil.url)
    consumer = chain.contract(w3, dep, "FunctionsConsumer")
    ver = chain.contract(w3, dep, "AttestationVerifier")
    energy = chain.contract(w3, dep, "EnergyToken")
    carbon = chain.contract(w3, dep, "CarbonCredit")
    registry = chain.contract(w3, dep, "MeterRegistry")
    owner = dep["accounts"]["demo_owner"]

    # the consumer holds the verifier's submitter role and nothing else
    assert ver.functions.hasRole(ver.functions.SUBMITTER_ROLE().call(), consumer.address).call()
    for c in (ver, registry, carbon):
        assert not c.functions.hasRole(b"\0" * 32, consumer.address).call()
    assert not registry.functions.hasRole(registry.functions.REGISTRAR_ROLE().call(),
                                          consumer.address).call()

    # -- provisioning and registration, then chain time moved past the intervals to come
    dev = tmp / "device"
    bundle.build(dev)
    key_path = str(dev / "device.key")
    import provision

    address = provision.device_key(key_path)
    hmac_key = srv.cli("keys", "add", METER).stdout.strip()
    don.start()
    srv.start()
    chain.register(dep, METER, address, owner=owner, rated_power_w=5_000)
    commissioned = registry.functions.meter(ref.meter_key(METER)).call()[5]
    t_start = commissioned - commissioned % ATT_PERIOD + ATT_PERIOD
    w3.provider.make_request("evm_setNextBlockTimestamp", [t_start + 6 * ATT_PERIOD + 120])
    w3.provider.make_request("evm_mine", [])

    cfg, _ = config.load(str(dev / "config.json"))
    cfg.update(meter_id=METER, key_hex=hmac_key, server_url=srv.url, interval_s=READ_S)
    cfg["attest"].update(chain_id=dep["chain_id"],
                         verifier=dep["contracts"]["AttestationVerifier"]["address"])
    att = main.attestor_of(cfg, str(dev / "contract"), str(dev / "data"), key_path)
    # the chip as minichip (constant power per interval): 75 min of device time in seconds
    dev_ = simdevice.SimDevice(
        cfg, fwcontract.load(str(dev / "contract")), str(dev / "data"),
        lambda u, b, c="application/json", h=None: net.http_post(u, b, c, h, 5),
        t_start - READ_S, chip="mini", log=lambda *a: None, attestor=att)
    app = dev_.app

    def run_interval(irms: float, export: bool = True, pump: bool = True):
        w = 231.0 * irms * 0.985 * (1 if export else -1)
        dev_.set_power(w, w - 400.0)  # the house uses 400 W of it
        for _ in range(ATT_PERIOD // READ_S):
            dev_.interval(pump)

    def status(seq: int) -> str:
        return oracle_status(consumer, seq)

    def rows() -> dict[int, dict]:
        with sqlite3.connect(srv.db) as db:
            db.row_factory = sqlite3.Row
            return {r["seq"]: dict(r) for r in db.execute(
                "SELECT * FROM oracle_requests WHERE meter_id = ?", (METER,))}

    # -- three intervals: the meter posts, the requester asks, the DON fetches, the verifier mints
    t0 = time.monotonic()
    for irms in (6.0, 2.0, 7.0):
        run_interval(irms)
    dev_.interval()  # one reading into the 4th interval closes the 3rd
    assert att.seq == 3
    wait_for(lambda: all(status(k) == "fulfilled" for k in (1, 2, 3)), 90, "intervals 1-3")
    first_three = time.monotonic() - t0

    # -- DON outage, then a server restart while interval 4's request is on its way
    don.stop()
    run_interval(5.0)
    dev_.interval()
    assert att.seq == 4
    wait_for(lambda: status(4) == "pending", 30, "request 4 sent during the DON outage")
    srv.stop()
    don.start()  # the DON comes back and finds the server down: a retryable failure
    wait_for(lambda: status(4) == "failed", 60, "request 4 failed while the server is down")
    it = consumer.functions.intervalOf(METER, 4).call()
    assert it[1] is True  # retryable
    run_interval(4.0, pump=False)  # interval 5 waits in the meter's spool
    dev_.interval(pump=False)
    srv.start()
    app.pump()
    app.pump()
    assert att.spool.pending() == 0 and app.rejected == 0 and att.seq == 5
    wait_for(lambda: all(status(k) == "fulfilled" for k in range(1, 6)), 120, "intervals 4-5")

    # -- exactly once, exactly the signed deltas
    docs = [srv.get(f"/api/v1/meters/{METER}/attestations/{k}")[1]["attestation"]
            for k in range(1, 6)]
    fulfilled = consumer.events.IntervalFulfilled().get_logs(from_block=0)
    assert sorted(e["args"]["seq"] for e in fulfilled) == [1, 2, 3, 4, 5]
    verified = ver.events.AttestationVerified().get_logs(from_block=0)
    assert sorted(e["args"]["seq"] for e in verified) == [1, 2, 3, 4, 5]
    failed = consumer.events.IntervalFailed().get_logs(from_block=0)
    assert [e["args"]["seq"] for e in failed] == [4]
    assert b"server" in bytes(failed[0]["args"]["reason"])
    zone = dep["zones"]["DE"]
    scale = 3_600_000 * 10 ** zone["decimals"]
    factor = int(zone["factor_g_per_kwh"] * 10 ** zone["decimals"])
    by_seq = {e["args"]["seq"]: e["args"] for e in fulfilled}
    deltas = [0] + [docs[k]["exportMj"] - docs[k - 1]["exportMj"] for k in range(1, 5)]
    for k, d in enumerate(deltas, start=1):
        assert by_seq[k]["mintedMj"] == d
        assert by_seq[k]["mintedMg"] == d * factor // scale
    assert energy.functions.balanceOf(owner).call() == sum(deltas) == \
        docs[4]["exportMj"] - docs[0]["exportMj"] > 0
    mg = sum(d * factor // scale for d in deltas)
    assert carbon.functions.balanceOf(owner).call() == mg > 0
    r = wait_for(lambda: (r := rows()) and all(r[k]["state"] == "fulfilled" for k in range(1, 6))
                 and r, 20, "the server's record of 1-5")
    assert r[4]["attempts"] == 2 and all(r[k]["attempts"] == 1 for k in (1, 2, 3, 5))

    # -- Home Assistant: the tokenized-energy sensors carry the balances
    def ha_state():
        got = Retained.snapshot(mqtt_port, [f"openmeter/{METER}/tokens"])
        s = got.get(f"openmeter/{METER}/tokens")
        return json.loads(s) if s else None

    want_kwh = round(sum(deltas) / 3_600_000_000, 9)
    st = wait_for(lambda: (s := ha_state()) and s["certified_energy_total"] == want_kwh and
                  s["intervals_pending"] == 0 and s, 20, "HA tokens state")
    assert st["ac_balance"] == round(mg / 1_000_000, 9)
    assert st["intervals_failed"] == 0 and st["ac_retired"] == 0
    assert st["chain_block"] >= max(e["blockNumber"] for e in fulfilled)
    assert st["last_fulfilment"].endswith("+00:00")
    configs = Retained.snapshot(mqtt_port, [f"homeassistant/sensor/{METER}/+/config"])
    tokens = {t: json.loads(v) for t, v in configs.items() if "/tokens_" in t}
    assert len(tokens) == 8
    total = tokens[f"homeassistant/sensor/{METER}/tokens_certified_energy_total/config"]
    assert (total["device_class"], total["state_class"], total["unit_of_measurement"]) == \
        ("energy", "total_increasing", "kWh")
    assert total["device"]["identifiers"] == [f"omd_{METER}"]
    # retiring aC shows as retired and as a lower balance
    rcpt = chain._send(w3, carbon.functions.retire(mg // 2, "Alice Example", "test"), owner)
    assert rcpt["status"] == 1
    st = wait_for(lambda: (s := ha_state()) and s["ac_retired"] > 0 and s, 20, "retirement")
    assert st["ac_retired"] == round((mg // 2) / 1e6, 9)
    assert st["ac_balance"] == round((mg - mg // 2) / 1e6, 9)

    # -- the public page lists the intervals; anyone verifies a batch against the chain
    code, pub = srv.get("/api/v1/public/intervals?meter_id=" + METER)
    assert code == 200 and [i["seq"] for i in pub["intervals"]] == [1, 2, 3, 4, 5]
    assert all(i["fulfil_tx"] and i["block"] for i in pub["intervals"])
    assert [i["energy_mj"] for i in pub["intervals"]] == deltas
    with urllib.request.urlopen(srv.url + "/public", timeout=10) as page:
        html = page.read().decode()
    assert all(i["fulfil_tx"] in html for i in pub["intervals"])
    assert f'/api/v1/meters/{METER}/attestations/5"' in html
    out = srv.cli("verify", "--server", srv.url, "--rpc", anvil.url, METER, "2", check=False)
    assert out.returncode == 0 and "VERIFIED" in out.stdout, out.stdout + out.stderr
    # an altered batch fails: one reading's watts changed by 0.01
    doc = verify.fetch(srv.url, METER, 2)
    doc["batch"]["readings"][3]["watts"] = round(doc["batch"]["readings"][3]["watts"] + 0.01, 2)
    checks = {c: p for c, p, _ in verify.check(doc, anvil.url)}
    assert checks["Merkle root of the batch"] is False
    assert checks["verified on-chain"] is True  # the signed attestation is on-chain; its batch is not this

    # -- a replay is refused at request time (the fee is never paid for it)
    with pytest.raises(ContractCustomError) as ei:
        consumer.functions.requestAttestation(METER, 3).call({"from": dep["accounts"]["requester"]})
    assert chain.decode_error(ei.value.data, [consumer.abi]).startswith("AlreadyRequested(")

    # -- a forged attestation (a compromised server's database) reverts on-chain, recorded failed
    forged = dict(docs[4], seq=6, intervalStart=docs[4]["intervalEnd"],
                  intervalEnd=docs[4]["intervalEnd"] + ATT_PERIOD,
                  exportMj=docs[4]["exportMj"] + 10**6)
    with sqlite3.connect(srv.db) as db:
        db.execute("INSERT INTO attestations (meter_id, seq, interval_start, interval_end, "
                   "export_mj, import_mj, first_reading_seq, reading_count, readings_root, "
                   "chain_id, verifying_contract, signature, digest, signer, received_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (METER, 6, forged["intervalStart"], forged["intervalEnd"], forged["exportMj"],
                    forged["importMj"], forged["firstReadingSeq"], forged["readingCount"],
                    forged["readingsRoot"], forged["chainId"], forged["verifyingContract"],
                    forged["signature"], "0x" + ref.digest(forged).hex(), address, 0))
    w3.provider.make_request("evm_setNextBlockTimestamp",
                             [forged["intervalEnd"] + ATT_PERIOD + 60])
    w3.provider.make_request("evm_mine", [])
    wait_for(lambda: rows().get(6, {}).get("state") == "failed", 60, "forged attestation")
    row = rows()[6]
    assert row["retryable"] == 0 and row["reason"].startswith("InvalidDeviceSignature("), row
    code, rec = srv.get(f"/api/v1/meters/{METER}/oracle")
    assert code == 200 and [(i["seq"], i["state"]) for i in rec["intervals"]] == \
        [(1, "fulfilled"), (2, "fulfilled"), (3, "fulfilled"), (4, "fulfilled"),
         (5, "fulfilled"), (6, "failed")]
    assert rec["intervals"][5]["reason"] == row["reason"]
    assert status(6) == "failed"
    assert energy.functions.totalSupply().call() == sum(deltas)
    code, body = srv.get("/api/v1/public/intervals?meter_id=" + METER)
    assert [i["seq"] for i in body["intervals"]] == [1, 2, 3, 4, 5]

    # nothing went wrong on the server side, and the DON answered each request once
    srv.stop()
    log = srv.logpath.read_text(errors="replace")
    assert '" 500' not in log and "Traceback" not in log, log[-3000:]
    answers = [json.loads(ln) for ln in (tmp / "don.log").read_text().splitlines()
               if ln.startswith("{") and '"fulfilled"' in ln]
    ids = [a["requestId"] for a in answers]
    assert len(ids) == len(set(ids)) == 7  # 5 intervals, the retried 4th, the forged 6th
    print(f"first three intervals through the oracle in {first_three:.1f} s")


def oracle_status(consumer, seq: int) -> str:
    return ("none", "pending", "fulfilled", "failed")[
        consumer.functions.intervalOf(METER, seq).call()[0]]
