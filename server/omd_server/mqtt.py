"""Home Assistant MQTT bridge, driven by contract/homeassistant.json.

Publishing happens on a background thread fed by a queue, so a slow or absent broker never
delays acknowledging a reading.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from . import contract
from .config import Config

log = logging.getLogger("omd_server.mqtt")

STATE_FIELDS = ("meter_id", "seq", "timestamp", "voltage", "current", "watts", "pf", "frequency",
                "energy_import_wh", "energy_export_wh", "image_sha256", "fw")


def topic(template: str, meter_id: str, key: str = "") -> str:
    return template.replace("{meter_id}", meter_id).replace("{key}", key)


def state_payload(reading: dict[str, Any]) -> dict[str, Any]:
    return {k: reading[k] for k in STATE_FIELDS if reading.get(k) is not None}


def discovery_configs(meter_id: str, reading: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """topic -> config for every contract sensor whose source field this meter sends.

    A sensor whose field never arrives (the seed shape has no counters) would show as
    'unavailable' forever, and a default of 0 would look like a counter reset to the Energy
    dashboard, so such sensors are simply not announced until the field appears."""
    ha = contract.homeassistant()
    dec = contract.decimals()
    out = {}
    for s in ha["sensors"]:
        source = s.get("source", s["key"])
        if reading.get(source) is None:
            continue
        if "scale" in s:
            tmpl = "{{ (value_json." + source + " | float * " + repr(s["scale"]) + ") | round(6) }}"
        else:
            tmpl = "{{ value_json." + source + " }}"
        cfg: dict[str, Any] = {
            "name": s["name"],
            "unique_id": topic(ha["unique_id"], meter_id, s["key"]),
            "object_id": topic(ha["unique_id"], meter_id, s["key"]),
            "state_topic": topic(ha["state_topic"], meter_id),
            "value_template": tmpl,
            "device_class": s["device_class"],
            "state_class": s["state_class"],
            "availability_topic": topic(ha["availability_topic"], meter_id),
            "payload_available": ha["payload_available"],
            "payload_not_available": ha["payload_not_available"],
            "device": {
                "identifiers": [topic(ha["device_identifier"], meter_id)],
                "name": topic(ha["device_name"], meter_id),
                **ha["device"],
            },
        }
        if s.get("unit_of_measurement") is not None:
            cfg["unit_of_measurement"] = s["unit_of_measurement"]
        if source in dec and "scale" not in s:
            cfg["suggested_display_precision"] = dec[source]
        out[topic(ha["discovery_topic"], meter_id, s["key"])] = cfg
    return out


class Bridge:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.ha = contract.homeassistant()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"omd-server-{os.getpid()}-{id(self):x}"
        )
        if cfg.mqtt_username:
            self.client.username_pw_set(cfg.mqtt_username, cfg.mqtt_password or None)
        self.client.on_connect = self._on_connect
        self.queue: queue.Queue = queue.Queue(maxsize=10000)
        self.latest: dict[str, dict[str, Any]] = {}
        self.announced: dict[str, set[str]] = {}
        self.last_seen: dict[str, float] = {}
        self.online: dict[str, bool] = {}
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="omd-mqtt", daemon=True)

    def start(self, known: dict[str, dict[str, Any]] | None = None) -> None:
        for meter_id, reading in (known or {}).items():
            self.latest[meter_id] = reading
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(self.cfg.mqtt_host, self.cfg.mqtt_port, keepalive=30)
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.connected.is_set():
            infos = [self._publish_status(m, False) for m in list(self.online)]
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
        for r in newest.values():
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
        with self._lock:
            # retained messages may have been lost with a broker without persistence
            self.announced.clear()
            pending = list(self.latest.values())
        self.connected.set()
        for r in pending:
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(dict(r, _republish=True))

    def _publish_status(self, meter_id: str, online: bool):
        self.online[meter_id] = online
        payload = self.ha["payload_available"] if online else self.ha["payload_not_available"]
        return self.client.publish(
            topic(self.ha["availability_topic"], meter_id), payload, qos=1, retain=True
        )

    def _handle(self, r: dict[str, Any]) -> None:
        m = r["meter_id"]
        republish = r.pop("_republish", False)
        with self._lock:
            cur = self.latest.get(m)
            # store-and-forward replays carry old counters; publishing them would look like a
            # counter reset (total_increasing) to Home Assistant
            if cur is not None and r["ts"] < cur["ts"]:
                return
            self.latest[m] = r
        if not republish:
            self.last_seen[m] = time.monotonic()
        for t, conf in discovery_configs(m, r).items():
            if t not in self.announced.setdefault(m, set()):
                self.client.publish(t, json.dumps(conf, sort_keys=True), qos=1, retain=True)
                self.announced[m].add(t)
        seen = self.last_seen.get(m)
        if seen is not None and time.monotonic() - seen <= self.cfg.mqtt_availability_timeout_s:
            self._publish_status(m, True)
        self.client.publish(
            topic(self.ha["state_topic"], m), json.dumps(state_payload(r), sort_keys=True),
            qos=1, retain=True,
        )

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
                        self.latest[r["meter_id"]] = r
                        self.last_seen[r["meter_id"]] = time.monotonic()
            now = time.monotonic()
            timeout = self.cfg.mqtt_availability_timeout_s
            if self.connected.is_set():
                for m, seen in list(self.last_seen.items()):
                    if self.online.get(m) and now - seen > timeout:
                        self._publish_status(m, False)
