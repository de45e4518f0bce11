"""Public, verifiable data, and the oracle's record on the LAN API.

A read-only page and API listing each meter's certified intervals
(minted on-chain through the oracle) with their transactions, energy, aC and a link to the
batch of signed readings behind each. Off unless the setting public_data is on; when off the
routes answer 404 as if they did not exist.

Nothing here asks to be trusted: `omd-server verify` (verify.py) recomputes the batch's Merkle
root, checks the device signature against the on-chain registry and reads the on-chain record.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from .. import contract
from ..deps import CfgDep, MeterId, StorageDep
from ..errors import ApiError
from ..storage.attestations import store_for
from ..storage.oracle import oracle_store

router = APIRouter(tags=["public"])
METER_RE = contract.schema()["properties"]["meter_id"]["pattern"]
MJ_PER_KWH = 3_600_000_000


def _require_public(cfg) -> None:
    """The public routes do not exist unless public_data is on."""
    if not cfg.public_data:
        raise ApiError.one(404, [], "Not Found", "not_found")


def intervals(st, meter_id: str | None, after_seq: int, limit: int) -> list[dict[str, Any]]:
    att = store_for(st)
    out = []
    for r in oracle_store(st).certified(meter_id, limit, after_seq):
        a = att.get(r["meter_id"], r["seq"]) or {}
        out.append({
            "meter_id": r["meter_id"], "seq": r["seq"],
            "interval_start": a.get("interval_start"), "interval_end": r["interval_end"],
            "energy_mj": r["minted_mj"], "energy_kwh": round((r["minted_mj"] or 0) / MJ_PER_KWH, 9),
            "carbon_mg_co2e": r["minted_mg"],
            "request_tx": r["request_tx"], "fulfil_tx": r["fulfil_tx"],
            "block": r["fulfil_block"], "digest": a.get("digest"),
            "readings_root": a.get("readings_root"), "signer": a.get("signer"),
            "batch": f"/api/v1/meters/{r['meter_id']}/attestations/{r['seq']}",
            "verify": f"omd-server verify --server URL {r['meter_id']} {r['seq']}",
        })
    return out


@router.get("/api/v1/public/intervals",
            summary="Certified intervals with transactions, energy, aC and the batch (public_data)")
def public_intervals(cfg: CfgDep, st: StorageDep,
                     meter_id: Annotated[str | None, Query(pattern=METER_RE)] = None,
                     after_seq: Annotated[int, Query(ge=-1, le=2**63 - 1)] = -1,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    _require_public(cfg)
    return {"units": {"energy": "mJ (1 kWh = 3.6e9 mJ)",
                      "carbon": "mg CO2e avoided (estimate, not a certified offset)"},
            "intervals": intervals(st, meter_id, after_seq, limit)}


@router.get("/api/v1/meters/{meter_id}/oracle",
            summary="The oracle requester's record of a meter's intervals (state, reason, txs)")
def oracle_record(meter_id: MeterId, st: StorageDep):
    rows = oracle_store(st).meter(meter_id)
    return {"meter_id": meter_id, "intervals": [
        {k: r[k] for k in ("seq", "state", "reason", "attempts", "request_id", "request_tx",
                           "fulfil_tx", "minted_mj", "minted_mg", "fulfilled_at")}
        | {"retryable": bool(r["retryable"])} for r in rows]}


@router.get("/public", response_class=HTMLResponse, include_in_schema=False)
def public_page(cfg: CfgDep, st: StorageDep):
    _require_public(cfg)
    rows = intervals(st, None, -1, 1000)
    e = html.escape
    body = "".join(
        f"<tr><td>{e(r['meter_id'])}</td><td>{r['seq']}</td><td>{r['interval_end']}</td>"
        f"<td>{r['energy_kwh']:.6f}</td><td>{(r['carbon_mg_co2e'] or 0) / 1e6:.6f}</td>"
        f"<td><code>{e(r['fulfil_tx'] or '')}</code></td>"
        f"<td><a href=\"{e(r['batch'])}\">batch</a></td></tr>" for r in rows)
    return ("<!doctype html><html><head><meta charset=utf-8><title>Certified intervals</title>"
            "</head><body><h1>Certified intervals</h1><p>Energy each meter signed and the chain "
            "verified. aC is an avoided-emissions estimate, not a certified offset. Check any "
            "row yourself: <code>omd-server verify --server URL METER SEQ</code>.</p><table>"
            "<tr><th>meter</th><th>seq</th><th>interval end</th><th>kWh</th><th>kg CO2e</th>"
            f"<th>fulfilment tx</th><th>readings</th></tr>{body}</table></body></html>")
