"""Disk full and database errors: a clear 503, nothing half-stored, nothing acknowledged lost."""

import errno
import hashlib

import psycopg
from omd_server import images
from omd_server.simulate import fake_jpeg
from omd_server_testlib import free_port, reading


def test_sqlite_disk_full_is_a_clean_503(harness_factory):
    h = harness_factory(sqlite_max_size_mb=1)
    key = h.provision()
    acked = 0
    full = None
    seq = 1
    for _ in range(30):  # 1 MB holds a few thousand readings: bounded, always reaches "full"
        batch = [reading(seq=s, key=key, fw="x" * 32) for s in range(seq, seq + 500)]
        res = h.post(batch, batch=True)
        if res.status_code == 503:
            full = batch
            break
        assert res.status_code == 200, res.text
        acked += res.json()["stored"]
        seq += 500
    assert full is not None, "the 1 MB cap was never reached"
    detail = res.json()["detail"][0]
    assert "full" in detail["msg"] and "nothing was stored" in detail["msg"]
    assert res.headers["retry-after"]
    assert h.storage.count() == acked  # the refused batch left no partial rows
    # reads keep working while writes are refused
    assert h.client.get("/api/v1/meters/meter-01/latest").status_code == 200
    h.storage.set_max_size_mb(0)
    res = h.post(full, batch=True)
    assert res.status_code == 200 and res.json()["stored"] == 500
    assert h.storage.count() == acked + 500


def test_postgres_refusing_writes_is_a_clean_503(harness_factory, pg_server):
    url = pg_server.new_database()
    h = harness_factory(database_url=url)
    key = h.provision()
    assert h.post(reading(seq=1, key=key)).status_code == 201
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server.url(), autocommit=True) as c:
        c.execute(f"ALTER DATABASE {dbname} SET default_transaction_read_only = on")
    h.storage.close()  # new sessions pick up the setting
    res = h.post([reading(seq=s, key=key) for s in range(2, 50)], batch=True)
    assert res.status_code == 503, res.text
    assert "read-only" in res.json()["detail"][0]["msg"]
    with psycopg.connect(pg_server.url(), autocommit=True) as c:
        c.execute(f"ALTER DATABASE {dbname} SET default_transaction_read_only = off")
    h.storage.close()
    assert h.storage.count() == 1
    res = h.post([reading(seq=s, key=key) for s in range(2, 50)], batch=True)
    assert res.status_code == 200 and res.json()["stored"] == 48


def test_database_down_is_a_503(harness_factory, tmp_path):
    from fastapi.testclient import TestClient
    from omd_server.app import create_app
    from omd_server.config import Config

    cfg = Config(database_url=f"postgresql://omd@127.0.0.1:{free_port()}/none",
                 image_dir=str(tmp_path / "img"))
    app = create_app(cfg, storage=_LazyDown(cfg))
    with TestClient(app) as c:
        res = c.post("/api/v1/readings", json=reading(seq=1, key="00" * 32))
        assert res.status_code == 503
        assert "cannot connect" in res.json()["detail"][0]["msg"]
        assert c.get("/api/v1/health").status_code == 503


class _LazyDown:
    """PostgreSQL storage whose init() is skipped, as if the server went away after start-up."""

    def __new__(cls, cfg):
        from omd_server.storage.postgres import PostgresStorage

        return PostgresStorage(cfg.database_url)


def test_image_write_failure_stores_nothing(h, monkeypatch):
    key = h.provision()
    jpeg = fake_jpeg("disk full photo")
    sha = hashlib.sha256(jpeg).hexdigest()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images.os, "fsync", no_space)
    from omd_server import contract

    res = h.client.post("/api/v1/meters/meter-01/images", content=jpeg, headers={
        "X-OMD-Signature": contract.sign_image(key, "meter-01", sha)})
    assert res.status_code == 503 and "No space left" in res.text
    assert h.storage.get_image(sha) is None
    assert not images.image_path(h.cfg, sha).exists()
    assert not list(images.image_path(h.cfg, sha).parent.glob("*"))
