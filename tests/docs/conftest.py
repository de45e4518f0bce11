"""Shared fixtures of the docs tests: built sites in temp dirs (the real tree is only read),
a loopback HTTP server, and headless Chromium driven by Playwright."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from openmetering.docs import site
from openmetering.paths import ProjectPaths, project

HERE = Path(__file__).resolve().parent
ARTIFACTS = project().root / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# Debian's chromium, not a Playwright-downloaded one; everything that would phone home is off.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _load_full_root():
    spec = importlib.util.spec_from_file_location("docs_full_root",
                                                  HERE / "fixtures" / "full_root.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


full_root_mod = _load_full_root()


@pytest.fixture(scope="session")
def real_root(tmp_path_factory) -> Path:
    """The repository's docs inputs as they are, built the way `omd docs build` builds them."""
    root = full_root_mod.make(tmp_path_factory.mktemp("real"))
    site.build(ProjectPaths.at(root))
    return root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(site: Path):
    handler = functools.partial(_Quiet, directory=str(site))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="session")
def serve_site():
    return serve


@pytest.fixture(scope="session")
def make_root():
    return full_root_mod.make


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break asyncio.run() in tests of other folders.
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not installed (scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        try:
            yield ctx
        finally:
            ctx.close()
