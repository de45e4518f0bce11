"""FastAPI application: ingest, evidence, read side, status page."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from . import __version__, contract, energy, images, ingest
from .config import Config
from .config import load as load_config
from .storage import ReplayRejected, SqlStorage, StorageUnavailable, open_storage

log = logging.getLogger("omd_server")
authlog = logging.getLogger("omd_server.auth")

METER_RE = contract.schema()["properties"]["meter_id"]["pattern"]
SHA_RE = "^[0-9a-f]{64}$"
# paths, header names and status meanings: contract/transport.json (the firmware reads it too)
TRANSPORT = contract.transport()
SIG_HEADER = TRANSPORT["image"]["signature_header"]
SHA_HEADER = TRANSPORT["image"]["sha256_header"]
BATCH_FIELD = TRANSPORT["batch"]["field"]
STATUS = {code: s["meaning"] for code, s in TRANSPORT["status"].items()}


def _err(status: int, problems: list[dict[str, Any]] | str, **extra) -> JSONResponse:
    detail = problems if isinstance(problems, list) else [{"loc": [], "msg": problems, "type": "error"}]
    headers = {"Retry-After": "30"} if status == 503 else None
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _unavailable(exc: StorageUnavailable) -> JSONResponse:
    log.error("storage unavailable: %s", exc)
    return _err(503, [{"loc": [], "msg": f"storage unavailable, nothing was stored: {exc}",
                       "type": "storage.unavailable"}])


async def _read_body(request: Request, limit: int) -> bytes | JSONResponse:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _err(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _err(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_time(value: str | None, default: datetime, tz: ZoneInfo, name: str) -> int:
    if value is None:
        return int(default.timestamp())
    try:
        if value.isdigit():
            return int(value)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            422, f"{name}: expected ISO 8601 date/time or unix seconds, got {value!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return int(dt.timestamp())


def _public(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: r[k] for k in contract.fields() if r.get(k) is not None}
    out["received_at"] = r.get("received_at")
    return out


READING_SCHEMA_REF = {"$ref": "#/components/schemas/Reading"}


def create_app(cfg: Config | None = None, storage: SqlStorage | None = None) -> FastAPI:
    cfg = cfg or load_config()
    tz = ZoneInfo(cfg.timezone)
    stats: Counter = Counter()
    state: dict[str, Any] = {"storage": storage, "bridge": None}

    def st() -> SqlStorage:
        if state["storage"] is None:
            state["storage"] = open_storage(cfg)
        return state["storage"]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(st)
        stop = threading.Event()

        def housekeeping():
            while not stop.wait(0 if not stats["pruned_once"] else 3600):
                stats["pruned_once"] = 1
                try:
                    images.prune(cfg, st())
                except Exception:
                    log.exception("image pruning failed")

        hk = threading.Thread(target=housekeeping, name="omd-prune", daemon=True)
        hk.start()
        if cfg.mqtt_host:
            from .mqtt import Bridge

            bridge = Bridge(cfg)
            known = {}
            with contextlib.suppress(StorageUnavailable):
                for m in st().reading_meters():
                    r = st().latest(m)
                    if r:
                        known[m] = r
            bridge.start(known)
            state["bridge"] = bridge
        state["oracle"] = _oracle_start(cfg, st())
        try:
            yield
        finally:
            stop.set()
            _oracle_stop(state.pop("oracle"))
            if state["bridge"] is not None:
                state["bridge"].stop()
            if storage is None and state["storage"] is not None:
                state["storage"].close()

    app = FastAPI(
        title="Open Metering Device server",
        version=__version__,
        description="LAN data server for Open Metering Device meters. "
        "Readings follow contract/reading.schema.json (HMAC-SHA256 signed, see x-canonical).",
        lifespan=lifespan,
    )
    app.state.cfg = cfg
    app.state.stats = stats
    app.state.storage = st
    app.state.bridge = lambda: state["bridge"]
    app.state.oracle = lambda: (state.get("oracle") or (None,))[0]

    async def ingest_docs(request: Request, docs: list[Any], batch: bool) -> JSONResponse:
        client = request.client.host if request.client else "?"
        try:
            outcome = await run_in_threadpool(ingest.process, docs, cfg, st().get_key, batch)
        except StorageUnavailable as exc:
            return _unavailable(exc)
        if outcome.problems:
            problems = [p.as_dict() for p in outcome.problems]
            if outcome.auth_only:
                stats["rejected_auth"] += 1
                authlog.warning("rejected %d reading(s) from %s: %s", len(docs), client,
                                "; ".join(f"{p['loc']}: {p['msg']}" for p in problems[:5]))
                return _err(401, problems)
            stats["rejected_invalid"] += 1
            log.info("invalid reading(s) from %s: %s", client, problems[:3])
            return _err(422, problems)
        try:
            results = await run_in_threadpool(st().insert_readings, outcome.rows)
        except ReplayRejected as exc:
            stats["rejected_replay"] += 1
            loc = ["body", BATCH_FIELD, exc.index, "seq"] if batch else ["body", "seq"]
            authlog.warning("replay rejected from %s: meter %s: %s", client, exc.meter_id, exc.reason)
            return _err(409, [{"loc": loc, "msg": f"replay rejected: {exc.reason}", "type": "replay"}])
        except StorageUnavailable as exc:
            return _unavailable(exc)
        stored = results.count("stored")
        stats["stored"] += stored
        if state["bridge"] is not None and stored:
            state["bridge"].submit([r for r, s in zip(outcome.rows, results, strict=True)
                                    if s == "stored"])
        items = [{"meter_id": r["meter_id"], "seq": r.get("seq"), "status": s}
                 for r, s in zip(outcome.rows, results, strict=True)]
        if not batch:
            return JSONResponse(items[0], status_code=201 if stored else 200)
        return JSONResponse({"stored": stored, "duplicates": len(results) - stored,
                             "results": items}, status_code=200)

    async def read_json(request: Request):
        """The request's JSON document, or the 4xx response that says why there is none."""
        body = await _read_body(request, cfg.max_body_bytes)
        if isinstance(body, JSONResponse):
            return body
        try:
            return ingest.parse_json(body)
        except ingest.BadJson as exc:
            stats["rejected_invalid"] += 1
            return _err(400, [{"loc": ["body"], "msg": str(exc), "type": "json"}])

    reading_body = {
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": READING_SCHEMA_REF}}},
        "responses": {code: {"description": text} for code, text in STATUS.items()},
    }

    @app.post(TRANSPORT["reading"]["path"], tags=["ingest"], openapi_extra=reading_body,
              summary="Store one reading")
    async def post_reading(request: Request):
        doc = await read_json(request)
        if isinstance(doc, JSONResponse):
            return doc
        return await ingest_docs(request, [doc], batch=False)

    batch_body = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["readings"],
            "properties": {"readings": {"type": "array", "items": READING_SCHEMA_REF}}}}}},
        "responses": reading_body["responses"],
    }

    @app.post(TRANSPORT["batch"]["path"], tags=["ingest"], openapi_extra=batch_body,
              summary="Store a batch of readings atomically (store-and-forward replay)")
    async def post_batch(request: Request):
        doc = await read_json(request)
        if isinstance(doc, JSONResponse):
            return doc
        docs = doc.get(BATCH_FIELD) if isinstance(doc, dict) else None
        if not isinstance(docs, list) or not docs:
            stats["rejected_invalid"] += 1
            return _err(422, [{"loc": ["body", BATCH_FIELD],
                               "msg": f"expected {{\"{BATCH_FIELD}\": [reading, ...]}} with at least one",
                               "type": "type"}])
        if len(docs) > cfg.max_batch:
            stats["rejected_invalid"] += 1
            return _err(413, [{"loc": ["body", BATCH_FIELD],
                               "msg": f"{len(docs)} readings exceed max_batch={cfg.max_batch}",
                               "type": "size"}])
        return await ingest_docs(request, docs, batch=True)

    @app.post(TRANSPORT["image"]["path"], tags=["evidence"], status_code=201,
              openapi_extra={"requestBody": {"required": True, "content": {
                  TRANSPORT["image"]["content_type"]: {
                      "schema": {"type": "string", "format": "binary"}}}},
                  "responses": {code: {"description": text} for code, text in STATUS.items()
                                if code not in ("400", "409")}},
              summary="Upload an evidence JPEG (raw body)")
    async def post_image(
        request: Request,
        meter_id: Annotated[str, Path(pattern=METER_RE)],
        x_omd_signature: Annotated[str | None, Header(alias=SIG_HEADER, pattern=SHA_RE)] = None,
        x_omd_image_sha256: Annotated[str | None, Header(alias=SHA_HEADER, pattern=SHA_RE)] = None,
    ):
        body = await _read_body(request, cfg.max_image_bytes)
        if isinstance(body, JSONResponse):
            return body
        if not body:
            return _err(422, [{"loc": ["body"], "msg": "empty body", "type": "image"}])
        import hashlib

        sha = hashlib.sha256(body).hexdigest()
        if x_omd_image_sha256 and x_omd_image_sha256 != sha:
            return _err(422, [{"loc": ["header", SHA_HEADER.lower()],
                               "msg": f"body SHA-256 {sha} does not match the announced "
                                      f"{x_omd_image_sha256}",
                               "type": "image.sha_mismatch"}])
        try:
            key = await run_in_threadpool(st().get_key, meter_id)
        except StorageUnavailable as exc:
            return _unavailable(exc)
        if x_omd_signature is None or key is None or not contract.verify(
            key, dict(contract.image_message(meter_id, sha), sig=x_omd_signature)
        ):
            why = (f"{SIG_HEADER} missing" if x_omd_signature is None
                   else f"unknown meter {meter_id!r}" if key is None else "signature does not match")
            authlog.warning("image upload rejected for %s: %s", meter_id, why)
            stats["rejected_auth"] += 1
            return _err(401, [{"loc": ["header", SIG_HEADER.lower()], "msg": why, "type": "auth"}])
        try:
            sha, new = await run_in_threadpool(images.store, cfg, st(), meter_id, body)
        except images.ImageRejected as exc:
            return _err(422, [{"loc": ["body"], "msg": str(exc), "type": "image"}])
        except StorageUnavailable as exc:
            return _unavailable(exc)
        except OSError as exc:
            log.error("cannot write image: %s", exc)
            return _err(503, [{"loc": [], "msg": f"cannot write image, nothing stored: {exc.strerror}",
                               "type": "storage.unavailable"}])
        return JSONResponse({"sha256": sha, "status": "stored" if new else "duplicate"},
                            status_code=201 if new else 200)

    @app.get("/api/v1/images/{sha256}", tags=["evidence"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    def get_image(sha256: Annotated[str, Path(pattern=SHA_RE)]):
        data = images.read_verified(cfg, st(), sha256)
        if data is None:
            raise HTTPException(404, "no such image (never uploaded, pruned, or failed its hash check)")
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

    @app.get("/api/v1/meters", tags=["read"])
    def list_meters():
        out = []
        for m in st().list_meters():
            latest = st().latest(m["meter_id"])
            out.append(m | {"latest": _public(latest) if latest else None})
        return out

    def _known(meter_id: str) -> None:
        if not any(m["meter_id"] == meter_id for m in st().list_meters()):
            raise HTTPException(404, f"unknown meter {meter_id!r}")

    @app.get("/api/v1/meters/{meter_id}/latest", tags=["read"])
    def latest(meter_id: str):
        r = st().latest(meter_id)
        if r is None:
            raise HTTPException(404, f"no readings for meter {meter_id!r}")
        return _public(r)

    @app.get("/api/v1/meters/{meter_id}/readings", tags=["read"],
             summary="History by time range; bucket>0 averages into buckets of that many seconds")
    def history(
        meter_id: str,
        start: str | None = None,
        end: str | None = None,
        bucket: Annotated[int, Query(ge=0, le=31 * 86400)] = 0,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ):
        _known(meter_id)
        now = datetime.now(UTC)
        s = _parse_time(start, now - timedelta(days=1), tz, "start")
        e = _parse_time(end, now + timedelta(seconds=cfg.max_clock_skew_s + 1), tz, "end")
        if bucket:
            return {"meter_id": meter_id, "start": s, "end": e, "bucket": bucket,
                    "points": st().downsample(meter_id, s, e, bucket)[:limit]}
        return {"meter_id": meter_id, "start": s, "end": e, "bucket": 0,
                "points": [_public(r) for r in st().readings(meter_id, s, e, limit)]}

    def _energy(meter_id: str, period: str, s: int, e: int) -> list[dict[str, Any]]:
        rows = st().readings(meter_id, s, e, 10_000_000)
        return energy.totals(rows, st().last_before(meter_id, s), tz, period)

    @app.get("/api/v1/meters/{meter_id}/energy", tags=["read"],
             summary="Import/export energy per local day or month (timezone from config)")
    def energy_totals(
        meter_id: str,
        period: Annotated[str, Query(pattern="^(day|month)$")] = "day",
        start: str | None = None,
        end: str | None = None,
    ):
        _known(meter_id)
        now = datetime.now(tz)
        default_start = (now - timedelta(days=30 if period == "day" else 366)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        s = _parse_time(start, default_start, tz, "start")
        e = _parse_time(end, now + timedelta(days=1), tz, "end")
        return {"meter_id": meter_id, "period": period, "timezone": cfg.timezone,
                "totals": _energy(meter_id, period, s, e)}

    @app.get("/api/v1/meters/{meter_id}/readings.csv", tags=["read"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}}})
    def export_csv(meter_id: str, start: str | None = None, end: str | None = None):
        _known(meter_id)
        now = datetime.now(UTC)
        s = _parse_time(start, datetime(1970, 1, 1, tzinfo=UTC), tz, "start")
        e = _parse_time(end, now + timedelta(days=1), tz, "end")
        cols = [c for c in contract.fields() if c != "sig"] + ["sig", "received_at"]

        def rows():
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(cols)
            offset, page = 0, 5000
            while True:
                chunk = st().readings(meter_id, s, e, page, offset)
                for r in chunk:
                    w.writerow(["" if r.get(c) is None else r[c] for c in cols])
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
                if len(chunk) < page:
                    break
                offset += page

        return StreamingResponse(rows(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{meter_id}.csv"'})

    @app.get("/api/v1/status", tags=["read"], summary="Data for the status page")
    def status():
        today0 = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        meters = []
        for m in st().reading_meters():
            r = st().latest(m)
            tot = _energy(m, "day", int(today0.timestamp()), int(time.time()) + 86400)
            today = next((t for t in tot if t["period"] == today0.strftime("%Y-%m-%d")),
                         {"import_wh": 0.0, "export_wh": 0.0})
            photo = st().last_evidence(m)
            meters.append({
                "meter_id": m, "latest": _public(r) if r else None,
                "today": {"import_wh": today["import_wh"], "export_wh": today["export_wh"]},
                "photo": f"/api/v1/images/{photo['sha256']}" if photo else None,
                "photo_timestamp": photo["timestamp"] if photo else None,
            })
        return {"server_time": datetime.now(UTC).isoformat(timespec="seconds"),
                "timezone": cfg.timezone, "meters": meters}

    @app.get("/api/v1/health", tags=["ops"])
    def health():
        try:
            n = st().count()
        except StorageUnavailable as exc:
            return _unavailable(exc)
        return {"status": "ok", "backend": st().backend, "readings": n,
                "allow_unsigned": cfg.allow_unsigned,
                "mqtt": None if state["bridge"] is None else state["bridge"].connected.is_set(),
                "counters": {k: v for k, v in stats.items() if k != "pruned_once"}}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return resources.files("omd_server").joinpath("static/status.html").read_text("utf-8")

    from .attestations_api import router as attestations_router

    app.include_router(attestations_router)
    from .public_api import router as public_router

    app.include_router(public_router)

    @app.exception_handler(StorageUnavailable)
    async def _storage_handler(request: Request, exc: StorageUnavailable):
        return _unavailable(exc)

    return app


def _oracle_start(cfg: Config, st):
    """The oracle requester and its Home Assistant publisher, when configured."""
    if not cfg.oracle_requester:
        return None
    from .oracle import Requester

    publisher = None
    if cfg.mqtt_host:
        from .tokens_ha import TokenPublisher

        publisher = TokenPublisher(cfg).start()
    return Requester(cfg, st, publisher).start(), publisher


def _oracle_stop(running) -> None:
    if running is None:
        return
    requester, publisher = running
    requester.stop()
    if publisher is not None:
        publisher.stop()


def openapi_document() -> dict[str, Any]:
    """OpenAPI with the contract's reading schema embedded as components/schemas/Reading."""
    app = create_app(Config(database_url="sqlite:///:memory:"))
    doc = app.openapi()
    reading = {k: v for k, v in contract.schema().items() if k not in ("$schema", "$id")}
    doc.setdefault("components", {}).setdefault("schemas", {})["Reading"] = reading
    return doc


def app_from_env() -> FastAPI:
    """uvicorn factory: configuration from $OMD_CONFIG and OMD_* variables."""
    cfg = load_config()
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(cfg)
