"""One storage interface, two SQL backends (SQLite by default, PostgreSQL by URL).

What both share (schema, SQL, replay and plausibility rules, error classes) is in sql.py; the
backends add connection handling, placeholders and their write path (SQLite: group commit
under a lock; PostgreSQL: a transaction per request with row locks). Every write is one
transaction: a request's readings are stored entirely or not at all, and the HTTP layer
acknowledges only after COMMIT returned.
"""

from __future__ import annotations

from .sql import (
    READING_COLUMNS,
    Implausible,
    Rejected,
    ReplayRejected,
    SqlStorage,
    StorageUnavailable,
    Unstorable,
)

__all__ = ["READING_COLUMNS", "Implausible", "Rejected", "ReplayRejected", "SqlStorage",
           "StorageUnavailable", "Unstorable", "open_storage"]


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
