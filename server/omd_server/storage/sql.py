"""What the SQLite and PostgreSQL backends share: the schema (derived from the contract),
the SQL, the replay and plausibility rules, connection pooling and the error classes."""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .. import contract

# the contract's fields as they arrive, then bookkeeping: unix time, duplicate identity, arrival
READING_COLUMNS = tuple(contract.fields()) + ("ts", "digest", "received_at")
_ROW_FIELDS = READING_COLUMNS[:-1]  # what a validated row carries; received_at is the commit's
_SQL_TYPES = {"integer": "BIGINT", "number": "DOUBLE PRECISION", "string": "TEXT"}


class StorageUnavailable(Exception):
    """The database refused a read or write (disk full, I/O error, server down)."""


class Rejected(Exception):
    """One request's readings cannot be stored; nothing of that request is. Other requests in
    the same group commit are not affected."""

    status = 422
    type = "value"

    def __init__(self, index: int, meter_id: str, field: str | None, reason: str):
        super().__init__(reason)
        self.index, self.meter_id, self.field, self.reason = index, meter_id, field, reason


class ReplayRejected(Rejected):
    status = 409
    type = "replay"

    def __init__(self, index: int, meter_id: str, seq: int | None, reason: str):
        super().__init__(index, meter_id, "seq", reason)
        self.seq = seq


class Implausible(Rejected):
    type = "value.implausible"


class Unstorable(Rejected):
    """The database refused a value of this request (a bug of validation if it ever shows)."""

    type = "value.unstorable"


def _columns_ddl() -> str:
    props, required = contract.schema()["properties"], set(contract.schema()["required"])
    cols = []
    for name in READING_COLUMNS:
        if name in props:
            kind = _SQL_TYPES[props[name]["type"]]
            null = " NOT NULL" if name in required or name == "meter_id" else ""
        else:
            kind, null = ("TEXT" if name == "digest" else "BIGINT"), " NOT NULL"
        cols.append(f"{name} {kind}{null}")
    return ",\n        ".join(cols)


ATTESTATION_COLUMNS = {
    "meter_id": "TEXT", "seq": "BIGINT", "interval_start": "BIGINT", "interval_end": "BIGINT",
    "export_mj": "BIGINT", "import_mj": "BIGINT", "first_reading_seq": "BIGINT",
    "reading_count": "BIGINT", "readings_root": "TEXT", "chain_id": "BIGINT",
    "verifying_contract": "TEXT", "signature": "TEXT", "digest": "TEXT", "signer": "TEXT",
    "received_at": "BIGINT",
}

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meters (
        meter_id TEXT PRIMARY KEY,
        key_hex TEXT,
        created_at BIGINT NOT NULL,
        last_seq BIGINT
    )""",
    f"""CREATE TABLE IF NOT EXISTS readings (
        {_columns_ddl()}
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
    # device-signed interval attestations (contract/attestation.json); the uint members fit
    # BIGINT because the wire check caps them at 2^63 - 1 (wire.server_max_uint)
    f"""CREATE TABLE IF NOT EXISTS attestations (
        {", ".join(f"{c} {t} NOT NULL" for c, t in ATTESTATION_COLUMNS.items())},
        PRIMARY KEY (meter_id, seq)
    )""",
    "CREATE INDEX IF NOT EXISTS attestations_meter_end ON attestations (meter_id, interval_end)",
]
IMAGE_COLUMNS = ("sha256", "meter_id", "path", "size", "received_at")


@functools.cache
def _slack(counter: str) -> float:
    """One unit of the counter's last decimal: rounding at both ends."""
    return 10.0 ** -contract.decimals().get(counter, 0)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


class SqlStorage:
    """Shared SQL. Subclasses provide _connect(), _errors, _is_trouble(), _columns() and
    _write_txn()."""

    backend = "sql"
    placeholder = "?"
    _errors: tuple[type[BaseException], ...] = ()
    _for_update = ""

    def __init__(self, pool_size: int = 8):
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._pool_size = pool_size
        self._created = 0
        self._pool_lock = threading.Lock()

    # -- backend hooks ------------------------------------------------------
    def _connect(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _is_trouble(self, exc: BaseException) -> bool:
        """True if a database error means the storage itself is in trouble (disk full, I/O,
        read-only, server gone): 503 for everyone. False: this request's data was refused."""
        return True

    def _columns(self, cur, table: str) -> set[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    @contextlib.contextmanager
    def _write_txn(self) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    # -- connections ------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _acquire(self):
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._pool_lock:
            can_create = self._created < self._pool_size
            if can_create:
                self._created += 1
        if not can_create:
            try:
                return self._pool.get(timeout=30)
            except queue.Empty:
                raise StorageUnavailable("no database connection free within 30 s") from None
        try:
            return self._connect()
        except BaseException as exc:
            with self._pool_lock:
                self._created -= 1
            if isinstance(exc, self._errors):
                raise StorageUnavailable(f"cannot connect to the database: {exc}") from exc
            raise

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        conn = self._acquire()
        broken = False
        try:
            yield conn
        except StorageUnavailable:
            broken = True
            raise
        except self._errors as exc:
            if self._is_trouble(exc):
                broken = True
                raise StorageUnavailable(_reason(exc)) from exc
            broken = not self._rollback(conn)
            raise
        except BaseException:
            # a refused request is not a connection problem: roll back and reuse it
            broken = not self._rollback(conn)
            raise
        finally:
            if not broken:
                self._pool.put(conn)
            else:
                # a connection that saw an error may be mid-transaction or broken: drop it
                self._rollback(conn)
                with contextlib.suppress(Exception):
                    conn.close()
                with self._pool_lock:
                    self._created -= 1

    @staticmethod
    def _rollback(conn) -> bool:
        try:
            conn.rollback()
            return True
        except Exception:
            return False

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

    def init(self) -> None:
        with self._write_txn() as cur:
            self._create(cur)

    def _create(self, cur) -> None:
        for stmt in SCHEMA:
            cur.execute(stmt)
        # a database made before the contract grew a field gets the new (nullable) columns
        props = contract.schema()["properties"]
        for name in sorted(set(props) - self._columns(cur, "readings")):
            cur.execute(f"ALTER TABLE readings ADD COLUMN {name} {_SQL_TYPES[props[name]['type']]}")

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

    def has_meter(self, meter_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM meters WHERE meter_id = ?", (meter_id,)))

    # -- readings -----------------------------------------------------------
    def insert_readings(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        """Store validated readings atomically. Returns 'stored' or 'duplicate' per row;
        raises a Rejected subclass (nothing stored) when a row reuses a seq with other
        content (409) or is implausible next to what the meter already sent (422)."""
        try:
            with self._write_txn() as cur:
                return self._insert_txn(cur, rows)
        except (StorageUnavailable, Rejected):
            raise
        except Exception as exc:
            raise Unstorable(0, rows[0]["meter_id"] if rows else "", None,
                             f"the database refused this request's values: {_reason(exc)}") from exc

    def _lock_meter(self, cur, meter_id: str, now: int) -> int | None:
        """last_seq of the meter, its row locked for this transaction (PostgreSQL)."""
        select = self._sql("SELECT last_seq FROM meters WHERE meter_id = ?" + self._for_update)
        cur.execute(select, (meter_id,))
        row = cur.fetchone()
        if row is None:
            # unsigned meters appear on their first reading; signed ones were provisioned
            cur.execute(self._sql("INSERT INTO meters (meter_id, created_at) VALUES (?, ?)"
                                  " ON CONFLICT (meter_id) DO NOTHING"), (meter_id, now))
            cur.execute(select, (meter_id,))
            row = cur.fetchone()
        return row[0]

    def _insert_txn(self, cur, rows: Sequence[dict[str, Any]]) -> list[str]:
        results: list[str] = []
        to_insert: list[tuple] = []
        now = int(time.time())
        meters = sorted({r["meter_id"] for r in rows})
        last_seq = {m: self._lock_meter(cur, m, now) for m in meters}
        rates = contract.counters()
        newest = {m: self._newest_counters(cur, m) for m in meters} if rates else {}
        batch_digest: dict[tuple, str] = {}
        for i, r in enumerate(rows):
            m, seq = r["meter_id"], r.get("seq")
            ident = (m, seq) if seq is not None else (m, None, r["ts"])
            if ident in batch_digest:
                if batch_digest[ident] != r["digest"]:
                    raise ReplayRejected(i, m, seq, "same seq twice in one batch with different content")
                results.append("duplicate")
                continue
            last = last_seq[m]
            if seq is not None and (last is None or seq > last):  # the common case, inline
                last_seq[m], status = seq, "stored"
            else:
                status = self._replay_status(cur, i, r, last_seq)
            batch_digest[ident] = r["digest"]
            results.append(status)
            if status == "stored":
                if rates:
                    self._check_counters(cur, i, r, newest, rates)
                to_insert.append(tuple(map(r.get, _ROW_FIELDS)) + (now,))
        if to_insert:
            cols = ", ".join(READING_COLUMNS)
            marks = ", ".join("?" for _ in READING_COLUMNS)
            cur.executemany(self._sql(f"INSERT INTO readings ({cols}) VALUES ({marks})"), to_insert)
        for m, seq in last_seq.items():
            if seq is not None:
                cur.execute(self._sql("UPDATE meters SET last_seq = ? WHERE meter_id = ?"), (seq, m))
        return results

    def _replay_status(self, cur, i: int, r: dict[str, Any], last_seq: dict) -> str:
        """'stored' or 'duplicate' for row i, or ReplayRejected (the x-canonical replay rule)."""
        m, seq = r["meter_id"], r.get("seq")
        if seq is not None:
            last = last_seq[m]
            if last is None or seq > last:
                last_seq[m] = seq
                return "stored"
            cur.execute(self._sql("SELECT digest FROM readings WHERE meter_id = ? AND seq = ?"),
                        (m, seq))
            found = cur.fetchone()
            if found and found[0] == r["digest"]:
                return "duplicate"
            if found:
                raise ReplayRejected(i, m, seq, f"seq {seq} was already stored with different content")
            raise ReplayRejected(i, m, seq, f"seq {seq} is not greater than the last stored seq {last}")
        cur.execute(self._sql("SELECT digest FROM readings WHERE meter_id = ? AND seq IS NULL AND ts = ?"),
                    (m, r["ts"]))
        found = cur.fetchone()
        if found and found[0] == r["digest"]:
            return "duplicate"
        if found:
            raise ReplayRejected(i, m, None,
                                 f"a different unsigned reading for {r['timestamp']} is already stored")
        return "stored"

    # -- counter plausibility (x-max-rate) ----------------------------------
    def _counters_near(self, cur, meter_id: str, ts: int, before: bool) -> tuple | None:
        names = list(contract.counters())
        cols = ", ".join(names)
        where = "ts <= ?" if before else "ts > ?"
        order = "DESC" if before else "ASC"
        cur.execute(self._sql(f"SELECT ts, {cols} FROM readings WHERE meter_id = ? AND {where}"
                              f" ORDER BY ts {order} LIMIT 1"), (meter_id, ts))
        row = cur.fetchone()
        return (row[0], dict(zip(names, row[1:], strict=True))) if row else None

    def _newest_counters(self, cur, meter_id: str) -> tuple | None:
        return self._counters_near(cur, meter_id, 2**62, before=True)

    def _check_counters(self, cur, i: int, r: dict[str, Any], newest: dict,
                        rates: dict[str, float]) -> None:
        """A counter may grow at most as fast as the largest power the contract allows."""
        m, ts = r["meter_id"], r["ts"]
        prev = newest.get(m)
        if prev is None or ts >= prev[0]:
            # the common case, in order: against the meter's newest reading (hot path of batches)
            values = prev[1] if prev else {}
            for c, rate in rates.items():
                v = r.get(c)
                if v is None:
                    continue
                p = values.get(c)
                if p is not None and v - p > rate * (ts - prev[0] + 1) + _slack(c):
                    self._implausible(i, m, c, v - p, ts - prev[0], rate)
                values[c] = v
            newest[m] = (ts, values)
            return
        # a store-and-forward reading older than the meter's newest: check both neighbours
        for n in (self._counters_near(cur, m, ts, True), self._counters_near(cur, m, ts, False)):
            if n is None:
                continue
            other_ts, other = n
            for c, rate in rates.items():
                if r.get(c) is None or other.get(c) is None:
                    continue
                early, late = (other[c], r[c]) if other_ts <= ts else (r[c], other[c])
                dt = abs(ts - other_ts)
                if late - early > rate * (dt + 1) + _slack(c):
                    self._implausible(i, m, c, late - early, dt, rate)

    @staticmethod
    def _implausible(i: int, m: str, c: str, growth: float, dt: int, rate: float):
        allowed = rate * (dt + 1) + _slack(c)
        raise Implausible(i, m, c, f"{c} grows by {growth:.3f} within {dt} s; the contract's "
                          f"largest power allows at most {allowed:.3f}")

    def _rows_to_dicts(self, rows: list[tuple]) -> list[dict[str, Any]]:
        return [dict(zip(READING_COLUMNS, r, strict=True)) for r in rows]

    def _select(self, where: str, params: Sequence[Any], tail: str = "") -> list[dict[str, Any]]:
        cols = ", ".join(READING_COLUMNS)
        return self._rows_to_dicts(
            self._query(f"SELECT {cols} FROM readings WHERE {where} {tail}", params))

    def latest(self, meter_id: str) -> dict[str, Any] | None:
        rows = self._select("meter_id = ?", (meter_id,), "ORDER BY ts DESC, seq DESC LIMIT 1")
        return rows[0] if rows else None

    def readings(
        self, meter_id: str, start: int, end: int, limit: int = 100_000, offset: int = 0
    ) -> list[dict[str, Any]]:
        return self._select("meter_id = ? AND ts >= ? AND ts < ?",
                            (meter_id, start, end, limit, offset),
                            "ORDER BY ts, seq LIMIT ? OFFSET ?")

    def last_before(self, meter_id: str, ts: int) -> dict[str, Any] | None:
        rows = self._select("meter_id = ? AND ts < ?", (meter_id, ts), "ORDER BY ts DESC LIMIT 1")
        return rows[0] if rows else None

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

    def _images(self, where: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        rows = self._query(f"SELECT {', '.join(IMAGE_COLUMNS)} FROM images {where}", params)
        return [dict(zip(IMAGE_COLUMNS, r, strict=True)) for r in rows]

    def get_image(self, sha256: str) -> dict[str, Any] | None:
        rows = self._images("WHERE sha256 = ?", (sha256,))
        return rows[0] if rows else None

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
        return self._images("ORDER BY received_at")

    def delete_images(self, shas: Sequence[str]) -> None:
        with self._write_txn() as cur:
            cur.executemany(self._sql("DELETE FROM images WHERE sha256 = ?"), [(s,) for s in shas])
