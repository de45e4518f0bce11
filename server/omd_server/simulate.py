"""Simulated meters: a plausible solar day per meter, signed per the contract, sent over HTTP.

Production follows the sun (sine of the day between sunrise and sunset), clouds drift in and
out as a random walk with fast flicker, and the household load (base load, evening peak,
kettle/washing machine events) is subtracted, so mornings and nights import and midday exports.
Each meter is a board rev B: reading schema version 2, the inverter's output (solar_*) and the
grid connection (top level) of one household.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import math
import random
import struct
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from . import contract

# 16x16 grey JPEG; each photo gets a unique COM segment so hashes differ
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4"
    "UG1RV19iZ2hnPk1xeXBkeFxlZ2P/wAALCAAQABABAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QA"
    "tRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0"
    "NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2"
    "t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/ACiiiv/Z"
)


def fake_jpeg(comment: str) -> bytes:
    text = comment.encode()[:60000]
    return _JPEG[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + _JPEG[2:]


class SolarMeter:
    def __init__(self, meter_id: str, rng: random.Random, interval_s: int):
        self.meter_id = meter_id
        self.rng = rng
        self.interval = interval_s
        self.peak_w = rng.uniform(2500, 6000)
        self.base_load = rng.uniform(120, 350)
        self.sunrise = rng.uniform(5.5, 6.5)
        self.sunset = rng.uniform(19.5, 20.5)
        self.cloud = rng.uniform(0, 0.6)
        self.events: list[tuple[float, float]] = []  # (end_ts, watts)
        self.imp_wh = rng.uniform(0, 5e5)
        self.exp_wh = rng.uniform(0, 5e6)
        self.pv_wh = self.exp_wh + rng.uniform(0, 5e6)  # production exceeds what was exported
        self.standby_wh = rng.uniform(0, 5e3)
        self.pv = 0.0

    def power(self, ts: float) -> float:
        rng = self.rng
        h = (ts % 86400) / 3600
        if self.sunrise < h < self.sunset:
            elev = math.sin(math.pi * (h - self.sunrise) / (self.sunset - self.sunrise))
            self.cloud = min(1.0, max(0.0, self.cloud + rng.gauss(0, 0.04)))
            flicker = 1.0 - 0.25 * self.cloud * rng.random()
            pv = self.peak_w * elev**1.3 * (1 - 0.75 * self.cloud) * flicker
        else:
            pv = 0.0
        self.pv = pv
        load = self.base_load * rng.uniform(0.9, 1.1)
        if 18 <= h < 22:
            load += 600 * rng.uniform(0.6, 1.2)
        self.events = [e for e in self.events if e[0] > ts]
        if 7 <= h < 23 and rng.random() < self.interval / 3600:
            self.events.append((ts + rng.uniform(120, 300), 2000.0))   # kettle / oven
        if 9 <= h < 20 and rng.random() < self.interval / 14400:
            self.events.append((ts + rng.uniform(1800, 5400), 500.0))  # washing machine
        load += sum(w for _, w in self.events)
        return pv - load

    @staticmethod
    def _through(w: float, v: float, pf: float) -> tuple[float, float]:
        """(current, watts) of one metering point: watts from the rounded V, I and PF, so the
        reading is self-consistent like real firmware."""
        i = round(abs(w) / (v * pf), 3)
        return i, math.copysign(v * i * pf, w)

    def _count(self, w: float, exp_wh: float, imp_wh: float) -> tuple[float, float]:
        wh = w * self.interval / 3600
        return (exp_wh + wh, imp_wh) if wh >= 0 else (exp_wh, imp_wh - wh)

    def reading(self, ts: int, seq: int) -> dict[str, Any]:
        rng = self.rng
        w = self.power(ts)
        v = 230 + 4 * math.sin(ts / 5000) + rng.gauss(0, 0.8) + w / 3000
        pf = rng.uniform(0.96, 0.995) if abs(w) > 300 else rng.uniform(0.55, 0.9)
        v = round(v, 2)
        i, w = self._through(w, v, pf)
        self.exp_wh, self.imp_wh = self._count(w, self.exp_wh, self.imp_wh)
        # the inverter: its output at night is a few watts of standby draw
        sw = self.pv if self.pv > 0 else -rng.uniform(1.0, 3.0)
        spf = rng.uniform(0.97, 0.999) if sw > 50 else rng.uniform(0.2, 0.5)
        si, sw = self._through(sw, v, spf)
        self.pv_wh, self.standby_wh = self._count(sw, self.pv_wh, self.standby_wh)
        return {
            "schema_version": 2,
            "meter_id": self.meter_id,
            "seq": seq,
            "timestamp": datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "voltage": v,
            "current": i,
            "watts": round(w, 2),
            "pf": round(pf, 3),
            "frequency": round(50 + rng.gauss(0, 0.015), 2),
            "energy_import_wh": round(self.imp_wh, 3),
            "energy_export_wh": round(self.exp_wh, 3),
            "solar_current": si,
            "solar_watts": round(sw, 2),
            "solar_pf": round(spf, 3),
            "solar_energy_export_wh": round(self.pv_wh, 3),
            "solar_energy_import_wh": round(self.standby_wh, 3),
            "fw": "sim-0.2",
        }


@dataclass
class Stats:
    sent: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    images: int = 0
    latencies: list[float] = field(default_factory=list)
    acked: dict[str, set] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        p = (lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: 0)
        return (f"sent {self.sent} readings: stored {self.stored}, duplicates {self.duplicates}, "
                f"rejected {self.rejected}, retries {self.retries}, images {self.images}; "
                f"request latency p50 {p(0.5):.1f} ms p99 {p(0.99):.1f} ms")


async def _post(client: httpx.AsyncClient, path: str, stats: Stats, max_tries: int, **kw):
    delay = 0.2
    for attempt in range(max_tries):
        t0 = time.perf_counter()
        try:
            res = await client.post(path, **kw)
        except httpx.TransportError as exc:
            res, err = None, str(exc) or type(exc).__name__
        else:
            err = None
            stats.latencies.append(time.perf_counter() - t0)
            # 503: storage busy/full, nothing stored: keep the data and retry, like the firmware
            if res.status_code != 503:
                return res
        if attempt + 1 < max_tries:
            stats.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
    stats.errors.append(f"{path}: gave up after {max_tries} tries: {err or res.status_code}")
    return None


async def resume(client: httpx.AsyncClient, meter: SolarMeter, start: int) -> int:
    """Continue where the server's data of this meter ends: counters from its newest reading
    (a second run must not restart them, Home Assistant would see a meter reset) and the first
    timestamp after it. Returns the timestamp of the first reading to send."""
    try:
        res = await client.get(f"/api/v1/meters/{meter.meter_id}/latest")
    except httpx.TransportError:
        return start
    if res.status_code != 200:
        return start
    latest = res.json()
    meter.imp_wh = latest.get("energy_import_wh", meter.imp_wh)
    meter.exp_wh = latest.get("energy_export_wh", meter.exp_wh)
    meter.pv_wh = latest.get("solar_energy_export_wh") or meter.pv_wh
    meter.standby_wh = latest.get("solar_energy_import_wh") or meter.standby_wh
    last = int(datetime.fromisoformat(latest["timestamp"].replace("Z", "+00:00")).timestamp())
    return max(start, last + meter.interval)


async def play_meter(client, meter: SolarMeter, key: str, start: int, count: int, batch: int,
                     speed: float, images_every: int, stats: Stats, t0: float, max_tries: int):
    end = start + count * meter.interval
    first = await resume(client, meter, start)
    count = max(0, (end - first) // meter.interval)
    start = first
    pending: list[dict[str, Any]] = []
    photo_sha = None
    acked = stats.acked.setdefault(meter.meter_id, set())
    for n in range(count):
        ts = start + n * meter.interval
        if speed > 0:
            wait = t0 + (ts - start) / speed - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        if images_every and n % images_every == 0:
            jpeg = fake_jpeg(f"{meter.meter_id} {ts}")
            sha = hashlib.sha256(jpeg).hexdigest()
            res = await _post(client, contract.transport_path("image", meter.meter_id), stats,
                              max_tries, content=jpeg,
                              headers=contract.image_headers(key, meter.meter_id, sha))
            if res is not None and res.status_code in (200, 201):
                photo_sha = sha
                stats.images += 1
        r = meter.reading(ts, seq=ts)
        if photo_sha:
            r["image_sha256"] = photo_sha
        r["sig"] = contract.sign(key, r)
        pending.append(r)
        if len(pending) < batch and n + 1 < count:
            continue
        stats.sent += len(pending)
        if batch == 1:
            res = await _post(client, contract.transport_path("reading"), stats, max_tries,
                              json=pending[0])
        else:
            res = await _post(client, contract.transport_path("batch"), stats, max_tries,
                              json={contract.transport()["batch"]["field"]: pending})
        if res is None:
            stats.rejected += len(pending)
        elif res.status_code in (200, 201):
            body = res.json()
            items = body["results"] if batch > 1 else [body]
            for it in items:
                acked.add(it["seq"])
                if it["status"] == "stored":
                    stats.stored += 1
                else:
                    stats.duplicates += 1
        else:
            stats.rejected += len(pending)
            if len(stats.errors) < 20:
                stats.errors.append(f"{meter.meter_id}: HTTP {res.status_code} {res.text[:300]}")
        pending = []


async def run(url: str, keys: dict[str, str], start: int, count: int, interval: int = 10,
              batch: int = 1, speed: float = 0, images_every: int = 0, seed: int = 1,
              max_connections: int = 100, max_tries: int = 10) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        t0 = time.monotonic()
        tasks = []
        for idx, (meter_id, key) in enumerate(sorted(keys.items())):
            meter = SolarMeter(meter_id, random.Random(seed * 100003 + idx), interval)
            tasks.append(play_meter(client, meter, key, start, count, batch, speed,
                                    images_every, stats, t0, max_tries))
        await asyncio.gather(*tasks)
    return stats


def provision(cfg, meter_ids: list[str]) -> dict[str, str]:
    """Keys for the simulated meters, issued in the server's database when missing."""
    from . import keys
    from .storage import open_storage

    st = open_storage(cfg)
    try:
        return keys.ensure(st, meter_ids)
    finally:
        st.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--meters", type=int, default=3)
    p.add_argument("--prefix", default="sim-")
    p.add_argument("--keys-file", help="JSON {meter_id: key_hex}; default: provision via --config")
    p.add_argument("--hours", type=float, default=24, help="simulated span (default 24 h)")
    p.add_argument("--start", help="ISO time of the first reading, or 'now' (live, with --speed 1); "
                                   "default: now minus --hours")
    p.add_argument("--interval", type=int, default=10, help="seconds between readings")
    p.add_argument("--speed", type=float, default=0,
                   help="simulated seconds per wall-clock second (0 = as fast as possible)")
    p.add_argument("--batch", type=int, default=30,
                   help="readings per request (1 = one POST per reading, >1 uses /batch)")
    p.add_argument("--images-every", type=int, default=0, help="upload a photo every N readings")
    p.add_argument("--seed", type=int, default=1)


def main_from_args(args) -> int:
    import json

    meter_ids = [f"{args.prefix}{i + 1:02d}" for i in range(args.meters)]
    if args.keys_file:
        with open(args.keys_file) as fh:
            keys = {m: k for m, k in json.load(fh).items() if m in meter_ids}
    else:
        from .config import load

        keys = provision(load(getattr(args, "config", None)), meter_ids)
    if args.start == "now":
        start_dt = datetime.now(UTC)
    elif args.start:
        start_dt = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        if start_dt.tzinfo is None:
            start_dt = start_dt.replace(tzinfo=UTC)
    else:
        start_dt = datetime.now(UTC) - timedelta(hours=args.hours)
    start = int(start_dt.timestamp()) // args.interval * args.interval
    count = max(1, int(args.hours * 3600 / args.interval))
    print(f"simulating {len(keys)} meter(s), {count} readings each from "
          f"{start_dt.isoformat(timespec='seconds')} against {args.url}")
    stats = asyncio.run(run(args.url, keys, start, count, args.interval, args.batch, args.speed,
                            args.images_every, args.seed))
    print(stats.summary())
    for e in stats.errors[:10]:
        print("  " + e)
    return 0 if not stats.rejected else 1
