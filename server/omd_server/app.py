"""FastAPI application: the routers (routers/), their dependencies (deps.py), the one error
shape (errors.py), and the background work of a running server (image pruning, MQTT)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from . import __version__, contract, deps, errors, images, routers
from .config import Config
from .config import load as load_config
from .storage import SqlStorage, open_storage

log = logging.getLogger("omd_server")

DESCRIPTION = (
    "LAN data server for Open Metering Device meters. Readings follow "
    "contract/reading.schema.json (HMAC-SHA256 signed, see x-canonical). Every error answer "
    "is {\"detail\": [{\"loc\": [...], \"msg\": \"...\", \"type\": \"...\"}]}, loc pointing "
    "into the request (body, query, path or header).")


def _housekeeping(cfg: Config, st, stop: threading.Event) -> None:
    first = True
    while not stop.wait(0 if first else 3600):
        first = False
        try:
            images.prune(cfg, st())
        except Exception:
            log.exception("image pruning failed")


def create_app(cfg: Config | None = None, storage: SqlStorage | None = None) -> FastAPI:
    cfg = cfg or load_config()
    state: dict[str, Any] = {"storage": storage, "bridge": None}

    def st() -> SqlStorage:
        if state["storage"] is None:
            state["storage"] = open_storage(cfg)
        return state["storage"]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(st)
        stop = threading.Event()
        threading.Thread(target=_housekeeping, args=(cfg, st, stop), name="omd-prune",
                         daemon=True).start()
        if cfg.mqtt_host:
            from .mqtt import Bridge

            state["bridge"] = Bridge(cfg, app.state.stats)
            await run_in_threadpool(state["bridge"].start, st())
        state["oracle"] = _oracle_start(cfg, st())
        try:
            yield
        finally:
            stop.set()
            _oracle_stop(state.pop("oracle"))
            if state["bridge"] is not None:
                await run_in_threadpool(state["bridge"].stop)
            if storage is None and state["storage"] is not None:
                state["storage"].close()

    app = FastAPI(title="Open Metering Device server", version=__version__,
                  description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=errors.SafeJSONResponse)
    app.state.cfg = cfg
    app.state.stats = Counter()
    app.state.storage = st
    app.state.bridge = lambda: state["bridge"]
    app.state.oracle = lambda: (state.get("oracle") or (None,))[0]
    app.state.services = deps.Services(cfg, app.state.stats, st, app.state.bridge)
    errors.install(app)
    for router in routers.ALL:
        app.include_router(router)
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
