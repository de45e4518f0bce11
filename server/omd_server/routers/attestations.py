"""Attestations: the meters' device-signed interval attestations (contract/attestation.json),
checked with eth-account against the device address the on-chain registry holds, stored, and
served with the batch of signed readings behind each, so anyone can recompute the Merkle root.

Status codes follow contract/transport.json (the meter acts on them): 201 stored, 200
duplicate, 400 not JSON, 401 meter not registered on-chain (yet) or signed by another key,
409 the seq is stored with other content, 413 too large, 422 malformed, wrong chain or
contract, high-s / bad v signature, revoked meter; 503 storage or chain unavailable (retry).
The document is checked completely before the chain is asked, so a malformed attestation gets
its 4xx even while the chain is down, and is never told to retry.

The URL paths and the answers' shapes are read by the oracle (Chainlink Functions): they are
documented in server/README.md and held by tests/server/test_attestations.py.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from .. import attestation, chain, contract, ingest
from ..deps import AttestationsDep, CfgDep, MeterId, read_body
from ..errors import ApiError, Problem, SafeJSONResponse, unavailable
from ..storage import Rejected, StorageUnavailable
from ..storage.attestations import AttestationStore, wire
from .read import signed

log = logging.getLogger("omd_server.attestations")
router = APIRouter(tags=["attestations"])

PATH = contract.transport()["attestation"]["path"]
MAX_UINT = attestation.spec()["wire"]["server_max_uint"]
MAX_PROBLEMS = 20
Seq = Annotated[int, Path(ge=0, le=MAX_UINT, description="the attestation's seq")]


def _refused(status: int, loc: list[Any], msg: str, typ: str) -> ApiError:
    return ApiError.one(status, ["body", *loc], msg, typ)


def check(doc: dict[str, Any], dep: chain.Deployment) -> tuple[str, str]:
    """(digest hex, signer) of a well-formed document, or ApiError: domain, signature,
    registry. Blocking (RPC): run in a thread. ChainUnavailable if the chain does not answer."""
    if doc["chainId"] != dep.chain_id:
        raise _refused(422, ["chainId"], f"signed for chain {doc['chainId']}, this server's "
                       f"deployment is chain {dep.chain_id}", "chain.wrong_chain")
    if doc["verifyingContract"].lower() != dep.verifier.lower():
        raise _refused(422, ["verifyingContract"], f"signed for {doc['verifyingContract']}, "
                       f"the deployment's AttestationVerifier is {dep.verifier}",
                       "chain.wrong_contract")
    digest = attestation.digest(doc)
    try:
        signer = attestation.recover(doc)
    except Exception as exc:  # eth-keys: r is no curve point, etc.
        raise _refused(422, ["signature"], f"signature does not recover to any key: {exc}",
                       "value.signature") from None
    m = dep.meter(doc["meterId"])
    if int(m["device"], 16) == 0:
        raise _refused(401, ["meterId"], f"meter {doc['meterId']!r} is not registered on-chain "
                       "(MeterRegistry)", "auth.unregistered")
    if m["revoked"]:
        raise _refused(422, ["meterId"], f"meter {doc['meterId']!r} is revoked on-chain",
                       "chain.revoked")
    if signer.lower() != m["device"].lower():
        raise _refused(401, ["signature"], f"signed by {signer}, the registered device of "
                       f"{doc['meterId']!r} is {m['device']}", "auth.bad_signature")
    return "0x" + digest.hex(), signer


@router.post(PATH, summary="Store one device-signed interval attestation",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "object"}}}}})
async def post_attestation(request: Request, cfg: CfgDep, store: AttestationsDep):
    body = await read_body(request, cfg.max_body_bytes)
    try:
        doc = ingest.parse_json(body)
    except ingest.BadJson as exc:
        raise ApiError.one(400, ["body"], str(exc), "json") from None
    bad = attestation.problems(doc)
    if bad:
        raise ApiError(422, [Problem(["body", *loc], msg, "value")
                             for loc, msg in bad[:MAX_PROBLEMS]])
    try:
        dep = chain.deployment(cfg)
        digest, signer = await run_in_threadpool(check, doc, dep)
    except chain.ChainUnavailable as exc:
        log.warning("attestation from %s not checked: %s", doc["meterId"], exc)
        raise unavailable(exc, "cannot check the attestation now", "chain.unavailable") from None
    except ApiError as exc:
        log.info("attestation %s/%s refused: %s", doc["meterId"], doc["seq"],
                 exc.problems[0].msg[:200])
        raise
    try:
        status = await run_in_threadpool(store.insert, doc, digest, signer)
    except Rejected as exc:
        msg = f"replay rejected: {exc.reason}" if exc.status == 409 else exc.reason
        raise ApiError.one(exc.status, ["body", "seq"] if exc.field else ["body"], msg,
                           exc.type) from None
    except StorageUnavailable as exc:
        raise unavailable(exc) from None
    oracle = getattr(request.app.state, "oracle", lambda: None)()
    if oracle is not None and status == "stored":
        oracle.notify()  # ask the chain now, not at the requester's next poll
    return SafeJSONResponse({"meterId": doc["meterId"], "seq": doc["seq"], "digest": digest,
                             "status": status}, status_code=201 if status == "stored" else 200)


def batch(store: AttestationStore, row: dict[str, Any]) -> dict[str, Any]:
    """The readings behind an attestation and the Merkle check over them."""
    readings = store.readings_by_seq(row["meter_id"], row["first_reading_seq"],
                                     row["reading_count"])
    public = [signed(r) for r in readings]
    texts = [contract.canonical(r) for r in public]
    intact = all(ingest.digest(r, t) == s["digest"]
                 for r, t, s in zip(public, texts, readings, strict=True))
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


@router.get("/api/v1/meters/{meter_id}/attestations/{seq}",
            summary="One attestation with its batch of signed readings and the Merkle check")
def get_attestation(meter_id: MeterId, seq: Seq, store: AttestationsDep):
    row = store.get(meter_id, seq)  # StorageUnavailable -> 503 (errors.install)
    if row is None:
        raise ApiError.one(404, ["path", "seq"], f"no attestation {seq} for meter {meter_id!r}",
                           "not_found")
    doc = wire(row)
    return {"attestation": doc, "digest": row["digest"], "signer": row["signer"],
            "received_at": row["received_at"], "abi_encoded": attestation.abi_encoded(doc),
            "batch": batch(store, row), "merkle": attestation.spec()["merkle"]}


@router.get("/api/v1/meters/{meter_id}/attestations",
            summary="A meter's attestations in seq order (without their readings)")
def list_attestations(
    meter_id: MeterId,
    store: AttestationsDep,
    after_seq: Annotated[int, Query(ge=0, le=MAX_UINT, description="list seqs above this")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="most attestations returned")] = 100,
):
    rows = store.list(meter_id, after_seq, limit)
    return {"meterId": meter_id, "attestations": [
        {"attestation": wire(r), "digest": r["digest"], "received_at": r["received_at"]}
        for r in rows]}
