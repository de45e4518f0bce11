"""The bridge against a real Home Assistant: onboarding and the MQTT integration through their
REST flows, then the entities our discovery creates (ids, units, classes, device, states) and
their availability when the server is killed and restarted.

Home Assistant runs from the cache that scripts/setup-ha.sh (part of scripts/setup.sh) fills:
it needs Python >= 3.13, which Debian 12 does not have, so the set-up builds one."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from omd_server import contract
from omd_server.config import Config
from omd_server.mqtt import entity_id
from omd_server_testlib import free_port, iso_now, reading

pytestmark = pytest.mark.slow

HA = contract.homeassistant()
CACHE = Path(os.environ.get("OMD_HA_CACHE", Path.home() / ".cache" / "omd-ha"))
VERSIONS = [line.split()[0] for line in
            (Path(__file__).resolve().parents[2] / "scripts" / "ha-versions.txt").read_text()
            .splitlines() if line.strip() and not line.startswith("#")]
METER = "ha-01"


class HomeAssistant:
    def __init__(self, tmp: Path, hass: Path):
        self.dir = tmp / "ha-config"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.dir / "configuration.yaml").write_text(
            "homeassistant:\n  name: OMD test\n  unit_system: metric\n  time_zone: UTC\n"
            "  latitude: 48.1\n  longitude: 11.5\n  elevation: 500\n  country: DE\n"
            "  currency: EUR\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\n"
            "onboarding:\nconfig:\napi:\nwebsocket_api:\n")
        self.log = open(tmp / "ha.log", "wb")
        self.proc = subprocess.Popen([str(hass), "-c", str(self.dir), "--skip-pip"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.token = ""

    def wait_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Home Assistant exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/api/onboarding", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError("Home Assistant did not answer")

    def onboard(self) -> None:
        client_id = self.url + "/"
        res = httpx.post(self.url + "/api/onboarding/users", timeout=30, json={
            "client_id": client_id, "name": "Test", "username": "test",
            "password": "omd-test-password", "language": "en"})
        res.raise_for_status()
        tok = httpx.post(self.url + "/auth/token", timeout=30, data={
            "grant_type": "authorization_code", "code": res.json()["auth_code"],
            "client_id": client_id})
        tok.raise_for_status()
        self.token = tok.json()["access_token"]

    def api(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30,
                             headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def add_mqtt(self, port: int) -> dict:
        """The MQTT integration through its config flow, as the UI does it."""
        flow = self.api("POST", "/api/config/config_entries/flow",
                        json={"handler": "mqtt", "show_advanced_options": False}).json()
        for _ in range(4):
            if flow.get("type") == "create_entry":
                return flow
            if flow.get("type") == "menu":
                step = {"next_step_id": "broker" if "broker" in flow["menu_options"]
                        else flow["menu_options"][0]}
            elif flow.get("type") == "form":
                step = {"broker": "127.0.0.1", "port": port}
            else:
                raise AssertionError(f"unexpected MQTT flow answer: {flow}")
            flow = self.api("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                            json=step).json()
        raise AssertionError(f"MQTT flow did not finish: {flow}")

    def ws(self, *commands: dict) -> list:
        from websockets.sync.client import connect

        out = []
        with connect(self.url.replace("http", "ws") + "/api/websocket", open_timeout=30) as w:
            assert json.loads(w.recv())["type"] == "auth_required"
            w.send(json.dumps({"type": "auth", "access_token": self.token}))
            assert json.loads(w.recv())["type"] == "auth_ok"
            for n, cmd in enumerate(commands, 1):
                w.send(json.dumps({"id": n, **cmd}))
                while True:
                    msg = json.loads(w.recv(timeout=30))
                    if msg.get("id") == n and msg["type"] == "result":
                        assert msg["success"], msg
                        out.append(msg["result"])
                        break
        return out

    def states(self) -> dict[str, dict]:
        return {s["entity_id"]: s for s in self.api("GET", "/api/states").json()}

    def wait_states(self, pred, timeout: float = 30) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.states()
            if pred(st) or time.monotonic() > deadline:
                return st
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(params=VERSIONS)
def home_assistant(tmp_path, request):
    hass = CACHE / f"ha-{request.param}" / "bin" / "hass"
    if not hass.exists():
        pytest.fail(f"{hass} missing: run scripts/setup-ha.sh (scripts/setup.sh runs it)")
    ha = HomeAssistant(tmp_path, hass)
    try:
        ha.wait_up()
        ha.onboard()
        yield ha
    finally:
        ha.stop()


def test_entities_in_a_real_home_assistant(tmp_path, home_assistant, mosquitto, server_process):
    ha = home_assistant
    entry = ha.add_mqtt(mosquitto)
    assert entry["type"] == "create_entry", entry

    cfg = Config(database_url=f"sqlite:///{tmp_path}/omd.db", image_dir=str(tmp_path / "img"),
                 log_level="warning", mqtt_host="127.0.0.1", mqtt_port=mosquitto)
    from omd_server import keys
    from omd_server.storage import open_storage

    st = open_storage(cfg)
    key = keys.ensure(st, [METER])[METER]
    st.close()
    srv = server_process(cfg)
    r = reading(METER, 1, key, timestamp=iso_now(-30), voltage=231.25, current=4.0,
                watts=-905.0, pf=0.978, frequency=50.01, energy_import_wh=1234.567,
                energy_export_wh=98765.432, schema_version=2, solar_current=10.5,
                solar_watts=2403.88, solar_pf=0.99, solar_energy_export_wh=45678.901,
                solar_energy_import_wh=12.345, fw="1.4.2")
    assert httpx.post(srv.url + "/api/v1/readings", json=r, timeout=10).status_code == 201

    want = {entity_id(HA["default_entity_id"], METER, s["key"]): s for s in HA["sensors"]}
    assert all(e.startswith("sensor.omd_ha_01_") for e in want)
    states = ha.wait_states(lambda st: all(st.get(e, {}).get("state") not in (None, "unknown",
                                                                             "unavailable")
                                           for e in want))
    assert set(want) <= set(states), sorted(set(want) - set(states))
    for eid, s in want.items():
        attrs = states[eid]["attributes"]
        assert attrs.get("unit_of_measurement") == s["unit_of_measurement"], eid
        assert attrs.get("device_class") == s["device_class"], eid
        assert attrs.get("state_class") == s["state_class"], eid
        value = r[s.get("source", s["key"])] * s.get("scale", 1)
        if "minus" in s:  # derived: the house consumption, solar power - grid power
            value = r[s["source"]] - r[s["minus"]]
        assert float(states[eid]["state"]) == pytest.approx(value, abs=1e-6), eid

    entities, devices = ha.ws({"type": "config/entity_registry/list"},
                              {"type": "config/device_registry/list"})
    ours = {e["entity_id"]: e for e in entities if e["platform"] == "mqtt"}
    assert set(ours) == set(want)
    for eid, s in want.items():
        assert ours[eid]["unique_id"] == HA["unique_id"].format(meter_id=METER, key=s["key"])
        # the precision Home Assistant shows: the contract's, not 6 decimals
        opts = ours[eid].get("options", {}).get("sensor", {})
        want_prec = s.get("suggested_display_precision", contract.decimals().get(s["key"]))
        if want_prec is not None:
            assert opts.get("suggested_display_precision") == want_prec, (eid, opts)
    device = next(d for d in devices
                  if ["mqtt", HA["device_identifier"].format(meter_id=METER)] in d["identifiers"])
    assert device["name"] == HA["device_name"].format(meter_id=METER)
    assert device["manufacturer"] == HA["device"]["manufacturer"]
    assert device["model"] == HA["device"]["model"]
    assert device["sw_version"] == "1.4.2"
    assert device["configuration_url"] == f"http://127.0.0.1:{cfg.port}/"

    # kill -9: the broker's last will for the bridge makes every sensor unavailable
    srv.kill9()
    states = ha.wait_states(lambda st: all(st[e]["state"] == "unavailable" for e in want), 60)
    assert {states[e]["state"] for e in want} == {"unavailable"}
    # a restart with a recent stored reading: available again at connect, same values
    srv2 = server_process(cfg)
    states = ha.wait_states(lambda st: all(st[e]["state"] != "unavailable" for e in want), 60)
    assert all(states[e]["state"] != "unavailable" for e in want)
    srv2.stop()
    states = ha.wait_states(lambda st: all(st[e]["state"] == "unavailable" for e in want), 30)
    assert {states[e]["state"] for e in want} == {"unavailable"}

    log = (tmp_path / "ha.log").read_text(errors="replace")
    assert "deprecated option `object_id`" not in log
    assert "not strictly increasing" not in log
    assert "Traceback" not in log, log[-3000:]
