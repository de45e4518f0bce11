"""Evidence photos: signed JPEG upload and hash-verified download."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .. import contract, images
from ..deps import SHA_RE, CfgDep, MeterId, StatsDep, StorageDep, read_body
from ..errors import ApiError, SafeJSONResponse, unavailable
from ..storage import StorageUnavailable
from .ingest import STATUS

authlog = logging.getLogger("omd_server.auth")
IMAGE = contract.transport()["image"]
SIG_HEADER, SHA_HEADER = IMAGE["signature_header"], IMAGE["sha256_header"]

router = APIRouter(tags=["evidence"])


@router.post(IMAGE["path"], status_code=201, summary="Upload an evidence JPEG (raw body)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 IMAGE["content_type"]: {"schema": {"type": "string", "format": "binary"}}}},
                 "responses": {code: {"description": text} for code, text in STATUS.items()
                               if code not in ("400", "409")}})
async def post_image(
    request: Request,
    meter_id: MeterId,
    cfg: CfgDep,
    st: StorageDep,
    stats: StatsDep,
    x_omd_signature: Annotated[str | None, Header(alias=SIG_HEADER, pattern=SHA_RE)] = None,
    x_omd_image_sha256: Annotated[str | None, Header(alias=SHA_HEADER, pattern=SHA_RE)] = None,
):
    body = await read_body(request, cfg.max_image_bytes)
    if not body:
        raise ApiError.one(422, ["body"], "empty body", "image")
    sha = hashlib.sha256(body).hexdigest()
    if x_omd_image_sha256 and x_omd_image_sha256 != sha:
        raise ApiError.one(422, ["header", SHA_HEADER.lower()],
                           f"body SHA-256 {sha} does not match the announced {x_omd_image_sha256}",
                           "image.sha_mismatch")
    try:
        key = await run_in_threadpool(st.get_key, meter_id)
    except StorageUnavailable as exc:
        raise unavailable(exc) from None
    if x_omd_signature is None or key is None or not contract.verify(
        key, dict(contract.image_message(meter_id, sha), sig=x_omd_signature)
    ):
        why = (f"{SIG_HEADER} missing" if x_omd_signature is None
               else f"unknown meter {meter_id!r}" if key is None else "signature does not match")
        authlog.warning("image upload rejected for %s: %s", meter_id, why)
        stats["rejected_auth"] += 1
        raise ApiError.one(401, ["header", SIG_HEADER.lower()], why, "auth")
    try:
        sha, new = await run_in_threadpool(images.store, cfg, st, meter_id, body)
    except images.ImageRejected as exc:
        raise ApiError.one(422, ["body"], str(exc), "image") from None
    except (StorageUnavailable, OSError) as exc:
        raise unavailable(exc, "cannot write image") from None
    return SafeJSONResponse({"sha256": sha, "status": "stored" if new else "duplicate"},
                            status_code=201 if new else 200)


@router.get("/api/v1/images/{sha256}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def get_image(sha256: Annotated[str, Path(pattern=SHA_RE)], cfg: CfgDep, st: StorageDep):
    data = images.read_verified(cfg, st, sha256)
    if data is None:
        raise ApiError.one(404, ["path", "sha256"], "no such image (never uploaded, pruned, or "
                           "failed its hash check)", "not_found")
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})
