"""Device to server, end to end: the firmware's real App/driver/transport/net/mqtt code under
CPython with the metering chip simulated at its registers (firmware/tools/simdevice.py),
against the REAL omd-server (uvicorn subprocess, temp SQLite,
key provisioned through the real CLI) and a real mosquitto.

Online readings (the device's ticks_ms wrapping meanwhile), a VGA camera JPEG at the configured
quality from the driver-shaped fake camera, the server killed (the meter queues), a power-cut style
re-send (duplicates), a conflicting seq (409: logged and dropped, no loop), restart, batched
replay; then the server must hold every reading exactly once in seq order, the image hash must
match, a tampered reading / image signature must get 401, and the firmware's and server's HA
discovery for the meter must be the same entities.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FW_DIR = ROOT / "firmware"
for p in (str(FW_DIR), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import config  # noqa: E402
import evidence  # noqa: E402
import main  # noqa: E402
import mqtt as fwmqtt  # noqa: E402
import net  # noqa: E402
import spool  # noqa: E402
import transport  # noqa: E402

import contract as fwcontract  # noqa: E402
from firmware.tools import bundle, simdevice  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "firmware"))
import fake_camera  # noqa: E402
import wrap_scenario  # noqa: E402

METER = "e2e-01"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing on port {port}")


def clean_env() -> dict[str, str]:
    # the server reads OMD_* overrides: only the temp config file may configure it
    return {k: v for k, v in os.environ.items() if not k.startswith("OMD_")}


class Server:
    def __init__(self, tmp: Path, mqtt_port: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cfg = tmp / "omd.toml"
        self.cfg.write_text(
            f'database_url = "sqlite:///{tmp}/omd.db"\nimage_dir = "{tmp}/images"\n'
            f'host = "127.0.0.1"\nport = {self.port}\nmqtt_host = "127.0.0.1"\n'
            f"mqtt_port = {mqtt_port}\n")
        self.logf = open(tmp / "server.log", "ab")
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "omd_server.cli", *args, "--config",
                               str(self.cfg)], env=clean_env(), capture_output=True, text=True,
                              check=True, timeout=60).stdout

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "omd_server.cli", "serve", "--config", str(self.cfg)],
            env=clean_env(), stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, self.proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if self.get("/api/v1/health")["status"] == "ok":
                    return
            time.sleep(0.1)
        raise TimeoutError("server not healthy")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            body = r.read()
            return json.loads(body) if r.headers.get_content_type() == "application/json" else body


@pytest.fixture
def broker(tmp_path):
    assert Path(MOSQUITTO).exists(), "mosquitto not installed (Debian package 'mosquitto')"
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def server(tmp_path, broker):
    srv = Server(tmp_path, broker)
    yield srv
    srv.stop()
    srv.logf.close()


class Retained:
    """Collects retained messages under homeassistant/# as a fresh subscriber sees them."""

    @staticmethod
    def snapshot(port: int, wait: float = 0.8) -> dict[str, dict]:
        import paho.mqtt.client as paho

        got: dict[str, dict] = {}
        c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        c.on_message = lambda cl, u, m: got.__setitem__(m.topic, json.loads(m.payload))
        c.connect("127.0.0.1", port)
        c.subscribe("homeassistant/#")
        c.loop_start()
        time.sleep(wait)
        c.loop_stop()
        c.disconnect()
        return got


def test_device_to_server(tmp_path, server, broker, monkeypatch):
    t0 = time.monotonic()
    key_hex = server.cli("keys", "add", METER).strip()
    assert len(key_hex) == 64
    server.start()

    # the device's files: firmware + contract JSON, as tools/bundle.py puts them on the flash
    dev = tmp_path / "device"
    bundle.build(dev)
    ct = fwcontract.load(str(dev / "contract"))
    cfg, _ = config.load(str(dev / "config.json"))
    cfg.update(meter_id=METER, key_hex=key_hex, server_url=server.url)
    cfg["mqtt"].update(host="127.0.0.1", port=broker)

    # the device's ticks_ms() 30 s before it wraps; its NTP time an hour ago; 5 s per interval
    cfg["interval_s"] = 5
    base = int(time.time()) - 3600
    calls: list[tuple[str, int]] = []

    def http(url, body, ctype="application/json", headers=None):
        code = net.http_post(url, body, ctype, headers, timeout=5)
        calls.append((url, code))
        return code

    # the camera opened by the firmware at the configured quality and frame size
    monkeypatch.setitem(sys.modules, "camera", fake_camera.module())
    cam, status = evidence.open_camera(cfg["camera"]["frame_size"],
                                       cfg["camera"]["jpeg_quality_pct"])
    assert cam is not None, status
    logs: list[str] = []
    ev = evidence.Evidence(cam, None, cfg["camera"]["every_s"], lambda: dev_.ticks_ms(), status)
    dev_ = simdevice.SimDevice(cfg, ct, str(dev / "data"), http, base,
                               start_ms=wrap_scenario.DEVICE_PERIOD - 15_000, evidence=ev,
                               log=logs.append)
    ticks_ms = dev_.ticks_ms
    start = dev_.clock.start
    app = dev_.app
    # midday: 2.4 kW from the inverter, 1.5 kW of it exported, the rest used in the house
    dev_.set_power(2400.0, 1500.0)
    sent: dict[int, str] = {}  # seq -> sig of what the device produced

    def interval():
        r = dev_.interval()
        assert r is not None
        sent[r["seq"]] = ct.signed_body(r, app.key)[1]
        return r

    # 1. online: readings go one by one, the boot photo is uploaded and announced
    for _ in range(6):
        r = interval()
    assert app.spool.pending() == 0 and app.sent == 6
    # reading schema v2 from the chip's two channels, near the true power (uncalibrated)
    assert r["schema_version"] == 2
    assert float(r["solar_watts"]) == pytest.approx(2400.0, rel=0.05)
    assert float(r["watts"]) == pytest.approx(1500.0, rel=0.05)
    assert {u for u, _ in calls} == {app.tp.reading_url, app.tp.image_url}
    assert (app.tp.image_url, 201) in calls
    assert ticks_ms() < start  # the device's ticks wrapped in the meantime
    jpeg = cam.frames[0]  # VGA at the configured quality: the real server takes it
    image_sha = hashlib.sha256(jpeg).hexdigest()

    # HA discovery: the server announced the meter (bridge); the firmware's own announcement
    # must address the same entities with the same classes (both from homeassistant.json)
    deadline = time.monotonic() + 10
    from_server: dict[str, dict] = {}
    while time.monotonic() < deadline and len(from_server) < len(ct.ha["sensors"]):
        from_server = Retained.snapshot(broker, 0.4)
    assert len(from_server) == len(ct.ha["sensors"]), from_server.keys()
    app.mqtt = fwmqtt.connect(ct, cfg["mqtt"], METER, main.FW)
    time.sleep(0.3)
    from_device = Retained.snapshot(broker)
    assert set(from_device) == set(from_server)
    for topic, s in from_server.items():
        d = from_device[topic]
        for k in ("unique_id", "object_id", "default_entity_id", "state_topic", "device_class",
                  "state_class", "unit_of_measurement", "value_template",
                  "suggested_display_precision"):
            assert d.get(k) == s.get(k), (topic, k)
        # the device's own topic, with its payloads, is one of the server's availability
        # topics (the server adds its bridge topic: its last will covers the meters it feeds)
        mine = {"topic": d["availability_topic"], "payload_available": d["payload_available"],
                "payload_not_available": d["payload_not_available"]}
        assert mine in s["availability"] and s["availability_mode"] == "all"
        assert d["device"]["identifiers"] == s["device"]["identifiers"]
        assert d["device"]["name"] == s["device"]["name"]

    # 2. server killed: the meter keeps measuring and queues, backing off
    server.kill9()
    n_calls = len(calls)
    for _ in range(30):
        interval()
    assert app.spool.pending() == 30 and app.rejected == 0
    assert all(code == -1 for _, code in calls[n_calls:])
    assert len(calls) - n_calls < 30  # backoff: not one attempt per pass

    # 3. server back. Two things happened meanwhile: 4 queued readings reached it before a
    # power cut ate their acks (-> duplicates), and seq 11 was stored with other content, as
    # after a restored flash image (-> 409 for the device's seq 11: logged, dropped, never
    # retried). (A stored seq further ahead would make every queued seq below it a replay
    # too: the contract's seq only increases.)
    server.start()
    queued = app.spool.peek(30)
    assert [r[0] for r in queued] == list(range(7, 37))
    for rec in queued[:4]:
        assert http(app.tp.reading_url, app._body(rec), app.tp.json_type) == 201
    clash = list(queued[4])
    assert clash[0] == 11
    clash[4] -= 123  # watts, counters unchanged: a validly signed but different reading 11
    clash_body = ct.signed_body(spool.unpack(ct, tuple(clash), METER, main.FW), app.key)[0]
    assert http(app.tp.reading_url, clash_body, app.tp.json_type) == 201
    n_calls = len(calls)
    for _ in range(40):
        interval()
        if not app.spool.pending():
            break
    assert app.spool.pending() == 0
    replay = calls[n_calls:]
    # the batch holding seq 11 -> 409; one by one: 7..10 duplicates, 11 -> 409 dropped;
    # the rest as a batch again
    assert replay[:6] == [(app.tp.batch_url, 409)] + [(app.tp.reading_url, 200)] * 4 + [
        (app.tp.reading_url, 409)]
    assert (app.tp.batch_url, 200) in replay[6:]
    assert app.rejected == 1 and any("seq 11" in line for line in logs)

    # every reading exactly once, in seq order, as the device signed it (except seq 20)
    pts = server.get(f"/api/v1/meters/{METER}/readings?start=0&limit=100000")["points"]
    seqs = [p["seq"] for p in pts]
    assert seqs == sorted(seqs) == list(range(1, max(sent) + 1))
    for p in pts:
        if p["seq"] == 11:
            assert p["sig"] == json.loads(clash_body)["sig"] != sent[11]
        else:
            assert p["sig"] == sent[p["seq"]], p["seq"]
    announced = [p for p in pts if p.get("image_sha256")]
    assert [p["image_sha256"] for p in announced] == [image_sha]
    assert server.get(f"/api/v1/images/{image_sha}") == jpeg
    health = server.get("/api/v1/health")
    assert health["counters"]["rejected_replay"] >= 1

    # 4. tampering: a changed reading or a wrong image signature is refused with 401
    body = json.loads(ct.signed_body(app.last, app.key)[0])
    body["watts"] = round(body["watts"] + 1.0, 2)
    body["seq"] = max(sent) + 1000
    tampered = json.dumps(body, separators=(",", ":")).encode()
    assert net.http_post(app.tp.reading_url, tampered, app.tp.json_type) == 401
    bad = app.tp.image_headers(ct, b"\x00" * 32, image_sha)
    assert net.http_post(app.tp.image_url, jpeg, app.tp.image_type, bad) == 401
    assert transport.Transport(ct.transport, server.url, METER).action(401) == transport.RETRY
    assert len(server.get(f"/api/v1/meters/{METER}/readings?start=0&limit=100000")["points"]) == len(pts)

    app.mqtt.disconnect()
    assert time.monotonic() - t0 < 60
