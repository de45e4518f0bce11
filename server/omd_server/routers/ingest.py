"""POST readings, one or a batch: validate everything, then store in one transaction."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from .. import contract, ingest
from ..deps import IncomingJson, Services
from ..errors import ApiError, SafeJSONResponse, unavailable
from ..storage import Rejected, StorageUnavailable

log = logging.getLogger("omd_server")
authlog = logging.getLogger("omd_server.auth")

TRANSPORT = contract.transport()
BATCH_FIELD = TRANSPORT["batch"]["field"]
STATUS = {code: s["meaning"] for code, s in TRANSPORT["status"].items()}
READING_SCHEMA_REF = {"$ref": "#/components/schemas/Reading"}
RESPONSES = {code: {"description": text} for code, text in STATUS.items()}

router = APIRouter(tags=["ingest"])


async def store(request: Request, docs: list[Any], batch: bool, svc: Services) -> SafeJSONResponse:
    """Validate and authenticate docs completely, then store them; raises ApiError."""
    cfg, st, stats, bridge = svc.cfg, svc.storage, svc.stats, svc.bridge
    client = request.client.host if request.client else "?"
    try:
        outcome = await run_in_threadpool(ingest.process, docs, cfg, st.get_key, batch)
    except StorageUnavailable as exc:
        raise unavailable(exc) from None
    if outcome.problems:
        if outcome.auth_only:
            stats["rejected_auth"] += 1
            authlog.warning("rejected %d reading(s) from %s: %s", len(docs), client,
                            "; ".join(f"{p.loc}: {p.msg}" for p in outcome.problems[:5]))
            raise ApiError(401, outcome.problems)
        stats["rejected_invalid"] += 1
        log.info("invalid reading(s) from %s: %s", client,
                 [p.as_dict() for p in outcome.problems[:3]])
        raise ApiError(422, outcome.problems)
    try:
        results = await run_in_threadpool(st.insert_readings, outcome.rows)
    except Rejected as exc:
        stats["rejected_replay" if exc.status == 409 else "rejected_invalid"] += 1
        where = ["body", BATCH_FIELD, exc.index] if batch else ["body"]
        loc = where + ([exc.field] if exc.field else [])
        (authlog if exc.status == 409 else log).warning(
            "%s rejected from %s: meter %s: %s", exc.type, client, exc.meter_id, exc.reason)
        msg = f"replay rejected: {exc.reason}" if exc.status == 409 else exc.reason
        raise ApiError.one(exc.status, loc, msg, exc.type) from None
    except StorageUnavailable as exc:
        raise unavailable(exc) from None
    stored = results.count("stored")
    stats["stored"] += stored
    if bridge is not None and stored:
        bridge.submit([r for r, s in zip(outcome.rows, results, strict=True) if s == "stored"])
    items = [{"meter_id": r["meter_id"], "seq": r.get("seq"), "status": s}
             for r, s in zip(outcome.rows, results, strict=True)]
    if not batch:
        return SafeJSONResponse(items[0], status_code=201 if stored else 200)
    return SafeJSONResponse({"stored": stored, "duplicates": len(results) - stored,
                             "results": items}, status_code=200)


@router.post(TRANSPORT["reading"]["path"], summary="Store one reading", openapi_extra={
    "requestBody": {"required": True,
                    "content": {"application/json": {"schema": READING_SCHEMA_REF}}},
    "responses": RESPONSES})
async def post_reading(request: Request, posted: IncomingJson):
    return await store(request, [posted.doc], False, posted.svc)


@router.post(TRANSPORT["batch"]["path"],
             summary="Store a batch of readings atomically (store-and-forward replay)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "required": [BATCH_FIELD], "properties": {
                     BATCH_FIELD: {"type": "array", "items": READING_SCHEMA_REF}}}}}},
                 "responses": RESPONSES})
async def post_batch(request: Request, posted: IncomingJson):
    doc, svc = posted.doc, posted.svc
    cfg, stats = svc.cfg, svc.stats
    docs = doc.get(BATCH_FIELD) if isinstance(doc, dict) else None
    if not isinstance(docs, list) or not docs:
        stats["rejected_invalid"] += 1
        raise ApiError.one(422, ["body", BATCH_FIELD],
                           f"expected {{\"{BATCH_FIELD}\": [reading, ...]}} with at least one",
                           "type")
    if len(docs) > cfg.max_batch:
        stats["rejected_invalid"] += 1
        raise ApiError.one(413, ["body", BATCH_FIELD],
                           f"{len(docs)} readings exceed max_batch={cfg.max_batch}", "size")
    return await store(request, docs, True, svc)
