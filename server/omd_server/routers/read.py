"""Read side: meters, latest reading, history, energy totals, CSV export, status page data.

Every query parameter is validated (422 in the common error shape) before any data is read,
so a streamed answer never starts and then breaks off. Defaults of the time windows, the same
for every endpoint: `end` is just after the meter's newest reading; `start` is 24 h before
`end` for history, local midnight 30 days (period=day) or 365 days (period=month) before
`end` for energy totals, and the first reading for the CSV export (an export is complete)."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from .. import contract, energy
from ..deps import CfgDep, End, KnownMeter, MeterId, Start, StorageDep, days_before, window
from ..errors import ApiError
from ..storage import SqlStorage

router = APIRouter(tags=["read"])

HISTORY_SPAN_S = 86400
ENERGY_DAYS = {"day": 30, "month": 365}


def signed(r: dict[str, Any]) -> dict[str, Any]:
    """A stored reading as it was signed: its contract fields."""
    return {k: r[k] for k in contract.fields() if r.get(k) is not None}


def public(r: dict[str, Any]) -> dict[str, Any]:
    """A stored reading as it was signed, plus when it arrived."""
    out = signed(r)
    out["received_at"] = r.get("received_at")
    return out


@router.get("/api/v1/meters")
def list_meters(st: StorageDep):
    out = []
    for m in st.list_meters():
        latest = st.latest(m["meter_id"])
        out.append(m | {"latest": public(latest) if latest else None})
    return out


@router.get("/api/v1/meters/{meter_id}/latest")
def latest(meter_id: MeterId, st: StorageDep):
    r = st.latest(meter_id)
    if r is None:
        raise ApiError.one(404, ["path", "meter_id"], f"no readings for meter {meter_id!r}",
                           "not_found")
    return public(r)


@router.get("/api/v1/meters/{meter_id}/readings",
            summary="History by time range; bucket>0 averages into buckets of that many seconds",
            description="Default window: the 24 h before `end`; `end` defaults to just after "
                        "the meter's newest reading.")
def history(
    meter_id: KnownMeter,
    st: StorageDep,
    cfg: CfgDep,
    start: Start = None,
    end: End = None,
    bucket: Annotated[int, Query(ge=0, le=31 * 86400,
                                 description="seconds per bucket; 0 = raw readings")] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000, description="most points returned")] = 10_000,
):
    s, e = window(st, cfg, meter_id, start, end, lambda end, tz: end - HISTORY_SPAN_S)
    if bucket:
        return {"meter_id": meter_id, "start": s, "end": e, "bucket": bucket,
                "points": st.downsample(meter_id, s, e, bucket)[:limit]}
    return {"meter_id": meter_id, "start": s, "end": e, "bucket": 0,
            "points": [public(r) for r in st.readings(meter_id, s, e, limit)]}


def energy_totals_between(st: SqlStorage, tz: ZoneInfo, meter_id: str, period: str, s: int,
                          e: int) -> list[dict[str, Any]]:
    rows = st.readings(meter_id, s, e, 10_000_000)
    return energy.totals(rows, st.last_before(meter_id, s), tz, period)


@router.get("/api/v1/meters/{meter_id}/energy",
            summary="Import/export energy per local day or month (timezone from config)",
            description="Default window: from local midnight 30 days (day) or 365 days (month) "
                        "before `end`; `end` defaults to just after the meter's newest reading.")
def energy_totals(
    meter_id: KnownMeter,
    st: StorageDep,
    cfg: CfgDep,
    period: Annotated[str, Query(pattern="^(day|month)$")] = "day",
    start: Start = None,
    end: End = None,
):
    s, e = window(st, cfg, meter_id, start, end, days_before(ENERGY_DAYS[period]))
    return {"meter_id": meter_id, "period": period, "timezone": cfg.timezone, "start": s,
            "end": e,
            "totals": energy_totals_between(st, ZoneInfo(cfg.timezone), meter_id, period, s, e)}


@router.get("/api/v1/meters/{meter_id}/readings.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}},
            description="Default window: every reading of the meter (an export is complete).")
def export_csv(meter_id: KnownMeter, st: StorageDep, cfg: CfgDep, start: Start = None,
               end: End = None):
    s, e = window(st, cfg, meter_id, start, end, lambda end, tz: 0)
    cols = [c for c in contract.fields() if c != "sig"] + ["sig", "received_at"]
    first = st.readings(meter_id, s, e, 5000, 0)  # read before the answer starts

    def rows():
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        chunk, offset, page = first, 0, 5000
        while True:
            for r in chunk:
                w.writerow(["" if r.get(c) is None else r[c] for c in cols])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            if len(chunk) < page:
                break
            offset += page
            chunk = st.readings(meter_id, s, e, page, offset)

    return StreamingResponse(rows(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{meter_id}.csv"'})


@router.get("/api/v1/status", summary="Data for the status page")
def status(st: StorageDep, cfg: CfgDep):
    tz = ZoneInfo(cfg.timezone)
    today0 = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    meters = []
    for m in st.reading_meters():
        r = st.latest(m)
        tot = energy_totals_between(st, tz, m, "day", int(today0.timestamp()),
                                    int(time.time()) + 86400)
        today = next((t for t in tot if t["period"] == today0.strftime("%Y-%m-%d")),
                     {"import_wh": 0.0, "export_wh": 0.0})
        photo = st.last_evidence(m)
        meters.append({
            "meter_id": m, "latest": public(r) if r else None,
            "today": {"import_wh": today["import_wh"], "export_wh": today["export_wh"]},
            "photo": f"/api/v1/images/{photo['sha256']}" if photo else None,
            "photo_timestamp": photo["timestamp"] if photo else None,
        })
    return {"server_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "timezone": cfg.timezone, "meters": meters}
