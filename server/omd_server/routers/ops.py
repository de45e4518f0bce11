"""Operations: health (backend, counters, MQTT) and the status page itself."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ..deps import BridgeDep, CfgDep, StatsDep, StorageDep

router = APIRouter()


@router.get("/api/v1/health", tags=["ops"])
def health(st: StorageDep, cfg: CfgDep, stats: StatsDep, bridge: BridgeDep):
    n = st.count()  # StorageUnavailable -> 503 (errors.install)
    return {"status": "ok", "backend": st.backend, "readings": n,
            "allow_unsigned": cfg.allow_unsigned,
            "mqtt": None if bridge is None else bridge.connected.is_set(),
            "counters": dict(stats)}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page():
    return resources.files("omd_server").joinpath("static/status.html").read_text("utf-8")
