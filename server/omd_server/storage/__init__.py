"""One storage interface, two SQL backends (SQLite by default, PostgreSQL by URL).

Both backends share the SQL in SqlStorage; only connection handling, placeholders and the
write lock differ. Every write is one transaction: a batch is stored entirely or not at all,
and the HTTP layer acknowledges only after COMMIT returned.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

READING_COLUMNS = (
    "meter_id", "seq", "ts", "timestamp", "voltage", "current", "watts", "pf", "frequency",
    "energy_import_wh", "energy_export_wh", "image_sha256", "fw", "sig", "digest", "received_at",
)
# fields of the contract that are stored as-is (the rest are bookkeeping)
CONTRACT_COLUMNS = (
    "meter_id", "seq", "timestamp", "voltage", "current", "watts", "pf", "frequency",
    "energy_import_wh", "energy_export_wh", "image_sha256", "fw", "sig",
)


class StorageUnavailable(Exception):
    """The database refused a read or write (disk full, I/O error, server down)."""


class ReplayRejected(Exception):
    def __init__(self, index: int, meter_id: str, seq: int | None, reason: str):
        super().__init__(reason)
        self.index, self.meter_id, self.seq, self.reason = index, meter_id, seq, reason


SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meters (
        meter_id TEXT PRIMARY KEY,
        key_hex TEXT,
        created_at BIGINT NOT NULL,
        last_seq BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS readings (
        meter_id TEXT NOT NULL,
        seq BIGINT,
        ts BIGINT NOT NULL,
        timestamp TEXT NOT NULL,
        voltage DOUBLE PRECISION NOT NULL,
        current DOUBLE PRECISION NOT NULL,
        watts DOUBLE PRECISION NOT NULL,
        pf DOUBLE PRECISION,
        frequency DOUBLE PRECISION,
        energy_import_wh DOUBLE PRECISION,
        energy_export_wh DOUBLE PRECISION,
        image_sha256 TEXT,
        fw TEXT,
        sig TEXT,
        digest TEXT NOT NULL,
        received_at BIGINT NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS readings_meter_seq ON readings (meter_id, seq)",
    # unsigned seed-shape readings have no seq: their identity is (meter_id, timestamp)
    "CREATE UNIQUE INDEX IF NOT EXISTS readings_meter_ts_noseq ON readings (meter_id, ts)"
    " WHERE seq IS NULL",
    "CREATE INDEX IF NOT EXISTS readings_meter_ts ON readings (meter_id, ts)",
    """CREATE TABLE IF NOT EXISTS images (
        sha256 TEXT PRIMARY KEY,
        meter_id TEXT NOT NULL,
        path TEXT NOT NULL,
        size BIGINT NOT NULL,
        received_at BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS images_meter ON images (meter_id, received_at)",
]


class SqlStorage:
    """Shared SQL. Subclasses provide _connect(), _errors and _write_txn()."""

    backend = "sql"
    placeholder = "?"
    _errors: tuple[type[BaseException], ...] = ()

    def __init__(self, pool_size: int = 8):
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._pool_size = pool_size
        self._created = 0
        self._pool_lock = threading.Lock()

    # -- connections ------------------------------------------------------
    def _connect(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        conn = None
        try:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                with self._pool_lock:
                    can_create = self._created < self._pool_size
                    if can_create:
                        self._created += 1
                if can_create:
                    try:
                        conn = self._connect()
                    except BaseException:
                        with self._pool_lock:
                            self._created -= 1
                        raise
                else:
                    conn = self._pool.get(timeout=30)
        except queue.Empty:
            raise StorageUnavailable("no database connection free within 30 s") from None
        except self._errors as exc:
            raise StorageUnavailable(f"cannot connect to the database: {exc}") from exc
        broken = False
        try:
            yield conn
        except self._errors as exc:
            broken = True
            raise StorageUnavailable(_reason(exc)) from exc
        except StorageUnavailable:
            broken = True
            raise
        except BaseException:
            # a refused batch (replay) is not a connection problem: roll back and reuse it
            try:
                conn.rollback()
            except Exception:
                broken = True
            raise
        finally:
            if not broken:
                self._pool.put(conn)
            else:
                # a connection that saw an error may be mid-transaction or broken: drop it
                with contextlib.suppress(Exception):
                    conn.rollback()
                with contextlib.suppress(Exception):
                    conn.close()
                with self._pool_lock:
                    self._created -= 1

    def close(self) -> None:
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                conn.close()
            with self._pool_lock:
                self._created -= 1

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._conn() as conn:
            cur = conn.cursor()
            cur.execute(self._sql(sql), tuple(params))
            rows = cur.fetchall()
            conn.commit()
            return rows

    @contextlib.contextmanager
    def _write_txn(self) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def init(self) -> None:
        with self._write_txn() as cur:
            for stmt in SCHEMA:
                cur.execute(stmt)

    # -- keys ---------------------------------------------------------------
    def set_key(self, meter_id: str, key_hex: str | None) -> None:
        now = int(time.time())
        with self._write_txn() as cur:
            cur.execute(self._sql("SELECT meter_id FROM meters WHERE meter_id = ?"), (meter_id,))
            if cur.fetchone():
                cur.execute(
                    self._sql("UPDATE meters SET key_hex = ? WHERE meter_id = ?"),
                    (key_hex, meter_id),
                )
            else:
                cur.execute(
                    self._sql("INSERT INTO meters (meter_id, key_hex, created_at) VALUES (?, ?, ?)"),
                    (meter_id, key_hex, now),
                )

    def get_key(self, meter_id: str) -> str | None:
        rows = self._query("SELECT key_hex FROM meters WHERE meter_id = ?", (meter_id,))
        return rows[0][0] if rows else None

    def list_meters(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT meter_id, key_hex IS NOT NULL, created_at, last_seq FROM meters ORDER BY meter_id"
        )
        return [
            {"meter_id": r[0], "has_key": bool(r[1]), "created_at": r[2], "last_seq": r[3]}
            for r in rows
        ]

    # -- readings -----------------------------------------------------------
    def insert_readings(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        """Store validated readings atomically. Returns 'stored' or 'duplicate' per row;
        raises ReplayRejected (nothing stored) when a row reuses a seq with other content."""
        with self._write_txn() as cur:
            return self._insert_txn(cur, rows)

    def _insert_txn(self, cur, rows: Sequence[dict[str, Any]]) -> list[str]:
        results: list[str] = []
        to_insert: list[tuple] = []
        now = int(time.time())
        if True:
            last_seq: dict[str, int | None] = {}
            batch_digest: dict[tuple, str] = {}
            for meter_id in sorted({r["meter_id"] for r in rows}):
                cur.execute(
                    self._sql("SELECT last_seq FROM meters WHERE meter_id = ?" + self._for_update),
                    (meter_id,),
                )
                row = cur.fetchone()
                if row is None:
                    # unsigned meters appear on their first reading; signed ones were provisioned
                    cur.execute(
                        self._sql(
                            "INSERT INTO meters (meter_id, created_at) VALUES (?, ?)"
                            " ON CONFLICT (meter_id) DO NOTHING"
                        ),
                        (meter_id, now),
                    )
                    cur.execute(
                        self._sql("SELECT last_seq FROM meters WHERE meter_id = ?" + self._for_update),
                        (meter_id,),
                    )
                    row = cur.fetchone()
                last_seq[meter_id] = row[0]
            for i, r in enumerate(rows):
                m, seq = r["meter_id"], r.get("seq")
                ident = (m, seq) if seq is not None else (m, None, r["ts"])
                if ident in batch_digest:
                    if batch_digest[ident] != r["digest"]:
                        raise ReplayRejected(i, m, seq, "same seq twice in one batch with different content")
                    results.append("duplicate")
                    continue
                if seq is not None:
                    last = last_seq[m]
                    if last is None or seq > last:
                        last_seq[m] = seq
                        status = "stored"
                    else:
                        cur.execute(
                            self._sql("SELECT digest FROM readings WHERE meter_id = ? AND seq = ?"),
                            (m, seq),
                        )
                        found = cur.fetchone()
                        if found and found[0] == r["digest"]:
                            status = "duplicate"
                        elif found:
                            raise ReplayRejected(
                                i, m, seq, f"seq {seq} was already stored with different content"
                            )
                        else:
                            raise ReplayRejected(
                                i, m, seq,
                                f"seq {seq} is not greater than the last stored seq {last}",
                            )
                else:
                    cur.execute(
                        self._sql(
                            "SELECT digest FROM readings WHERE meter_id = ? AND seq IS NULL AND ts = ?"
                        ),
                        (m, r["ts"]),
                    )
                    found = cur.fetchone()
                    if found and found[0] == r["digest"]:
                        status = "duplicate"
                    elif found:
                        raise ReplayRejected(
                            i, m, None,
                            f"a different unsigned reading for {r['timestamp']} is already stored",
                        )
                    else:
                        status = "stored"
                batch_digest[ident] = r["digest"]
                results.append(status)
                if status == "stored":
                    to_insert.append(
                        tuple(now if c == "received_at" else r.get(c) for c in READING_COLUMNS)
                    )
            if to_insert:
                cols = ", ".join(READING_COLUMNS)
                marks = ", ".join("?" for _ in READING_COLUMNS)
                cur.executemany(self._sql(f"INSERT INTO readings ({cols}) VALUES ({marks})"), to_insert)
            for m, seq in last_seq.items():
                if seq is not None:
                    cur.execute(
                        self._sql("UPDATE meters SET last_seq = ? WHERE meter_id = ?"), (seq, m)
                    )
            return results

    _for_update = ""

    def _rows_to_dicts(self, rows: list[tuple]) -> list[dict[str, Any]]:
        return [dict(zip(READING_COLUMNS, r, strict=True)) for r in rows]

    def latest(self, meter_id: str) -> dict[str, Any] | None:
        cols = ", ".join(READING_COLUMNS)
        rows = self._query(
            f"SELECT {cols} FROM readings WHERE meter_id = ? ORDER BY ts DESC, seq DESC LIMIT 1",
            (meter_id,),
        )
        return self._rows_to_dicts(rows)[0] if rows else None

    def readings(
        self, meter_id: str, start: int, end: int, limit: int = 100_000, offset: int = 0
    ) -> list[dict[str, Any]]:
        cols = ", ".join(READING_COLUMNS)
        rows = self._query(
            f"SELECT {cols} FROM readings WHERE meter_id = ? AND ts >= ? AND ts < ?"
            " ORDER BY ts, seq LIMIT ? OFFSET ?",
            (meter_id, start, end, limit, offset),
        )
        return self._rows_to_dicts(rows)

    def downsample(self, meter_id: str, start: int, end: int, bucket_s: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT (ts - ?) / ? AS b, COUNT(*), AVG(watts), MIN(watts), MAX(watts),"
            " AVG(voltage), AVG(current), MAX(energy_import_wh), MAX(energy_export_wh)"
            " FROM readings WHERE meter_id = ? AND ts >= ? AND ts < ? GROUP BY b ORDER BY b",
            (start, bucket_s, meter_id, start, end),
        )
        keys = ("count", "watts_avg", "watts_min", "watts_max", "voltage_avg", "current_avg",
                "energy_import_wh", "energy_export_wh")
        out = []
        for r in rows:
            d = {"start": start + int(r[0]) * bucket_s}
            d.update(zip(keys, r[1:], strict=True))
            out.append(d)
        return out

    def count(self, meter_id: str | None = None) -> int:
        if meter_id is None:
            return self._query("SELECT COUNT(*) FROM readings")[0][0]
        return self._query("SELECT COUNT(*) FROM readings WHERE meter_id = ?", (meter_id,))[0][0]

    def reading_meters(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT meter_id FROM readings ORDER BY meter_id")]

    def last_before(self, meter_id: str, ts: int) -> dict[str, Any] | None:
        cols = ", ".join(READING_COLUMNS)
        rows = self._query(
            f"SELECT {cols} FROM readings WHERE meter_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
            (meter_id, ts),
        )
        return self._rows_to_dicts(rows)[0] if rows else None

    # -- images -------------------------------------------------------------
    def add_image(self, sha256: str, meter_id: str, path: str, size: int) -> bool:
        with self._write_txn() as cur:
            cur.execute(self._sql("SELECT sha256 FROM images WHERE sha256 = ?"), (sha256,))
            if cur.fetchone():
                return False
            cur.execute(
                self._sql(
                    "INSERT INTO images (sha256, meter_id, path, size, received_at) VALUES (?, ?, ?, ?, ?)"
                ),
                (sha256, meter_id, path, size, int(time.time())),
            )
            return True

    def get_image(self, sha256: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT sha256, meter_id, path, size, received_at FROM images WHERE sha256 = ?", (sha256,)
        )
        if not rows:
            return None
        return dict(zip(("sha256", "meter_id", "path", "size", "received_at"), rows[0], strict=True))

    def last_evidence(self, meter_id: str) -> dict[str, Any] | None:
        """Newest image of this meter whose hash a stored reading announced (verified evidence)."""
        rows = self._query(
            "SELECT i.sha256, r.timestamp, i.received_at FROM readings r JOIN images i"
            " ON i.sha256 = r.image_sha256 AND i.meter_id = r.meter_id"
            " WHERE r.meter_id = ? ORDER BY r.ts DESC LIMIT 1",
            (meter_id,),
        )
        if not rows:
            return None
        return {"sha256": rows[0][0], "timestamp": rows[0][1], "received_at": rows[0][2]}

    def images_for_pruning(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT sha256, meter_id, path, size, received_at FROM images ORDER BY received_at"
        )
        return [
            dict(zip(("sha256", "meter_id", "path", "size", "received_at"), r, strict=True))
            for r in rows
        ]

    def delete_images(self, shas: Sequence[str]) -> None:
        with self._write_txn() as cur:
            cur.executemany(self._sql("DELETE FROM images WHERE sha256 = ?"), [(s,) for s in shas])


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


def open_storage(cfg) -> SqlStorage:
    url = cfg.database_url
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStorage

        st: SqlStorage = SqliteStorage(
            cfg.sqlite_path(), synchronous=cfg.sqlite_synchronous, max_size_mb=cfg.sqlite_max_size_mb
        )
    elif url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresStorage

        st = PostgresStorage(url)
    else:
        raise ValueError(f"unsupported database_url {url!r}: use sqlite:///FILE or postgresql://...")
    st.init()
    return st
