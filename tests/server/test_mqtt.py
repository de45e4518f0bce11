"""Home Assistant bridge on a real mosquitto broker started by the fixture: discovery,
availability (last will, at connect, after a restart), counters that never go backwards."""

import json
import subprocess
import sys
import threading
import time

import httpx
import paho.mqtt.client as mqtt
from omd_server import contract
from omd_server.config import Config
from omd_server.mqtt import entity_id
from omd_server_testlib import iso_now, reading

HA = contract.homeassistant()
BRIDGE_T = HA["bridge_availability_topic"]


def t_state(m):
    return HA["state_topic"].format(meter_id=m)


def t_avail(m):
    return HA["availability_topic"].format(meter_id=m)


class Listener:
    """Every message on the given topics, in arrival order (retained ones first)."""

    def __init__(self, port: int, topics: list[str]):
        self.msgs: list[tuple[str, bytes, bool, float]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"test-{time.monotonic_ns()}")

        def on_connect(client, userdata, flags, rc, props):
            for t in topics:
                client.subscribe(t, qos=1)
            self._subscribed.set()

        def on_message(client, userdata, msg):
            with self._lock:
                self.msgs.append((msg.topic, msg.payload, msg.retain, time.monotonic()))

        self.c.on_connect, self.c.on_message = on_connect, on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self._subscribed.wait(10)

    def last(self, topic: str):
        with self._lock:
            got = [m for m in self.msgs if m[0] == topic]
        return got[-1] if got else None

    def payloads(self, topic: str) -> list[str]:
        with self._lock:
            return [m[1].decode() for m in self.msgs if m[0] == topic]

    def wait(self, topic: str, payload: str | None = None, timeout: float = 15, after: int = 0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.payloads(topic)[after:]
            if got and (payload is None or got[-1] == payload):
                return got[-1]
            time.sleep(0.05)
        return None

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def retained(port: int, topics: list[str], settle: float = 1.0) -> dict[str, bytes]:
    lst = Listener(port, topics)
    time.sleep(settle)
    lst.close()
    return {t: p for t, p, r, _ in lst.msgs if r}


def test_discovery_state_and_availability(harness_factory, mosquitto):
    h = harness_factory(mqtt_host="127.0.0.1", mqtt_port=mosquitto, public_url="http://omd.lan/")
    bridge = h.app.state.bridge()
    assert bridge.connected.wait(10), "bridge did not connect to mosquitto"
    key = h.provision("meter-01")
    # a version 2 meter (grid + solar): every contract sensor is announced
    assert h.post(reading(seq=1, key=key, energy_export_wh=123456.0,
                          timestamp=iso_now(-120), **V2)).status_code == 201
    newest = reading(seq=2, key=key, energy_export_wh=123500.0, energy_import_wh=12.5,
                     timestamp=iso_now(-60), fw="1.2.3", **V2)
    assert h.post(newest).status_code == 201
    # an older store-and-forward reading must not roll HA's counters back
    old = reading(seq=3, key=key, timestamp="2025-01-01T00:00:00Z", energy_export_wh=1.0, **V2)
    assert h.post(old).status_code == 201

    disc = {HA["discovery_topic"].format(meter_id="meter-01", key=s["key"]): s
            for s in HA["sensors"]}
    want = set(disc) | {t_state("meter-01"), t_avail("meter-01"), BRIDGE_T}
    deadline = time.monotonic() + 15
    while True:
        got = retained(mosquitto, [HA["discovery_prefix"] + "/#", "openmeter/#"])
        state = json.loads(got[t_state("meter-01")]) if t_state("meter-01") in got else {}
        if (want <= set(got) and state.get("seq") == 2) or time.monotonic() > deadline:
            break
    assert want <= set(got), sorted(want - set(got))
    assert got[t_avail("meter-01")].decode() == HA["payload_available"]
    assert got[BRIDGE_T].decode() == HA["payload_available"]
    assert state["energy_export_wh"] == 123500.0 and "sig" not in state

    dec = contract.decimals()
    for t, s in disc.items():
        conf = json.loads(got[t])
        assert conf["device_class"] == s["device_class"]
        assert conf["state_class"] == s["state_class"]
        assert conf.get("unit_of_measurement") == s["unit_of_measurement"]
        assert conf["state_topic"] == t_state("meter-01")
        # availability: the meter's own topic AND the bridge's (whose last will covers a crash)
        assert conf["availability_mode"] == "all"
        assert [a["topic"] for a in conf["availability"]] == [t_avail("meter-01"), BRIDGE_T]
        for a in conf["availability"]:
            assert (a["payload_available"], a["payload_not_available"]) == (
                HA["payload_available"], HA["payload_not_available"])
        assert conf["unique_id"] == f"omd_meter-01_{s['key']}"
        # entity ids that survive Home Assistant 2026.4 (object_id ignored there)
        assert conf["default_entity_id"] == f"sensor.omd_meter_01_{s['key']}"
        assert conf["default_entity_id"] == entity_id(HA["default_entity_id"], "meter-01", s["key"])
        assert conf["object_id"] == f"omd_meter_01_{s['key']}"
        dev = conf["device"]
        assert dev["identifiers"] == ["omd_meter-01"]
        assert dev["manufacturer"] == HA["device"]["manufacturer"]
        assert dev["sw_version"] == "1.2.3" and dev["configuration_url"] == "http://omd.lan/"
        assert conf["origin"]["name"] == "omd-server" and conf["origin"]["sw_version"]
        source = s.get("source", s["key"])
        assert source in conf["value_template"] and s.get("minus", source) in conf["value_template"]
        assert conf["suggested_display_precision"] == s.get("suggested_display_precision",
                                                            dec.get(source))
    energy = [s for s in HA["sensors"] if s["device_class"] == "energy"]
    assert {s["key"] for s in energy} == {"energy_import_kwh", "energy_export_kwh",
                                          "solar_energy_export_kwh", "solar_energy_import_kwh"}
    for s in energy:
        assert s["state_class"] == "total_increasing" and s["unit_of_measurement"] == "kWh"
        conf = json.loads(got[HA["discovery_topic"].format(meter_id="meter-01", key=s["key"])])
        assert str(s["scale"]) in conf["value_template"]

    # shutting the server down marks its meters and itself offline (retained)
    h.close()
    got = retained(mosquitto, [t_avail("meter-01"), BRIDGE_T])
    assert got[t_avail("meter-01")].decode() == HA["payload_not_available"]
    assert got[BRIDGE_T].decode() == HA["payload_not_available"]


V2 = {"schema_version": 2, "solar_current": 10.5, "solar_watts": 2403.88, "solar_pf": 0.99,
      "solar_energy_export_wh": 45678.901, "solar_energy_import_wh": 12.345}


def test_v1_meter_announces_no_solar_sensors(harness_factory, mosquitto):
    h = harness_factory(mqtt_host="127.0.0.1", mqtt_port=mosquitto)
    assert h.app.state.bridge().connected.wait(10)
    key = h.provision("meter-v1")
    assert h.post(reading("meter-v1", 1, key)).status_code == 201
    v1 = {s["key"] for s in HA["sensors"] if not s.get("source", s["key"]).startswith("solar_")}
    expect = {HA["discovery_topic"].format(meter_id="meter-v1", key=k) for k in v1}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = retained(mosquitto, [HA["discovery_prefix"] + "/sensor/meter-v1/#"], 0.5)
        if expect <= set(got):
            break
    assert set(got) == expect  # a solar sensor would read 'unavailable' forever


def test_seed_shape_announces_only_sensors_it_feeds(harness_factory, mosquitto):
    h = harness_factory(mqtt_host="127.0.0.1", mqtt_port=mosquitto, allow_unsigned=True)
    assert h.app.state.bridge().connected.wait(10)
    seed = {"voltage": 220.0, "current": 1.5, "watts": 330.0, "timestamp": "2024-07-26T10:30:00"}
    assert h.post(seed).status_code == 201
    expect = {HA["discovery_topic"].format(meter_id="seed", key=k)
              for k in ("voltage", "current", "watts")}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = retained(mosquitto, [HA["discovery_prefix"] + "/sensor/seed/#"], 0.5)
        if expect <= set(got):
            break
    # counters the seed never sends would read as a reset to 0 in the Energy dashboard
    assert set(got) == expect


def test_total_increasing_is_never_published_lower(harness_factory, mosquitto):
    h = harness_factory(mqtt_host="127.0.0.1", mqtt_port=mosquitto)
    assert h.app.state.bridge().connected.wait(10)
    key = h.provision("meter-02")
    lst = Listener(mosquitto, [t_state("meter-02")])
    try:
        assert h.post(reading("meter-02", 1, key, timestamp=iso_now(-120),
                              energy_import_wh=50.0, energy_export_wh=9000.0)).status_code == 201
        assert lst.wait(t_state("meter-02"))
        # newer reading, counters reset (new device, restored flash): stored, not published lower
        assert h.post(reading("meter-02", 2, key, timestamp=iso_now(-60),
                              energy_import_wh=51.0, energy_export_wh=10.0)).status_code == 201
        assert lst.wait(t_state("meter-02"), after=1)
        states = [json.loads(p) for p in lst.payloads(t_state("meter-02"))]
    finally:
        lst.close()
    assert h.storage.count("meter-02") == 2
    assert [s["energy_export_wh"] for s in states] == [9000.0, 9000.0]
    assert [s["energy_import_wh"] for s in states] == [50.0, 51.0]
    assert states[-1]["counter_held"] == ["energy_export_wh"]
    health = h.client.get("/api/v1/health").json()
    assert health["counters"]["mqtt_counter_held"] == 1


def _mqtt_cfg(tmp_path, port, **over) -> Config:
    cfg = Config(database_url=f"sqlite:///{tmp_path}/omd.db", image_dir=str(tmp_path / "img"),
                 log_level="warning", mqtt_host="127.0.0.1", mqtt_port=port)
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def _provision(cfg, meter_id):
    from omd_server import keys
    from omd_server.storage import open_storage

    st = open_storage(cfg)
    try:
        return keys.ensure(st, [meter_id])[meter_id]
    finally:
        st.close()


def test_sigkill_leaves_the_last_will_offline(tmp_path, mosquitto, server_process):
    cfg = _mqtt_cfg(tmp_path, mosquitto)
    key = _provision(cfg, "kill-01")
    lst = Listener(mosquitto, [BRIDGE_T, t_avail("kill-01")])
    try:
        srv = server_process(cfg)
        assert httpx.post(srv.url + "/api/v1/readings",
                          json=reading("kill-01", 1, key)).status_code == 201
        assert lst.wait(BRIDGE_T, "online") and lst.wait(t_avail("kill-01"), "online")
        n = len(lst.payloads(BRIDGE_T))
        srv.kill9()  # no chance to say goodbye: only the broker's will can
        assert lst.wait(BRIDGE_T, "offline", timeout=60, after=n) == "offline"
    finally:
        lst.close()
    # and it is retained: Home Assistant (re)connecting later sees the meter unavailable
    assert retained(mosquitto, [BRIDGE_T])[BRIDGE_T].decode() == "offline"


def test_restart_without_readings_goes_offline_after_the_timeout(tmp_path, mosquitto,
                                                                 server_process):
    timeout = 6
    cfg = _mqtt_cfg(tmp_path, mosquitto, mqtt_availability_timeout_s=timeout)
    key = _provision(cfg, "quiet-01")
    srv = server_process(cfg)
    assert httpx.post(srv.url + "/api/v1/readings",
                      json=reading("quiet-01", 1, key)).status_code == 201
    sent = time.monotonic()
    srv.stop()
    lst = Listener(mosquitto, [t_avail("quiet-01"), BRIDGE_T])
    try:
        assert lst.wait(t_avail("quiet-01"), "offline")  # retained from the clean stop
        n = len(lst.payloads(t_avail("quiet-01")))
        srv2 = server_process(cfg)  # no new readings from here on
        assert lst.wait(BRIDGE_T, "online")
        # at connect: the stored reading is recent, so the meter is online again...
        assert lst.wait(t_avail("quiet-01"), "online", after=n) == "online"
        # ...until the timeout, counted from that stored reading, runs out
        assert lst.wait(t_avail("quiet-01"), "offline", timeout=timeout + 10,
                        after=n + 1) == "offline"
        off_at = lst.last(t_avail("quiet-01"))[3]
        assert off_at - sent >= timeout - 1.5, "offline before the timeout"
        # a restart long after the timeout says offline at once, never online
        srv2.stop()
        m = len(lst.payloads(t_avail("quiet-01")))
        server_process(cfg)
        assert lst.wait(BRIDGE_T, "online", after=len(lst.payloads(BRIDGE_T)) - 1)
        time.sleep(2)
        assert "online" not in lst.payloads(t_avail("quiet-01"))[m:]
    finally:
        lst.close()
    assert retained(mosquitto, [t_avail("quiet-01")])[t_avail("quiet-01")].decode() == "offline"


def test_simulator_twice_never_publishes_a_lower_counter(tmp_path, mosquitto, server_process):
    cfg = _mqtt_cfg(tmp_path, mosquitto)
    conf = tmp_path / "omd.toml"
    conf.write_text(f'database_url = "{cfg.database_url}"\nimage_dir = "img"\n')
    srv = server_process(cfg)
    meters = ["sim-01", "sim-02"]
    lst = Listener(mosquitto, [t_state(m) for m in meters])
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 3600))
    run = [sys.executable, "-m", "omd_server.cli", "simulate", "--config", str(conf),
           "--url", srv.url, "--meters", "2", "--start", start, "--interval", "60",
           "--batch", "10"]
    try:
        first = subprocess.run(run + ["--hours", "1"], capture_output=True, text=True,
                               timeout=120)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "stored 120" in first.stdout
        # the same start again, longer: it continues after what the server holds
        second = subprocess.run(run + ["--hours", "2"], capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "stored 120" in second.stdout and "rejected 0" in second.stdout
        for m in meters:
            assert lst.wait(t_state(m))
        time.sleep(1.5)
        published = {m: [json.loads(p) for p in lst.payloads(t_state(m))] for m in meters}
    finally:
        lst.close()
    for m in meters:
        states = published[m]
        assert len(states) >= 2
        for f in ("energy_import_wh", "energy_export_wh"):
            values = [s[f] for s in states]
            assert values == sorted(values), (m, f, values)
        # nothing had to be held back: the simulator itself continued the counters
        assert not any("counter_held" in s for s in states)
        stored = httpx.get(f"{srv.url}/api/v1/meters/{m}/readings",
                           params={"start": "2020-01-01"}, timeout=10).json()["points"]
        assert len(stored) == 120
        for f in ("energy_import_wh", "energy_export_wh"):
            values = [p[f] for p in stored]
            assert values == sorted(values), (m, f)
