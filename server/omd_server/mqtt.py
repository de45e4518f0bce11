"""Home Assistant MQTT bridge, driven by contract/homeassistant.json.

Publishing happens on a background thread fed by a queue, so a slow or absent broker never
delays acknowledging a reading. The connection carries a last will ('offline' on the bridge's
availability topic, retained), so a killed server marks every meter it feeds unavailable; at
each connect the bridge publishes the real availability of each meter, judged from when the
server last received a reading from it (the stored one after a restart).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import socket
import threading
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt

from . import __version__, contract
from .config import Config

log = logging.getLogger("omd_server.mqtt")

STATE_FIELDS = tuple(k for k in contract.fields() if k != "sig")


def topic(template: str, meter_id: str, key: str = "") -> str:
    return template.replace("{meter_id}", meter_id).replace("{key}", key)


def entity_id(template: str, meter_id: str, key: str) -> str:
    """homeassistant.json entity_id_rule: anything but a-z, 0-9, '_' (after the domain) -> '_'."""
    domain, _, rest = topic(template, meter_id, key).partition(".")
    return (domain + "." if rest else "") + re.sub(r"[^a-z0-9_]", "_", rest or domain)


def state_payload(reading: dict[str, Any]) -> dict[str, Any]:
    return {k: reading[k] for k in STATE_FIELDS if reading.get(k) is not None}


def increasing_sources() -> list[str]:
    """Reading fields behind total_increasing sensors: never published lower than before."""
    return [s.get("source", s["key"]) for s in contract.homeassistant()["sensors"]
            if s["state_class"] == "total_increasing"]


def status_page_url(cfg: Config) -> str:
    if cfg.public_url:
        return cfg.public_url
    host = cfg.host
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{host}:{cfg.port}/"


def discovery_configs(meter_id: str, reading: dict[str, Any],
                      cfg: Config | None = None) -> dict[str, dict[str, Any]]:
    """topic -> config for every contract sensor whose source field this meter sends.

    A sensor whose field never arrives (the seed shape has no counters) would show as
    'unavailable' forever, and a default of 0 would look like a counter reset to the Energy
    dashboard, so such sensors are simply not announced until the field appears."""
    ha = contract.homeassistant()
    dec = contract.decimals()
    device = {"identifiers": [topic(ha["device_identifier"], meter_id)],
              "name": topic(ha["device_name"], meter_id), **ha["device"]}
    if reading.get("fw"):
        device["sw_version"] = reading["fw"]
    if cfg is not None:
        device["configuration_url"] = status_page_url(cfg)
    availability = [{"topic": topic(t, meter_id), "payload_available": ha["payload_available"],
                     "payload_not_available": ha["payload_not_available"]}
                    for t in (ha["availability_topic"], ha["bridge_availability_topic"])]
    out = {}
    for s in ha["sensors"]:
        source = s.get("source", s["key"])
        if reading.get(source) is None or reading.get(s.get("minus", source)) is None:
            continue
        if "scale" in s:
            tmpl = "{{ (value_json." + source + " | float * " + repr(s["scale"]) + ") | round(6) }}"
        elif "minus" in s:  # derived (homeassistant.json derived_rule)
            tmpl = (f"{{{{ (value_json.{source} | float - value_json.{s['minus']} | float)"
                    f" | round({s['suggested_display_precision']}) }}}}")
        else:
            tmpl = "{{ value_json." + source + " }}"
        eid = entity_id(ha["default_entity_id"], meter_id, s["key"])
        conf: dict[str, Any] = {
            "name": s["name"],
            "unique_id": topic(ha["unique_id"], meter_id, s["key"]),
            "default_entity_id": eid,
            "object_id": eid.partition(".")[2],  # Home Assistant before 2025.10
            "state_topic": topic(ha["state_topic"], meter_id),
            "value_template": tmpl,
            "device_class": s["device_class"],
            "state_class": s["state_class"],
            "availability": availability,
            "availability_mode": "all",
            "device": device,
            "origin": {"name": "omd-server", "sw_version": __version__},
        }
        if s.get("unit_of_measurement") is not None:
            conf["unit_of_measurement"] = s["unit_of_measurement"]
        precision = s.get("suggested_display_precision", dec.get(source) if "scale" not in s else None)
        if precision is not None:
            conf["suggested_display_precision"] = precision
        out[topic(ha["discovery_topic"], meter_id, s["key"])] = conf
    return out


class Bridge:
    def __init__(self, cfg: Config, stats: Counter | None = None):
        self.cfg = cfg
        self.ha = contract.homeassistant()
        self.stats = stats if stats is not None else Counter()
        self.bridge_topic = self.ha["bridge_availability_topic"]
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"omd-server-{os.getpid()}-{id(self):x}"
        )
        if cfg.mqtt_username:
            self.client.username_pw_set(cfg.mqtt_username, cfg.mqtt_password or None)
        # the broker says 'offline' for us if this process dies without a word (kill -9, crash)
        self.client.will_set(self.bridge_topic, self.ha["payload_not_available"], qos=1,
                             retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.queue: queue.Queue = queue.Queue(maxsize=10000)
        self.latest: dict[str, dict[str, Any]] = {}
        # last total_increasing values published per meter: never published lower again
        self.published: dict[str, dict[str, float]] = {}
        self.announced: dict[str, dict[str, str]] = {}
        # wall-clock time the server last received a reading of the meter
        self.last_seen: dict[str, float] = {}
        self.online: dict[str, bool] = {}
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="omd-mqtt", daemon=True)

    def start(self, storage=None) -> None:
        """Connect (in the background) and publish what the storage holds for every meter."""
        if storage is not None:
            for m in storage.reading_meters():
                r = storage.latest(m)
                if r is not None:
                    self.latest[m] = r
                    self.last_seen[m] = r.get("received_at") or 0
                    self.published[m] = {f: r[f] for f in increasing_sources()
                                         if r.get(f) is not None}
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(self.cfg.mqtt_host, self.cfg.mqtt_port, keepalive=30)
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.connected.is_set():
            infos = [self._publish_status(m, False) for m in sorted(self.latest)]
            infos.append(self.client.publish(self.bridge_topic, self.ha["payload_not_available"],
                                             qos=1, retain=True))
            for info in infos:
                with contextlib.suppress(Exception):
                    info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def submit(self, readings: list[dict[str, Any]]) -> None:
        newest: dict[str, dict[str, Any]] = {}
        for r in readings:
            m = r["meter_id"]
            if m not in newest or r["ts"] >= newest[m]["ts"]:
                newest[m] = r
        now = time.time()
        for r in newest.values():
            self.last_seen[r["meter_id"]] = now
            try:
                self.queue.put_nowait(r)
            except queue.Full:
                log.warning("MQTT queue full; state of %s not published", r["meter_id"])

    # -- internals ----------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT broker refused connection: %s", reason_code)
            return
        log.info("connected to MQTT broker %s:%s", self.cfg.mqtt_host, self.cfg.mqtt_port)
        client.publish(self.bridge_topic, self.ha["payload_available"], qos=1, retain=True)
        with self._lock:
            # retained messages may have been lost with a broker without persistence
            self.announced.clear()
            self.online.clear()
            pending = list(self.latest.values())
        self.connected.set()
        for r in pending:
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(dict(r, _republish=True))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()

    def _alive(self, meter_id: str, now: float) -> bool:
        return now - self.last_seen.get(meter_id, 0) <= self.cfg.mqtt_availability_timeout_s

    def _publish_status(self, meter_id: str, online: bool):
        self.online[meter_id] = online
        payload = self.ha["payload_available"] if online else self.ha["payload_not_available"]
        return self.client.publish(
            topic(self.ha["availability_topic"], meter_id), payload, qos=1, retain=True
        )

    def _monotonic(self, m: str, state: dict[str, Any]) -> None:
        """Hold total_increasing values at the last published one when a newer reading carries
        less (counter reset, restored flash, a second simulator): Home Assistant would take a
        drop as a meter reset and lose or double-count energy. Logged and flagged instead."""
        seen = self.published.setdefault(m, {})
        held = []
        for f in increasing_sources():
            v, last = state.get(f), seen.get(f)
            if v is None:
                continue
            if last is not None and v < last:
                held.append(f)
                state[f] = last
            else:
                seen[f] = v
        if held:
            self.stats["mqtt_counter_held"] += 1
            log.warning("meter %s: %s lower than last published (%s); Home Assistant keeps the "
                        "last value", m, ", ".join(held),
                        ", ".join(f"{f}={seen[f]}" for f in held))
            state["counter_held"] = held

    def _handle(self, r: dict[str, Any]) -> None:
        m = r["meter_id"]
        republish = r.pop("_republish", False)
        with self._lock:
            cur = self.latest.get(m)
            # store-and-forward replays carry old counters; publishing them would look like a
            # counter reset (total_increasing) to Home Assistant
            if not republish and cur is not None and r["ts"] < cur["ts"]:
                return
            self.latest[m] = r
        announced = self.announced.setdefault(m, {})
        for t, conf in discovery_configs(m, r, self.cfg).items():
            payload = json.dumps(conf, sort_keys=True)
            if announced.get(t) != payload:  # new sensor, or sw_version changed
                self.client.publish(t, payload, qos=1, retain=True)
                announced[t] = payload
        alive = self._alive(m, time.time())
        if self.online.get(m) != alive:
            self._publish_status(m, alive)
        state = state_payload(r)
        self._monotonic(m, state)
        self.client.publish(topic(self.ha["state_topic"], m), json.dumps(state, sort_keys=True),
                            qos=1, retain=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                r = self.queue.get(timeout=1)
            except queue.Empty:
                r = None
            if r is not None and self.connected.is_set():
                try:
                    self._handle(r)
                except Exception:
                    log.exception("MQTT publish failed")
            elif r is not None:
                with self._lock:
                    cur = self.latest.get(r["meter_id"])
                    if cur is None or r["ts"] >= cur["ts"]:
                        self.latest[r["meter_id"]] = {k: v for k, v in r.items()
                                                      if k != "_republish"}
            if self.connected.is_set():
                now = time.time()
                for m in list(self.latest):
                    if self.online.get(m) and not self._alive(m, now):
                        self._publish_status(m, False)
