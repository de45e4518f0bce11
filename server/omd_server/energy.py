"""Energy per day/month from stored readings.

Each reading describes the interval that ends at its timestamp, so the energy of an interval
is attributed to the local day/month of its end. Meters that send counters are trusted
(counter deltas); the seed shape has none, so watts are integrated over the interval since
the previous reading, capped so a meter that was off for hours does not invent energy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

MAX_GAP_S = 900


def period_key(ts: int, tz: ZoneInfo, period: str) -> str:
    d = datetime.fromtimestamp(ts, UTC).astimezone(tz)
    return d.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def interval_energy(prev: dict[str, Any] | None, r: dict[str, Any]) -> tuple[float, float]:
    """(import_wh, export_wh) of the interval ending at r."""
    if prev is None:
        return 0.0, 0.0
    ci, ce = r.get("energy_import_wh"), r.get("energy_export_wh")
    pi, pe = prev.get("energy_import_wh"), prev.get("energy_export_wh")
    if None not in (ci, ce, pi, pe):
        # a negative delta means the counter was reset (new firmware): count nothing
        return max(0.0, ci - pi), max(0.0, ce - pe)
    dt = r["ts"] - prev["ts"]
    if dt <= 0 or dt > MAX_GAP_S:
        return 0.0, 0.0
    wh = r["watts"] * dt / 3600.0
    return (-wh, 0.0) if wh < 0 else (0.0, wh)


def totals(
    readings: list[dict[str, Any]], prev: dict[str, Any] | None, tz: ZoneInfo, period: str
) -> list[dict[str, Any]]:
    buckets: dict[str, list[float]] = {}
    for r in readings:
        imp, exp = interval_energy(prev, r)
        b = buckets.setdefault(period_key(r["ts"], tz, period), [0.0, 0.0, 0])
        b[0] += imp
        b[1] += exp
        b[2] += 1
        prev = r
    return [
        {"period": k, "import_wh": round(v[0], 3), "export_wh": round(v[1], 3), "readings": v[2]}
        for k, v in buckets.items()
    ]
