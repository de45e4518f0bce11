"""The tokenized-energy sensors (tokens_ha.py, contract/homeassistant-tokens.json) in a real
Home Assistant: every sensor is created on the meter's device with the class, state class and
unit we announce, and the values arrive converted (kWh, kg, timestamp)."""

from __future__ import annotations

import time

import pytest
from omd_server import tokens_ha
from omd_server.config import Config
from test_homeassistant import CACHE, VERSIONS, HomeAssistant

pytestmark = pytest.mark.slow
METER = "tk-01"
FIG = {"certified_total_mj": 9_000_000_000, "certified_today_mj": 1_800_000_000,
       "intervals_pending": 2, "intervals_failed": 1, "ac_balance_mg": 1_500_000,
       "ac_retired_mg": 250_000, "last_fulfilled_at": 1_722_000_000, "block": 77}


@pytest.fixture(params=VERSIONS)
def hass(tmp_path, request):
    exe = CACHE / f"ha-{request.param}" / "bin" / "hass"
    if not exe.exists():
        pytest.fail(f"{exe} missing: run scripts/setup-ha.sh (scripts/setup.sh runs it)")
    ha = HomeAssistant(tmp_path, exe)
    try:
        ha.wait_up()
        ha.onboard()
        yield ha
    finally:
        ha.stop()


def test_tokenized_energy_in_a_real_home_assistant(tmp_path, hass, mosquitto):
    assert hass.add_mqtt(mosquitto)["type"] == "create_entry"
    pub = tokens_ha.TokenPublisher(Config(mqtt_host="127.0.0.1", mqtt_port=mosquitto)).start()
    try:
        assert pub.connected.wait(10)
        pub({METER: FIG})
        spec = tokens_ha.spec()
        want = {tokens_ha.entity_id(METER, s["key"]): s for s in spec["sensors"]}
        states = hass.wait_states(lambda st: all(st.get(e, {}).get("state") not in
                                                 (None, "unknown", "unavailable")
                                                 for e in want), 60)
        assert set(want) <= set(states), sorted(set(want) - set(states))
        values = tokens_ha.state_payload(FIG)
        for eid, s in want.items():
            a = states[eid]["attributes"]
            assert a.get("unit_of_measurement") == s.get("unit_of_measurement"), eid
            assert a.get("device_class") == s.get("device_class"), eid
            assert a.get("state_class") == s.get("state_class"), eid
            if s.get("device_class") == "timestamp":
                assert states[eid]["state"] == values[s["key"]]
            else:
                assert float(states[eid]["state"]) == pytest.approx(values[s["key"]]), eid
        assert float(states["sensor.omd_tk_01_tokens_certified_energy_total"]["state"]) == 2.5
        _, devices = hass.ws({"type": "config/entity_registry/list"},
                             {"type": "config/device_registry/list"})
        assert any(["mqtt", f"omd_{METER}"] in d["identifiers"] for d in devices)
        # the publisher going away marks the sensors unavailable (its last will / goodbye)
        pub.stop()
        pub = None
        time.sleep(0.5)
        states = hass.wait_states(lambda st: all(st[e]["state"] == "unavailable" for e in want),
                                  30)
        assert {states[e]["state"] for e in want} == {"unavailable"}
    finally:
        if pub is not None:
            pub.stop()
    log = (tmp_path / "ha.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "deprecated option `object_id`" not in log
    assert "tokens_" not in "\n".join(ln for ln in log.splitlines() if "ERROR" in ln), log[-3000:]
