"""Fixtures for the LAN data server tests: real PostgreSQL, real mosquitto, real uvicorn."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from omd_server.app import create_app
from omd_server.config import Config, to_env

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from omd_server_testlib import free_port, wait_port  # noqa: E402


# -- PostgreSQL -------------------------------------------------------------
class PgServer:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="omd-pg-"))
        self.port = free_port()
        self.user = "omd"
        self.as_root = os.geteuid() == 0
        self._dbs = itertools.count()

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        # PostgreSQL refuses to run as root: drop to the Debian 'postgres' account
        full = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=60, check=check)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        res = self._run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", self.user,
                        "--no-sync", check=False)
        if res.returncode:
            raise RuntimeError(f"initdb failed: {res.stdout}\n{res.stderr}")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        res = self._run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts,
                        "-l", str(self.dir / "log"), "-w", "-t", "30", "start", check=False)
        if res.returncode:
            log = (self.dir / "log").read_text(errors="replace") if (self.dir / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {res.stdout}\n{res.stderr}\n{log}")

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                  "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(self._dbs)}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server():
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN}: install Debian's postgresql "
                    "(the PostgreSQL backend must be tested, not skipped)")
    srv = PgServer()
    try:
        srv.start()
    except Exception as exc:
        srv.stop()
        pytest.fail(f"could not start a PostgreSQL server for the backend tests: {exc}")
    yield srv
    srv.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/omd.db"
    return request.getfixturevalue("pg_server").new_database()


# -- app --------------------------------------------------------------------
def make_cfg(tmp_path: Path, **over) -> Config:
    cfg = Config(database_url=f"sqlite:///{tmp_path}/omd.db", image_dir=str(tmp_path / "images"))
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


class Harness:
    """An in-process app plus direct access to its storage, for precise assertions."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.app = create_app(cfg)
        self.client = TestClient(self.app)
        self.client.__enter__()
        self.storage = self.app.state.storage()
        self.keys: dict[str, str] = {}

    def provision(self, meter_id: str = "meter-01") -> str:
        key = os.urandom(32).hex()
        self.storage.set_key(meter_id, key)
        self.keys[meter_id] = key
        return key

    def post(self, doc, batch: bool = False):
        if batch:
            return self.client.post("/api/v1/readings/batch", json={"readings": doc})
        return self.client.post("/api/v1/readings", json=doc)

    def close(self):
        self.client.__exit__(None, None, None)


@pytest.fixture
def harness_factory(tmp_path):
    made = []

    def make(**over):
        h = Harness(make_cfg(tmp_path, **over))
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


@pytest.fixture(scope="module")
def fuzz_harness(tmp_path_factory):
    # module scope: hypothesis runs many examples against one app and one database
    h = Harness(make_cfg(tmp_path_factory.mktemp("fuzz")))
    key = h.provision()
    yield h, key
    h.close()


@pytest.fixture(scope="module")
def prop(tmp_path_factory):
    # the property tests' one app and database; durability is tested elsewhere (kill -9), and
    # here an fsync per example would only add minutes
    h = Harness(make_cfg(tmp_path_factory.mktemp("prop"), sqlite_synchronous="OFF"))
    yield h
    h.close()


@pytest.fixture
def h(harness_factory):
    return harness_factory()


# -- real processes ----------------------------------------------------------
class ServerProcess:
    def __init__(self, tmp_path: Path, cfg: Config, workers: int = 1):
        self.cfg, self.workers = cfg, workers
        self.port = cfg.port = free_port()
        self.log = open(tmp_path / f"server-{self.port}.log", "ab")
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # a second start would orphan the running server (stop() ends only the last one)
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        env = dict(os.environ) | to_env(self.cfg)
        env.pop("OMD_CONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "omd_server.cli", "serve", "--workers", str(self.workers)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, 30, self.proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError("server did not become healthy")

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, 9)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def server_process(tmp_path):
    made = []

    def make(cfg: Config, workers: int = 1) -> ServerProcess:
        sp = ServerProcess(tmp_path, cfg, workers)
        made.append(sp)
        sp.start()
        return sp

    yield make
    for sp in made:
        sp.stop()


@pytest.fixture
def mosquitto(tmp_path):
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto not installed (Debian package 'mosquitto'); the HA test needs it")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    log = open(tmp_path / "mosquitto.log", "wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, 10, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
