"""Meter keys: the one place where a key is made (the CLI's `keys add`, the simulator)."""

from __future__ import annotations

import secrets

from . import contract
from .storage import SqlStorage


class KeyRefused(ValueError):
    pass


def new_key() -> str:
    """32 random bytes, hex: the HMAC key of contract/reading.schema.json x-canonical."""
    return secrets.token_hex(32)


def check_meter_id(meter_id: str) -> None:
    pattern = contract.schema()["properties"]["meter_id"]["pattern"]
    if not contract.matches(pattern, meter_id):
        raise KeyRefused(f"meter id must match {pattern}")


def issue(storage: SqlStorage, meter_id: str, rotate: bool = False) -> str:
    """A new key for meter_id, stored; refuses to replace an existing one unless rotate."""
    check_meter_id(meter_id)
    if storage.get_key(meter_id) and not rotate:
        raise KeyRefused(f"meter {meter_id} already has a key; use --rotate to replace it")
    key = new_key()
    storage.set_key(meter_id, key)
    return key


def ensure(storage: SqlStorage, meter_ids: list[str]) -> dict[str, str]:
    """The key of each meter, issued where it has none."""
    return {m: storage.get_key(m) or issue(storage, m) for m in meter_ids}
