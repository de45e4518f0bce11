"""The oracle requester's record: one row per (meter_id, seq) attestation, its state on the
way to the chain, and the chain cursor of the event watcher. Same SqlStorage (SQLite or
PostgreSQL) and transaction discipline as the readings and attestations.

States: queued (to be requested; next_try_at), pending (request sent: request_id, request_tx),
fulfilled (fulfil_tx, minted_mj, minted_mg, fulfilled_at), failed (reason; retryable or not).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from . import SqlStorage

COLUMNS = ("meter_id", "seq", "interval_end", "state", "request_id", "request_tx",
           "fulfil_tx", "fulfil_block", "minted_mj", "minted_mg", "reason", "retryable",
           "attempts", "next_try_at", "requested_at", "fulfilled_at", "updated_at")
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS oracle_requests (
        meter_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        interval_end BIGINT NOT NULL,
        state TEXT NOT NULL,
        request_id TEXT,
        request_tx TEXT,
        fulfil_tx TEXT,
        fulfil_block BIGINT,
        minted_mj BIGINT,
        minted_mg BIGINT,
        reason TEXT,
        retryable INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        requested_at BIGINT,
        fulfilled_at BIGINT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (meter_id, seq)
    )""",
    "CREATE INDEX IF NOT EXISTS oracle_requests_state ON oracle_requests (state, meter_id, seq)",
    "CREATE INDEX IF NOT EXISTS oracle_requests_request ON oracle_requests (request_id)",
    """CREATE TABLE IF NOT EXISTS oracle_cursor (
        name TEXT PRIMARY KEY,
        block BIGINT NOT NULL
    )""",
    # CarbonCredit's Retired events, by their on-chain id (a re-read block adds nothing twice)
    """CREATE TABLE IF NOT EXISTS oracle_retirements (
        id BIGINT PRIMARY KEY,
        retiree TEXT NOT NULL,
        mg BIGINT NOT NULL,
        block BIGINT NOT NULL
    )""",
]


class OracleStore:
    def __init__(self, st: SqlStorage):
        self.st = st
        self._ready = False
        self._lock = threading.Lock()

    def _init(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                with self.st._write_txn() as cur:
                    for stmt in SCHEMA:
                        cur.execute(stmt)
                self._ready = True

    def _rows(self, where: str, params: tuple = ()) -> list[dict[str, Any]]:
        self._init()
        rows = self.st._query(f"SELECT {', '.join(COLUMNS)} FROM oracle_requests {where}", params)
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]

    def enqueue_new(self) -> int:
        """A queued row for every stored attestation that has none yet; returns how many."""
        self._init()
        sql = self.st._sql
        with self.st._write_txn() as cur:
            cur.execute(sql(
                "SELECT a.meter_id, a.seq, a.interval_end FROM attestations a LEFT JOIN "
                "oracle_requests o ON o.meter_id = a.meter_id AND o.seq = a.seq "
                "WHERE o.meter_id IS NULL ORDER BY a.meter_id, a.seq"))
            new = cur.fetchall()
            now = int(time.time())
            for m, s, end in new:
                cur.execute(sql("INSERT INTO oracle_requests (meter_id, seq, interval_end, state, "
                                "updated_at) VALUES (?, ?, ?, 'queued', ?) ON CONFLICT DO NOTHING"),
                            (m, s, end, now))
        return len(new)

    def get(self, meter_id: str, seq: int) -> dict[str, Any] | None:
        rows = self._rows("WHERE meter_id = ? AND seq = ?", (meter_id, seq))
        return rows[0] if rows else None

    def by_request(self, request_id: str) -> dict[str, Any] | None:
        rows = self._rows("WHERE request_id = ?", (request_id,))
        return rows[0] if rows else None

    def meter(self, meter_id: str) -> list[dict[str, Any]]:
        return self._rows("WHERE meter_id = ? ORDER BY seq", (meter_id,))

    def meters(self) -> list[str]:
        self._init()
        return [r[0] for r in self.st._query(
            "SELECT DISTINCT meter_id FROM oracle_requests ORDER BY meter_id")]

    def open_rows(self) -> list[dict[str, Any]]:
        """Rows not done: queued, pending, and failed ones that may be retried."""
        return self._rows("WHERE state IN ('queued', 'pending') OR (state = 'failed' AND "
                          "retryable = 1) ORDER BY meter_id, seq")

    def update(self, meter_id: str, seq: int, **values: Any) -> None:
        self._init()
        values["updated_at"] = int(time.time())
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.st._write_txn() as cur:
            cur.execute(self.st._sql(f"UPDATE oracle_requests SET {sets} WHERE meter_id = ? "
                                     "AND seq = ?"), (*values.values(), meter_id, seq))

    def cursor(self, name: str) -> int | None:
        self._init()
        rows = self.st._query("SELECT block FROM oracle_cursor WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def set_cursor(self, name: str, block: int) -> None:
        self._init()
        sql = self.st._sql
        with self.st._write_txn() as cur:
            cur.execute(sql("INSERT INTO oracle_cursor (name, block) VALUES (?, ?) ON CONFLICT "
                            "(name) DO UPDATE SET block = excluded.block"), (name, block))

    def add_retirement(self, rid: int, retiree: str, mg: int, block: int) -> None:
        self._init()
        with self.st._write_txn() as cur:
            cur.execute(self.st._sql("INSERT INTO oracle_retirements (id, retiree, mg, block) "
                                     "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                        (rid, retiree.lower(), mg, block))

    def retired(self, retiree: str) -> int:
        self._init()
        rows = self.st._query("SELECT COALESCE(SUM(mg), 0) FROM oracle_retirements WHERE "
                              "retiree = ?", (retiree.lower(),))
        return int(rows[0][0])

    def certified(self, meter_id: str | None = None, limit: int = 1000,
                  after_seq: int = -1) -> list[dict[str, Any]]:
        if meter_id is None:
            return self._rows("WHERE state = 'fulfilled' ORDER BY meter_id, seq LIMIT ?",
                              (limit,))
        return self._rows("WHERE state = 'fulfilled' AND meter_id = ? AND seq > ? ORDER BY seq "
                          "LIMIT ?", (meter_id, after_seq, limit))


_stores: dict[int, OracleStore] = {}
_stores_lock = threading.Lock()


def oracle_store(st: SqlStorage) -> OracleStore:
    with _stores_lock:
        s = _stores.get(id(st))
        if s is None or s.st is not st:
            s = _stores[id(st)] = OracleStore(st)
        return s
