"""Evidence photos: content-addressed JPEG files plus a row per image in the database."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path

from .config import Config
from .storage import SqlStorage

log = logging.getLogger("omd_server.images")


class ImageRejected(ValueError):
    pass


def image_path(cfg: Config, sha: str) -> Path:
    return Path(cfg.image_dir) / sha[:2] / f"{sha}.jpg"


def store(cfg: Config, storage: SqlStorage, meter_id: str, data: bytes) -> tuple[str, bool]:
    """Write the JPEG durably, then record it. Returns (sha256, newly_stored)."""
    if not data.startswith(b"\xff\xd8\xff"):
        raise ImageRejected("body is not a JPEG (missing FF D8 FF start-of-image marker)")
    sha = hashlib.sha256(data).hexdigest()
    path = image_path(cfg, sha)
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        created = True
    try:
        new = storage.add_image(sha, meter_id, str(path), len(data))
    except Exception:
        if created:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return sha, new


def read_verified(cfg: Config, storage: SqlStorage, sha: str) -> bytes | None:
    row = storage.get_image(sha)
    if row is None:
        return None
    try:
        data = Path(row["path"]).read_bytes()
    except FileNotFoundError:
        return None
    # never serve as evidence a file whose content no longer matches its name
    if hashlib.sha256(data).hexdigest() != sha:
        log.error("image %s on disk does not match its SHA-256; not served", sha)
        return None
    return data


def prune(cfg: Config, storage: SqlStorage, now: float | None = None) -> list[str]:
    """Apply the retention policy: age limit first, then total size limit, oldest first."""
    now = time.time() if now is None else now
    rows = storage.images_for_pruning()
    doomed = []
    if cfg.image_retention_days > 0:
        cutoff = now - cfg.image_retention_days * 86400
        doomed = [r for r in rows if r["received_at"] < cutoff]
    kept = [r for r in rows if r not in doomed]
    if cfg.image_max_total_mb > 0:
        total = sum(r["size"] for r in kept)
        limit = cfg.image_max_total_mb * 1024 * 1024
        for r in kept:
            if total <= limit:
                break
            doomed.append(r)
            total -= r["size"]
    if doomed:
        # rows first: a row whose file is gone would be served as missing evidence, while a
        # file without a row is merely an orphan the next run can clean up
        storage.delete_images([r["sha256"] for r in doomed])
        for r in doomed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(r["path"])
        log.info("pruned %d evidence images", len(doomed))
    return [r["sha256"] for r in doomed]
