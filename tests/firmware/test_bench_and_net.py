"""HTTP POST against a real local server, MQTT + HA discovery on mosquitto."""

import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import mqtt
import net
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_http_post_real_server():
    got = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.path, self.headers["X-Meter-Id"],
                        self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_port}/api/readings"
        body = b'{"x":1}' * 500
        assert net.http_post(url, body, headers={"X-Meter-Id": "m1"}) == 201
        assert got == [("/api/readings", "m1", body)]
    finally:
        srv.shutdown()
    assert net.http_post(url, b"{}", timeout=2) == -1  # server gone: a code, not an exception


def test_wifi_backoff_doubles_and_never_blocks():
    class WLAN:
        def __init__(self):
            self.calls = []
            self.up = False

        def isconnected(self):
            return self.up

        def active(self, on):
            pass

        def connect(self, ssid, pw):
            self.calls.append(clock[0])

    clock = [0]
    w = WLAN()
    wifi = net.Wifi(w, [{"ssid": "a", "password": "b"}], clock=lambda: clock[0], timeout_ms=5000)
    for _ in range(2000):
        clock[0] += 250
        wifi.poll()
    gaps = [b - a for a, b in zip(w.calls, w.calls[1:], strict=False)]
    assert gaps[0] < gaps[3] < gaps[6] and max(gaps) <= 300_000 + 5000 + 250
    w.up = True
    assert wifi.poll() is True


@pytest.fixture()
def broker(tmp_path):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert Path(exe).exists(), "mosquitto not installed (scripts/setup.sh installs it)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    p = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    p.terminate()
    p.wait(5)


def test_mqtt_discovery_availability_and_last_will(broker, ct):
    import paho.mqtt.client as paho

    ha = ct.ha
    dev = mqtt.MQTT("omd-meter-07", "127.0.0.1", broker)
    state, avail = mqtt.topics(ha, "meter-07")
    dev.set_last_will(avail, ha["payload_not_available"], True)
    dev.connect()
    mqtt.announce(dev, ha, "meter-07", "0.1.0")
    dev.publish(state, '{"voltage":230.00}')
    time.sleep(0.3)
    msgs = {}
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: msgs.__setitem__(m.topic, (m.payload.decode(), m.retain))
    sub.connect("127.0.0.1", broker)
    sub.subscribe("homeassistant/#")
    sub.subscribe("openmeter/#")
    sub.loop_start()
    try:
        time.sleep(0.8)
        assert msgs[avail] == ("online", True)
        cfgs = {t: json.loads(p) for t, (p, r) in msgs.items() if t.endswith("/config") and r}
        assert len(cfgs) == len(ha["sensors"])
        e = cfgs["homeassistant/sensor/meter-07/energy_import_kwh/config"]
        assert (e["device_class"], e["state_class"], e["unit_of_measurement"]) == (
            "energy", "total_increasing", "kWh")
        assert "energy_import_wh" in e["value_template"] and e["availability_topic"] == avail
        assert cfgs["homeassistant/sensor/meter-07/pf/config"]["device_class"] == "power_factor"
        assert "unit_of_measurement" not in cfgs["homeassistant/sensor/meter-07/pf/config"]
        dev.sock.close()  # abrupt loss (power cut, Wi-Fi gone): the broker sends the will
        for _ in range(30):
            time.sleep(0.1)
            if msgs[avail][0] == "offline":
                break
        assert msgs[avail][0] == "offline"
    finally:
        sub.loop_stop()
        sub.disconnect()
