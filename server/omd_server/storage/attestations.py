"""Storage of device-signed interval attestations, on the same SqlStorage (SQLite or
PostgreSQL) and in the same transactions discipline as the readings.

One row per (meter_id, seq). An identical re-send is a duplicate, the same seq with other
content a replay (409). The uint64 members live in BIGINT columns: the wire check keeps them
at most 2^63 - 1 (contract/attestation.json wire.server_max_uint)."""

from __future__ import annotations

import threading
import time
from typing import Any

from . import READING_COLUMNS, ReplayRejected, SqlStorage

COLUMNS = ("meter_id", "seq", "interval_start", "interval_end", "export_mj", "import_mj",
           "first_reading_seq", "reading_count", "readings_root", "chain_id",
           "verifying_contract", "signature", "digest", "signer", "received_at")
# wire (EIP-712) name -> column
WIRE = {"meterId": "meter_id", "seq": "seq", "intervalStart": "interval_start",
        "intervalEnd": "interval_end", "exportMj": "export_mj", "importMj": "import_mj",
        "firstReadingSeq": "first_reading_seq", "readingCount": "reading_count",
        "readingsRoot": "readings_root", "chainId": "chain_id",
        "verifyingContract": "verifying_contract", "signature": "signature"}

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS attestations (
        meter_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        interval_start BIGINT NOT NULL,
        interval_end BIGINT NOT NULL,
        export_mj BIGINT NOT NULL,
        import_mj BIGINT NOT NULL,
        first_reading_seq BIGINT NOT NULL,
        reading_count BIGINT NOT NULL,
        readings_root TEXT NOT NULL,
        chain_id BIGINT NOT NULL,
        verifying_contract TEXT NOT NULL,
        signature TEXT NOT NULL,
        digest TEXT NOT NULL,
        signer TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (meter_id, seq)
    )""",
    "CREATE INDEX IF NOT EXISTS attestations_meter_end ON attestations (meter_id, interval_end)",
]


class AttestationStore:
    """Attestation rows on an existing SqlStorage (its connections, locks and error mapping)."""

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

    def insert(self, doc: dict[str, Any], digest: str, signer: str) -> str:
        """'stored' or 'duplicate'; ReplayRejected if the seq is stored with other content."""
        self._init()
        sql = self.st._sql
        row = {WIRE[k]: doc[k] for k in WIRE}
        row.update(digest=digest, signer=signer, received_at=int(time.time()))
        with self.st._write_txn() as cur:
            cur.execute(sql("SELECT digest FROM attestations WHERE meter_id = ? AND seq = ?"),
                        (row["meter_id"], row["seq"]))
            found = cur.fetchone()
            if found:
                if found[0] == digest:
                    return "duplicate"
                raise ReplayRejected(0, row["meter_id"], row["seq"],
                                     f"attestation seq {row['seq']} is already stored with "
                                     "different content")
            marks = ", ".join("?" for _ in COLUMNS)
            cur.execute(sql(f"INSERT INTO attestations ({', '.join(COLUMNS)}) VALUES ({marks})"),
                        tuple(row[c] for c in COLUMNS))
        return "stored"

    def get(self, meter_id: str, seq: int) -> dict[str, Any] | None:
        self._init()
        rows = self.st._query(f"SELECT {', '.join(COLUMNS)} FROM attestations"
                              " WHERE meter_id = ? AND seq = ?", (meter_id, seq))
        return dict(zip(COLUMNS, rows[0], strict=True)) if rows else None

    def list(self, meter_id: str, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        self._init()
        rows = self.st._query(f"SELECT {', '.join(COLUMNS)} FROM attestations"
                              " WHERE meter_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                              (meter_id, after_seq, limit))
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]

    def readings_by_seq(self, meter_id: str, first: int, count: int) -> list[dict[str, Any]]:
        """The stored readings with seq first .. first + count - 1, in seq order."""
        cols = ", ".join(READING_COLUMNS)
        rows = self.st._query(f"SELECT {cols} FROM readings WHERE meter_id = ? AND seq >= ?"
                              " AND seq < ? ORDER BY seq", (meter_id, first, first + count))
        return [dict(zip(READING_COLUMNS, r, strict=True)) for r in rows]


def wire(row: dict[str, Any]) -> dict[str, Any]:
    """The stored row back in its wire form (what the meter signed, plus domain and signature)."""
    return {k: row[c] for k, c in WIRE.items()}


_stores: dict[int, AttestationStore] = {}
_stores_lock = threading.Lock()


def store_for(st: SqlStorage) -> AttestationStore:
    """One AttestationStore per storage object (the table is created on first use)."""
    with _stores_lock:
        s = _stores.get(id(st))
        if s is None or s.st is not st:
            s = _stores[id(st)] = AttestationStore(st)
        return s
