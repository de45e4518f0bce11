from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg

from . import SqlStorage, StorageUnavailable, _reason


class PostgresStorage(SqlStorage):
    backend = "postgresql"
    placeholder = "%s"
    _errors = (psycopg.Error,)
    # serialises concurrent writers of the same meter (several uvicorn workers) on the meter row
    _for_update = " FOR UPDATE"

    def __init__(self, url: str, pool_size: int = 8):
        super().__init__(pool_size=pool_size)
        self.url = url

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, connect_timeout=10)

    @contextlib.contextmanager
    def _write_txn(self) -> Iterator[Any]:
        with self._conn() as conn:
            cur = conn.cursor()
            try:
                yield cur
                conn.commit()
            except BaseException as exc:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                if isinstance(exc, psycopg.Error):
                    raise StorageUnavailable(_reason(exc)) from exc
                raise

    def init(self) -> None:
        # concurrent workers may all run CREATE ... IF NOT EXISTS at start-up; an advisory lock
        # avoids the catalog unique-violation race PostgreSQL has there
        with self._write_txn() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7007)")
            from . import SCHEMA

            for stmt in SCHEMA:
                cur.execute(stmt)
