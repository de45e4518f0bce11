"""The shared reading contract (contract/*.json), read from the repository rather than re-typed.

The firmware implements the same files in MicroPython; keeping one source of truth means a
change to decimals, ranges or Home Assistant sensors reaches both sides or breaks a test.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import jsonschema

_FILES = ("reading.schema.json", "vectors.json", "homeassistant.json")


class ContractNotFound(RuntimeError):
    pass


@functools.cache
def contract_dir() -> Path:
    """Where the contract lives: $OMD_CONTRACT_DIR, else the repo's contract/ next to server/.

    The package is installed editable from the repo, so the repo path is the normal case; the
    environment variable covers a copied deployment (copy contract/ alongside and point at it).
    """
    candidates = []
    if os.environ.get("OMD_CONTRACT_DIR"):
        candidates.append(Path(os.environ["OMD_CONTRACT_DIR"]))
    here = Path(__file__).resolve().parent
    candidates += [here.parents[1] / "contract", here / "contract"]
    for c in candidates:
        if all((c / f).is_file() for f in _FILES):
            return c
    raise ContractNotFound(
        "contract files not found; looked in "
        + ", ".join(str(c) for c in candidates)
        + " (set OMD_CONTRACT_DIR to the folder holding reading.schema.json)"
    )


@functools.cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((contract_dir() / name).read_text(encoding="utf-8"))


def schema() -> dict[str, Any]:
    return _load("reading.schema.json")


def vectors() -> dict[str, Any]:
    return _load("vectors.json")


def homeassistant() -> dict[str, Any]:
    return _load("homeassistant.json")


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


@functools.cache
def decimals() -> dict[str, int]:
    return {k: p["x-decimals"] for k, p in schema()["properties"].items() if "x-decimals" in p}


def fields() -> list[str]:
    return list(schema()["properties"])


def number_fields() -> list[str]:
    return [k for k, p in schema()["properties"].items() if p.get("type") == "number"]


def canonical(reading: dict[str, Any]) -> str:
    """Canonical text per x-canonical: sorted keys, no whitespace, x-decimals per number field,
    'sig' left out, absent fields absent."""
    dec = decimals()
    parts = []
    for key in sorted(k for k in reading if k != "sig"):
        value = reading[key]
        if value is None:
            raise ValueError(f"{key}: null is not allowed in the canonical form (omit the field)")
        if key in dec:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key}: expected a number")
            text = f"{value:.{dec[key]}f}"  # same digits as C/MicroPython "%.Nf"
        elif isinstance(value, bool):
            raise ValueError(f"{key}: booleans are not part of the contract")
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, str):
            text = json.dumps(value, ensure_ascii=True)
        else:
            raise ValueError(f"{key}: unexpected type {type(value).__name__}")
        parts.append(json.dumps(key) + ":" + text)
    return "{" + ",".join(parts) + "}"


def sign(key_hex: str, reading: dict[str, Any]) -> str:
    return hmac.new(
        bytes.fromhex(key_hex), canonical(reading).encode("utf-8"), hashlib.sha256
    ).hexdigest()


def verify(key_hex: str, reading: dict[str, Any]) -> bool:
    sig = reading.get("sig")
    if not isinstance(sig, str):
        return False
    return hmac.compare_digest(sign(key_hex, reading), sig)


def image_message(meter_id: str, sha256_hex: str) -> dict[str, str]:
    """What a meter signs to upload a JPEG: the same canonical encoder over a tiny document,
    so the firmware needs no second signing scheme (server extension, documented in README)."""
    return {"image_sha256": sha256_hex, "meter_id": meter_id}


def sign_image(key_hex: str, meter_id: str, sha256_hex: str) -> str:
    return sign(key_hex, image_message(meter_id, sha256_hex))
