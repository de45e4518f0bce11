"""Home Assistant "Tokenized Energy": the chain's figures per meter (from the oracle requester)
as MQTT discovery sensors, driven by contract/homeassistant-tokens.json. They join the meter's
device (the same identifiers as contract/homeassistant.json), so the meter's page shows its
measured and its certified energy side by side.

Its own MQTT connection (with a last will on the tokens' availability topic): the chain side
may be down while readings flow, and the other way round.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from . import contract

log = logging.getLogger("omd_server.tokens_ha")


def spec() -> dict[str, Any]:
    return contract._load("homeassistant-tokens.json")


def _t(template: str, meter_id: str, key: str = "") -> str:
    return template.replace("{meter_id}", meter_id).replace("{key}", key)


def entity_id(meter_id: str, key: str) -> str:
    domain, _, rest = _t(spec()["default_entity_id"], meter_id, key).partition(".")
    return domain + "." + re.sub(r"[^a-z0-9_]", "_", rest)


def state_payload(fig: dict[str, Any]) -> dict[str, Any]:
    """The sensors' values in their Home Assistant units (kWh, kg, ISO time)."""
    out: dict[str, Any] = {}
    for s in spec()["sensors"]:
        if s["source"] == "last_fulfilled_iso":
            ts = fig.get("last_fulfilled_at")
            out[s["key"]] = (datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
                             if ts else None)
        elif "divisor" in s:
            out[s["key"]] = round(fig[s["source"]] / s["divisor"], 9)
        else:
            out[s["key"]] = fig[s["source"]]
    return out


def discovery_configs(meter_id: str) -> dict[str, dict[str, Any]]:
    sp, ha = spec(), contract.homeassistant()
    device = {"identifiers": [_t(ha["device_identifier"], meter_id)],
              "name": _t(ha["device_name"], meter_id), **ha["device"]}
    out = {}
    for s in sp["sensors"]:
        cfg: dict[str, Any] = {
            "name": s["name"],
            "unique_id": _t(sp["unique_id"], meter_id, s["key"]),
            "default_entity_id": entity_id(meter_id, s["key"]),
            "object_id": entity_id(meter_id, s["key"]).split(".", 1)[1],
            "state_topic": _t(sp["state_topic"], meter_id),
            # a timestamp sensor must get None, not the text 'None', while it has no value
            "value_template": "{{ value_json." + s["key"] + " if value_json." + s["key"]
                              + " is not none else None }}",
            "availability_topic": sp["availability_topic"],
            "payload_available": ha["payload_available"],
            "payload_not_available": ha["payload_not_available"],
            "device": device,
        }
        for k in ("device_class", "state_class", "unit_of_measurement",
                  "suggested_display_precision", "icon", "entity_category"):
            if k in s:
                cfg[k] = s[k]
        out[_t(sp["discovery_topic"], meter_id, s["key"])] = cfg
    return out


class TokenPublisher:
    def __init__(self, cfg):
        self.cfg = cfg
        self.sp = spec()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"omd-tokens-{os.getpid()}-{id(self):x}")
        if cfg.mqtt_username:
            self.client.username_pw_set(cfg.mqtt_username, cfg.mqtt_password or None)
        ha = contract.homeassistant()
        self.client.will_set(self.sp["availability_topic"], ha["payload_not_available"], qos=1,
                             retain=True)
        self.client.on_connect = self._on_connect
        self.connected = threading.Event()
        self.announced: set[str] = set()
        self.last: dict[str, str] = {}
        self._lock = threading.Lock()

    def start(self) -> TokenPublisher:
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(self.cfg.mqtt_host, self.cfg.mqtt_port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        if self.connected.is_set():
            info = self.client.publish(self.sp["availability_topic"],
                                       contract.homeassistant()["payload_not_available"],
                                       qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except Exception:
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT broker refused the tokens connection: %s", reason_code)
            return
        with self._lock:
            self.announced.clear()  # a broker without persistence lost the retained configs
            self.last.clear()
        client.publish(self.sp["availability_topic"], contract.homeassistant()["payload_available"],
                       qos=1, retain=True)
        self.connected.set()

    def __call__(self, figures: dict[str, dict[str, Any]], changed: bool = True) -> None:
        """Publish every meter's figures (only what differs from the last publication)."""
        if not self.connected.is_set():
            return
        with self._lock:
            for m, fig in figures.items():
                if m not in self.announced:
                    for topic, conf in discovery_configs(m).items():
                        self.client.publish(topic, json.dumps(conf, sort_keys=True), qos=1,
                                            retain=True)
                    self.announced.add(m)
                payload = json.dumps(state_payload(fig), sort_keys=True)
                if self.last.get(m) != payload:
                    self.client.publish(_t(self.sp["state_topic"], m), payload, qos=1,
                                        retain=True)
                    self.last[m] = payload
