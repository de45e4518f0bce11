from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg

from .sql import SqlStorage, StorageUnavailable, _reason

# errors about a request's own values; everything else (connection lost, read-only, disk
# full, shutting down) is storage trouble
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError)


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

    def _is_trouble(self, exc: BaseException) -> bool:
        return not isinstance(exc, _DATA_ERRORS)

    def _columns(self, cur, table: str) -> set[str]:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " AND table_schema = current_schema()", (table,))
        return {r[0] for r in cur.fetchall()}

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
                if isinstance(exc, psycopg.Error) and self._is_trouble(exc):
                    raise StorageUnavailable(_reason(exc)) from exc
                raise

    def init(self) -> None:
        # concurrent workers may all run CREATE ... IF NOT EXISTS at start-up; an advisory lock
        # avoids the catalog unique-violation race PostgreSQL has there
        with self._write_txn() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7007)")
            self._create(cur)
