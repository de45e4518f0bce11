from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from .sql import Rejected, SqlStorage, StorageUnavailable, Unstorable, _reason

_SYNC = {"OFF", "NORMAL", "FULL", "EXTRA"}
# errors about a request's own values; the rest (full, I/O, read-only, locked, corrupt) is
# storage trouble
_DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError,
                sqlite3.InterfaceError, sqlite3.NotSupportedError)


class SqliteStorage(SqlStorage):
    backend = "sqlite"
    _errors = (sqlite3.Error,)

    def __init__(self, path: str, synchronous: str = "FULL", max_size_mb: int = 0):
        super().__init__(pool_size=8)
        if synchronous.upper() not in _SYNC:
            raise ValueError(f"sqlite_synchronous must be one of {sorted(_SYNC)}")
        self.path = path
        self.synchronous = synchronous.upper()
        self.max_size_mb = max_size_mb
        # SQLite has one writer at a time anyway; queueing writers on a lock in-process is
        # cheaper than letting them spin in SQLite's busy handler
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            # the file holds the meters' HMAC keys
            if not os.path.exists(path):
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        if self.max_size_mb:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={max(1, self.max_size_mb * 1024 * 1024 // page)}")
        return _AutoTxn(conn)

    def _is_trouble(self, exc: BaseException) -> bool:
        return not isinstance(exc, _DATA_ERRORS)

    def _columns(self, cur, table: str) -> set[str]:
        cur.execute(f"PRAGMA table_info({table})")
        return {r[1] for r in cur.fetchall()}

    def set_max_size_mb(self, mb: int) -> None:
        """Change the size cap on live connections (used by operators via config and by tests)."""
        self.close()
        self.max_size_mb = mb

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Writers in other uvicorn workers queue on a kernel lock: SQLite's own busy handler
        polls with sleeps of up to 100 ms, which starved multi-worker throughput."""
        if self.path == ":memory:":
            yield
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.path + ".writelock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _write_txn(self) -> Iterator[Any]:
        with self._write_lock, self._locked_txn() as cur:
            yield cur

    def insert_readings(self, rows):
        """Group commit: requests that arrive while a commit is in progress are written together
        in the next transaction, one fsync for all of them. Each request keeps its own
        all-or-nothing semantics through a SAVEPOINT, and its own outcome: a request whose
        values are refused is rolled back alone, and if the group's transaction fails as a
        whole each request is retried in a transaction of its own. Every caller returns only
        after the COMMIT that contains its rows."""
        job = _Job(rows)
        with self._pending_lock:
            self._pending.append(job)
        with self._write_lock:
            if not job.done:
                with self._pending_lock:
                    jobs, self._pending = self._pending, []
                try:
                    self._run_group(jobs)
                finally:
                    for j in jobs:
                        if j.results is None and j.error is None:
                            j.error = StorageUnavailable("write aborted")
                        j.done = True
        if job.error is not None:
            raise job.error
        return job.results

    def _run_group(self, jobs: list[_Job]) -> None:
        try:
            with self._locked_txn() as cur:
                for j in jobs:
                    self._run_job(cur, j)
        except Exception as exc:
            if len(jobs) > 1:
                # the shared transaction failed (e.g. at COMMIT): nobody's rows are stored;
                # each request alone finds out whether the trouble is its own or the storage's
                for j in jobs:
                    j.results = j.error = None
                for j in jobs:
                    self._run_group([j])
                return
            jobs[0].results = None
            jobs[0].error = exc if isinstance(exc, StorageUnavailable | Rejected) \
                else StorageUnavailable(_reason(exc))

    def _run_job(self, cur, j: _Job) -> None:
        cur.execute("SAVEPOINT job")
        try:
            j.results = self._insert_txn(cur, j.rows)
        except Rejected as exc:
            cur.execute("ROLLBACK TO job")
            j.error = exc
        except Exception as exc:
            if isinstance(exc, sqlite3.Error) and self._is_trouble(exc):
                raise
            # the database refused one of this request's values: only this request fails
            cur.execute("ROLLBACK TO job")
            j.error = Unstorable(0, j.rows[0]["meter_id"] if j.rows else "", None,
                                 f"the database refused this request's values: {_reason(exc)}")
        cur.execute("RELEASE job")

    @contextlib.contextmanager
    def _locked_txn(self) -> Iterator[Any]:
        with self._process_lock(), self._conn() as conn:
            cur = conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                cur.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and self._is_trouble(exc):
                    raise StorageUnavailable(_reason(exc)) from exc
                raise


class _AutoTxn:
    """sqlite3 connection in autocommit mode with the commit()/rollback() the pool expects."""

    def __init__(self, conn: sqlite3.Connection):
        self._c = conn

    def cursor(self):
        return self._c.cursor()

    def execute(self, *a):
        return self._c.execute(*a)

    def commit(self):
        pass

    def rollback(self):
        if self._c.in_transaction:
            self._c.execute("ROLLBACK")

    def close(self):
        self._c.close()


class _Job:
    __slots__ = ("rows", "results", "error", "done")

    def __init__(self, rows):
        self.rows = rows
        self.results = None
        self.error: BaseException | None = None
        self.done = False
