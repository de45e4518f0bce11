"""Attestations: receive the meters' device-signed interval attestations, check them with
eth-account against the device address the on-chain registry holds, store them, and serve each
one with the batch of signed readings behind it so anyone can recompute the Merkle root.

Status codes follow contract/transport.json (the meter acts on them): 201 stored, 200
duplicate, 400 not JSON, 401 meter not registered on-chain (yet) or signed by another key,
409 the seq is stored with other content, 413 too large, 422 malformed, wrong chain or
contract, high-s / bad v signature, revoked meter; 503 storage or chain unavailable (retry).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from . import attestation, chain, contract, ingest
from .storage import ReplayRejected, StorageUnavailable
from .storage.attestations import store_for, wire

log = logging.getLogger("omd_server.attestations")
router = APIRouter(tags=["attestations"])
T = contract.transport()
PATH = T["attestation"]["path"]
METER_RE = contract.schema()["properties"]["meter_id"]["pattern"]


def _err(status: int, loc: list[Any], msg: str, typ: str) -> JSONResponse:
    headers = {"Retry-After": "30"} if status == 503 else None
    return JSONResponse({"detail": [{"loc": loc, "msg": msg[:240], "type": typ}]},
                        status_code=status, headers=headers)


async def _body(request: Request, limit: int) -> bytes | JSONResponse:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _err(413, ["body"], f"body of {declared} bytes exceeds {limit} bytes", "size")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _err(413, ["body"], f"body exceeds {limit} bytes", "size")
        chunks.append(chunk)
    return b"".join(chunks)


def _check(doc: dict[str, Any], dep: chain.Deployment) -> tuple[JSONResponse | None, str, str]:
    """(error or None, digest hex, signer) for a well-formed document: domain, signature,
    registry. Blocking (RPC): run in a thread."""
    if doc["chainId"] != dep.chain_id:
        return _err(422, ["body", "chainId"], f"signed for chain {doc['chainId']}, this "
                    f"server's deployment is chain {dep.chain_id}", "chain.wrong_chain"), "", ""
    if doc["verifyingContract"].lower() != dep.verifier.lower():
        return _err(422, ["body", "verifyingContract"], f"signed for {doc['verifyingContract']}, "
                    f"the deployment's AttestationVerifier is {dep.verifier}",
                    "chain.wrong_contract"), "", ""
    digest = attestation.digest(doc)
    try:
        signer = attestation.recover(doc)
    except Exception as exc:  # eth-keys: r is no curve point, etc.
        return _err(422, ["body", "signature"], f"signature does not recover to any key: {exc}",
                    "value.signature"), "", ""
    m = dep.meter(doc["meterId"])
    if int(m["device"], 16) == 0:
        return _err(401, ["body", "meterId"], f"meter {doc['meterId']!r} is not registered "
                    "on-chain (MeterRegistry)", "auth.unregistered"), "", ""
    if m["revoked"]:
        return _err(422, ["body", "meterId"], f"meter {doc['meterId']!r} is revoked on-chain",
                    "chain.revoked"), "", ""
    if signer.lower() != m["device"].lower():
        return _err(401, ["body", "signature"], f"signed by {signer}, the registered device of "
                    f"{doc['meterId']!r} is {m['device']}", "auth.bad_signature"), "", ""
    return None, "0x" + digest.hex(), signer


@router.post(PATH, summary="Store one device-signed interval attestation",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "object"}}}}})
async def post_attestation(request: Request):
    cfg = request.app.state.cfg
    body = await _body(request, cfg.max_body_bytes)
    if isinstance(body, JSONResponse):
        return body
    try:
        doc = ingest.parse_json(body)
    except ingest.BadJson as exc:
        return _err(400, ["body"], str(exc), "json")
    bad = attestation.problems(doc)
    if bad:
        return JSONResponse({"detail": [{"loc": ["body", *loc], "msg": msg, "type": "value"}
                                        for loc, msg in bad[:20]]}, status_code=422)
    try:
        dep = chain.deployment(cfg)
        err, digest, signer = await run_in_threadpool(_check, doc, dep)
    except chain.ChainUnavailable as exc:
        log.warning("attestation from %s not checked: %s", doc["meterId"], exc)
        return _err(503, [], f"cannot check the attestation now: {exc}", "chain.unavailable")
    if err is not None:
        log.info("attestation %s/%s refused: %s", doc["meterId"], doc["seq"], err.body[:200])
        return err
    try:
        status = await run_in_threadpool(store_for(request.app.state.storage()).insert, doc,
                                         digest, signer)
    except ReplayRejected as exc:
        return _err(409, ["body", "seq"], f"replay rejected: {exc.reason}", "replay")
    except StorageUnavailable as exc:
        return _err(503, [], f"storage unavailable, nothing was stored: {exc}",
                    "storage.unavailable")
    oracle = getattr(request.app.state, "oracle", lambda: None)()
    if oracle is not None and status == "stored":
        oracle.notify()
    return JSONResponse({"meterId": doc["meterId"], "seq": doc["seq"], "digest": digest,
                         "status": status}, status_code=201 if status == "stored" else 200)


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in contract.fields() if r.get(k) is not None}


def batch(st, row: dict[str, Any]) -> dict[str, Any]:
    """The readings behind an attestation and the Merkle check over them."""
    readings = store_for(st).readings_by_seq(row["meter_id"], row["first_reading_seq"],
                                             row["reading_count"])
    public = [_public(r) for r in readings]
    texts = [contract.canonical(r) for r in public]
    intact = all(ingest.digest(r, t) == s["digest"] for r, t, s in zip(public, texts, readings,
                                                                        strict=True))
    root = attestation.batch_root(texts)
    complete = len(public) == row["reading_count"]
    return {
        "readings": public,
        "leaves": ["0x" + attestation.leaf(t).hex() for t in texts],
        "expected": row["reading_count"],
        "found": len(public),
        "complete": complete,
        "stored_text_intact": intact,
        "root": root,
        "root_matches": complete and root == row["readings_root"],
    }


def _read(st, meter_id: str, seq: int) -> dict[str, Any] | JSONResponse:
    row = store_for(st).get(meter_id, seq)
    if row is None:
        return _err(404, ["path", "seq"], f"no attestation {seq} for meter {meter_id!r}",
                    "not_found")
    doc = wire(row)
    return {"attestation": doc, "digest": row["digest"], "signer": row["signer"],
            "received_at": row["received_at"], "abi_encoded": attestation.abi_encoded(doc),
            "batch": batch(st, row),
            "merkle": contract._load("attestation.json")["merkle"]}


MeterId = Annotated[str, Path(pattern=METER_RE)]
Seq = Annotated[int, Path(ge=0, le=2**63 - 1)]


@router.get("/api/v1/meters/{meter_id}/attestations/{seq}",
            summary="One attestation with its batch of signed readings and the Merkle check")
def get_attestation(request: Request, meter_id: MeterId, seq: Seq):
    try:
        return _read(request.app.state.storage(), meter_id, seq)
    except StorageUnavailable as exc:
        return _err(503, [], f"storage unavailable: {exc}", "storage.unavailable")


@router.get("/api/v1/meters/{meter_id}/attestations",
            summary="A meter's attestations in seq order (without their readings)")
def list_attestations(request: Request, meter_id: MeterId,
                      after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    try:
        rows = store_for(request.app.state.storage()).list(meter_id, after_seq, limit)
    except StorageUnavailable as exc:
        return _err(503, [], f"storage unavailable: {exc}", "storage.unavailable")
    return {"meterId": meter_id, "attestations": [
        {"attestation": wire(r), "digest": r["digest"], "received_at": r["received_at"]}
        for r in rows]}
