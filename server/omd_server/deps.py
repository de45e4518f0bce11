"""Typed dependencies of the routers: configuration, storage, counters, the MQTT bridge,
request bodies within their limits, and validated path and query parameters.

Everything a route needs arrives through one of these, so a route is its own logic only and a
new router declares what it uses the same way."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Path, Query, Request

from . import contract, ingest
from .config import Config
from .errors import ApiError
from .storage import SqlStorage
from .storage.attestations import AttestationStore, store_for

METER_RE = contract.schema()["properties"]["meter_id"]["pattern"]
SHA_RE = "^[0-9a-f]{64}$"
# 9999-12-31T23:59:59Z: the last instant a four-digit ISO 8601 year can name
MAX_TS = 253402300799


async def get_cfg(request: Request) -> Config:
    return request.app.state.cfg


async def get_stats(request: Request) -> Counter:
    return request.app.state.stats


async def get_storage(request: Request) -> SqlStorage:
    # opened in the app's lifespan; a sync dependency would cost a thread hop per request
    return request.app.state.storage()


async def get_bridge(request: Request):
    return request.app.state.bridge()


class Services:
    """What the ingest routes use (configuration, counters, storage, MQTT bridge)."""

    __slots__ = ("cfg", "stats", "_storage", "_bridge")

    def __init__(self, cfg: Config, stats: Counter, storage, bridge):
        self.cfg, self.stats, self._storage, self._bridge = cfg, stats, storage, bridge

    @property
    def storage(self) -> SqlStorage:
        return self._storage()

    @property
    def bridge(self):
        return self._bridge()


def get_attestations(st: Annotated[SqlStorage, Depends(get_storage)]) -> AttestationStore:
    return store_for(st)


CfgDep = Annotated[Config, Depends(get_cfg)]
StatsDep = Annotated[Counter, Depends(get_stats)]
StorageDep = Annotated[SqlStorage, Depends(get_storage)]
BridgeDep = Annotated[Any, Depends(get_bridge)]  # mqtt.Bridge or None
AttestationsDep = Annotated[AttestationStore, Depends(get_attestations)]
MeterId = Annotated[str, Path(pattern=METER_RE, description="meter id (contract pattern)")]


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to exceed limit (never read in full)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError.one(413, ["body"], f"body of {declared} bytes exceeds the limit of "
                           f"{limit} bytes", "size")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError.one(413, ["body"], f"body exceeds the limit of {limit} bytes", "size")
        chunks.append(chunk)
    return b"".join(chunks)


class Incoming:
    """A posted JSON document and the services that handle it: one dependency for the ingest
    routes, their hot path (each dependency costs FastAPI a resolution per request)."""

    __slots__ = ("doc", "svc")

    def __init__(self, doc: Any, svc: Services):
        self.doc, self.svc = doc, svc


async def incoming_json(request: Request) -> Incoming:
    """The request's JSON document (contract number ranges kept for validation), or 400."""
    svc: Services = request.app.state.services
    body = await read_body(request, svc.cfg.max_body_bytes)
    try:
        return Incoming(ingest.parse_json(body), svc)
    except ingest.BadJson as exc:
        svc.stats["rejected_invalid"] += 1
        raise ApiError.one(400, ["body"], str(exc), "json") from None


IncomingJson = Annotated[Incoming, Depends(incoming_json)]


def known_meter(meter_id: MeterId, st: StorageDep) -> str:
    if not st.has_meter(meter_id):
        raise ApiError.one(404, ["path", "meter_id"], f"unknown meter {meter_id!r}", "not_found")
    return meter_id


KnownMeter = Annotated[str, Depends(known_meter)]

TIME_DOC = ("ISO 8601 date or date-time (without offset: in the server's timezone) or unix "
            "seconds, 1970-01-01 to 9999-12-31")
START_DOC = "first instant (inclusive); " + TIME_DOC
END_DOC = ("instant after the last (exclusive); default: just after the meter's newest reading; "
           + TIME_DOC)
Start = Annotated[str | None, Query(description=START_DOC, max_length=64)]
End = Annotated[str | None, Query(description=END_DOC, max_length=64)]
_UNIX = re.compile(r"[0-9]{1,20}")


def parse_time(value: str, tz: ZoneInfo, name: str) -> int:
    """Unix seconds of a query time, or 422 with the query's location."""
    try:
        if _UNIX.fullmatch(value):
            ts = int(value)
        else:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=tz)
            ts = int(dt.timestamp())
    except (ValueError, OverflowError):
        raise ApiError.one(422, ["query", name], f"expected an ISO 8601 date/date-time or unix "
                           f"seconds, got {value[:40]!r}", "value.time") from None
    if not 0 <= ts <= MAX_TS:
        raise ApiError.one(422, ["query", name], f"{value[:40]!r} is outside 1970-01-01 to "
                           "9999-12-31", "value.time")
    return ts


def newest_end(st: SqlStorage, meter_id: str) -> int:
    """Default end of every read window: just after the meter's newest reading (now if none),
    so a meter whose data is old still shows it."""
    r = st.latest(meter_id)
    return r["ts"] + 1 if r else int(datetime.now(UTC).timestamp())


def window(st: SqlStorage, cfg: Config, meter_id: str, start: str | None, end: str | None,
           default_start) -> tuple[int, int]:
    """(start, end) unix seconds; default_start(end, tz) gives the start when none is asked."""
    tz = ZoneInfo(cfg.timezone)
    e = parse_time(end, tz, "end") if end is not None else newest_end(st, meter_id)
    s = parse_time(start, tz, "start") if start is not None else max(0, default_start(e, tz))
    if s > e:
        raise ApiError.one(422, ["query", "start"], "start is after end", "value.time")
    return s, e


def days_before(days: int):
    """Default start: local midnight `days` days before end."""
    def start(end: int, tz: ZoneInfo) -> int:
        d = datetime.fromtimestamp(end, UTC).astimezone(tz) - timedelta(days=days)
        return int(d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    return start
