"""Home Assistant discovery on a real mosquitto broker started by the fixture."""

import json
import threading
import time

import paho.mqtt.client as mqtt
from omd_server import contract
from omd_server_testlib import reading

HA = contract.homeassistant()


def collect_retained(port: int, topics: list[str], want: set[str], timeout: float = 15) -> dict:
    """Subscribe with a fresh client; only retained messages arrive with retain=True."""
    got: dict[str, tuple[bytes, bool]] = {}
    done = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{time.monotonic_ns()}")

    def on_connect(client, userdata, flags, rc, props):
        for t in topics:
            client.subscribe(t, qos=1)

    def on_message(client, userdata, msg):
        got[msg.topic] = (msg.payload, msg.retain)
        if want <= set(got):
            done.set()

    c.on_connect, c.on_message = on_connect, on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        done.wait(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def test_discovery_state_and_availability(harness_factory, mosquitto):
    h = harness_factory(mqtt_host="127.0.0.1", mqtt_port=mosquitto)
    bridge = h.app.state.bridge()
    assert bridge.connected.wait(10), "bridge did not connect to mosquitto"
    key = h.provision("meter-01")
    assert h.post(reading(seq=1, key=key, energy_export_wh=123456.0)).status_code == 201
    newest = reading(seq=2, key=key, energy_export_wh=123500.0, energy_import_wh=12.5)
    assert h.post(newest).status_code == 201
    # an older store-and-forward reading must not roll HA's counters back
    old = reading(seq=3, key=key, timestamp="2025-01-01T00:00:00Z", energy_export_wh=1.0)
    assert h.post(old).status_code == 201

    keys = [s["key"] for s in HA["sensors"]]
    disc = {HA["discovery_topic"].format(meter_id="meter-01", key=k) for k in keys}
    state_t = HA["state_topic"].format(meter_id="meter-01")
    avail_t = HA["availability_topic"].format(meter_id="meter-01")
    want = disc | {state_t, avail_t}
    deadline = time.monotonic() + 15
    while True:
        got = collect_retained(mosquitto, [HA["discovery_prefix"] + "/#", "openmeter/#"], want, 5)
        state = json.loads(got[state_t][0]) if state_t in got else {}
        if (want <= set(got) and state.get("seq") == 2) or time.monotonic() > deadline:
            break
    assert want <= set(got), sorted(want - set(got))
    assert all(retain for _, retain in got.values())
    assert got[avail_t][0].decode() == HA["payload_available"]
    assert state["energy_export_wh"] == 123500.0 and "sig" not in state

    for s in HA["sensors"]:
        conf = json.loads(got[HA["discovery_topic"].format(meter_id="meter-01", key=s["key"])][0])
        assert conf["device_class"] == s["device_class"]
        assert conf["state_class"] == s["state_class"]
        assert conf.get("unit_of_measurement") == s["unit_of_measurement"]
        assert conf["state_topic"] == state_t and conf["availability_topic"] == avail_t
        assert conf["payload_available"] == HA["payload_available"]
        assert conf["payload_not_available"] == HA["payload_not_available"]
        assert conf["device"]["identifiers"] == ["omd_meter-01"]
        assert conf["device"]["manufacturer"] == HA["device"]["manufacturer"]
        assert conf["unique_id"] == f"omd_meter-01_{s['key']}"
        assert s.get("source", s["key"]) in conf["value_template"]
    energy = [s for s in HA["sensors"] if s["device_class"] == "energy"]
    assert {s["key"] for s in energy} == {"energy_import_kwh", "energy_export_kwh"}
    for s in energy:
        assert s["state_class"] == "total_increasing" and s["unit_of_measurement"] == "kWh"
        conf = json.loads(got[HA["discovery_topic"].format(meter_id="meter-01", key=s["key"])][0])
        assert str(s["scale"]) in conf["value_template"]

    # shutting the server down marks its meters offline (retained)
    h.close()
    got = collect_retained(mosquitto, [avail_t], {avail_t}, 10)
    assert got[avail_t][0].decode() == HA["payload_not_available"]


def test_seed_shape_announces_only_sensors_it_feeds(harness_factory, mosquitto):
    h = harness_factory(mqtt_host="127.0.0.1", mqtt_port=mosquitto, allow_unsigned=True)
    assert h.app.state.bridge().connected.wait(10)
    seed = {"voltage": 220.0, "current": 1.5, "watts": 330.0, "timestamp": "2024-07-26T10:30:00"}
    assert h.post(seed).status_code == 201
    expect = {HA["discovery_topic"].format(meter_id="seed", key=k)
              for k in ("voltage", "current", "watts")}
    got = collect_retained(mosquitto, [HA["discovery_prefix"] + "/sensor/seed/#"], expect, 10)
    # counters the seed never sends would read as a reset to 0 in the Energy dashboard
    assert set(got) == expect
