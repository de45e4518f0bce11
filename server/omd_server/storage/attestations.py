"""Storage of device-signed interval attestations on the readings' SqlStorage (SQLite or
PostgreSQL): its connections, transactions and error mapping; the table is in sql.py's schema.

One row per (meter_id, seq). An identical re-send is a duplicate, the same seq with other
content a replay (409), also when two copies race each other into the database."""

from __future__ import annotations

import time
from typing import Any

from .sql import (
    ATTESTATION_COLUMNS,
    READING_COLUMNS,
    Rejected,
    ReplayRejected,
    SqlStorage,
    StorageUnavailable,
    Unstorable,
    _reason,
)

COLUMNS = tuple(ATTESTATION_COLUMNS)
# wire (EIP-712) name -> column
WIRE = {"meterId": "meter_id", "seq": "seq", "intervalStart": "interval_start",
        "intervalEnd": "interval_end", "exportMj": "export_mj", "importMj": "import_mj",
        "firstReadingSeq": "first_reading_seq", "readingCount": "reading_count",
        "readingsRoot": "readings_root", "chainId": "chain_id",
        "verifyingContract": "verifying_contract", "signature": "signature"}
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM attestations"


class AttestationStore:
    """Attestation rows of one SqlStorage. Holds no state of its own: cheap per request."""

    __slots__ = ("st",)

    def __init__(self, st: SqlStorage):
        self.st = st

    def insert(self, doc: dict[str, Any], digest: str, signer: str) -> str:
        """'stored' or 'duplicate'; ReplayRejected if the seq is stored with other content."""
        row = {WIRE[k]: doc[k] for k in WIRE}
        row.update(digest=digest, signer=signer, received_at=int(time.time()))
        marks = ", ".join("?" for _ in COLUMNS)
        try:
            with self.st._write_txn() as cur:
                # ON CONFLICT: a concurrent identical POST (PostgreSQL) is a duplicate, not an
                # integrity error
                cur.execute(self.st._sql(f"INSERT INTO attestations ({', '.join(COLUMNS)})"
                                         f" VALUES ({marks}) ON CONFLICT (meter_id, seq)"
                                         " DO NOTHING"), tuple(row[c] for c in COLUMNS))
                if cur.rowcount == 1:
                    return "stored"
                cur.execute(self.st._sql("SELECT digest FROM attestations WHERE meter_id = ?"
                                         " AND seq = ?"), (row["meter_id"], row["seq"]))
                found = cur.fetchone()
        except (StorageUnavailable, Rejected):
            raise
        except Exception as exc:
            raise Unstorable(0, row["meter_id"], None, "the database refused this "
                             f"attestation's values: {_reason(exc)}") from exc
        if found and found[0] == digest:
            return "duplicate"
        raise ReplayRejected(0, row["meter_id"], row["seq"], f"attestation seq {row['seq']} is "
                             "already stored with different content")

    def get(self, meter_id: str, seq: int) -> dict[str, Any] | None:
        rows = self.st._query(_SELECT + " WHERE meter_id = ? AND seq = ?", (meter_id, seq))
        return dict(zip(COLUMNS, rows[0], strict=True)) if rows else None

    def list(self, meter_id: str, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.st._query(_SELECT + " WHERE meter_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                              (meter_id, after_seq, limit))
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]

    def readings_by_seq(self, meter_id: str, first: int, count: int) -> list[dict[str, Any]]:
        """The stored readings with seq first .. first + count - 1, in seq order (the upper
        bound inclusive: first + count may be 2^63, one past what the databases hold)."""
        cols = ", ".join(READING_COLUMNS)
        rows = self.st._query(f"SELECT {cols} FROM readings WHERE meter_id = ? AND seq >= ?"
                              " AND seq <= ? ORDER BY seq", (meter_id, first, first + count - 1))
        return [dict(zip(READING_COLUMNS, r, strict=True)) for r in rows]


def wire(row: dict[str, Any]) -> dict[str, Any]:
    """The stored row back in its wire form (what the meter signed, plus domain and signature)."""
    return {k: row[c] for k, c in WIRE.items()}


def store_for(st: SqlStorage) -> AttestationStore:
    """The attestation rows of st (the table is created with the rest of the schema)."""
    return AttestationStore(st)
