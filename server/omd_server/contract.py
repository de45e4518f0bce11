"""The shared reading contract (contract/*.json), read from the repository rather than re-typed.

The firmware implements the same files in MicroPython; keeping one source of truth means a
change to decimals, ranges or Home Assistant sensors reaches both sides or breaks a test.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import jsonschema

_FILES = ("reading.schema.json", "vectors.json", "homeassistant.json", "transport.json")


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


def transport() -> dict[str, Any]:
    """HTTP paths, header names and status meanings shared with the firmware."""
    return _load("transport.json")


def transport_path(kind: str, meter_id: str = "") -> str:
    """Path of 'reading', 'batch' or 'image' (with {meter_id} filled in) from transport.json."""
    return transport()[kind]["path"].replace("{meter_id}", meter_id)


def image_headers(key_hex: str, meter_id: str, sha256_hex: str) -> dict[str, str]:
    """Headers of a signed image upload, names from transport.json (simulator, tests)."""
    t = transport()["image"]
    return {"Content-Type": t["content_type"], t["sha256_header"]: sha256_hex,
            t["signature_header"]: sign_image(key_hex, meter_id, sha256_hex)}


def ecma_regex(pattern: str) -> re.Pattern:
    """A schema pattern compiled with its JSON Schema (ECMA-262) meaning.

    Python's `$` also matches before a final newline and its `\\d` matches any Unicode digit;
    in ECMA-262 `$` is the end of the text and `\\d` is 0-9. So `$` outside a character class
    becomes `\\Z` and the pattern is ASCII-only: `"<64 hex>\\n"` no longer passes `^[0-9a-f]{64}$`.
    """
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return _compile("".join(out))


@functools.lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.ASCII)


def matches(pattern: str, text: str) -> bool:
    """JSON Schema `pattern` semantics (search, ECMA-262 anchors); the one way patterns are
    checked (request validation, CLI arguments, fast path)."""
    return isinstance(text, str) and ecma_regex(pattern).search(text) is not None


def _pattern_keyword(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not matches(pattern, instance):
        yield jsonschema.ValidationError(f"{instance[:80]!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator,
                                          {"pattern": _pattern_keyword})


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return _Validator(s)


@functools.cache
def decimals() -> dict[str, int]:
    return {k: p["x-decimals"] for k, p in schema()["properties"].items() if "x-decimals" in p}


@functools.cache
def integer_fields() -> frozenset[str]:
    return frozenset(k for k, p in schema()["properties"].items() if p.get("type") == "integer")


@functools.cache
def bounds() -> dict[str, tuple[float, float]]:
    """(minimum, maximum) of every integer and number field."""
    return {k: (p["minimum"], p["maximum"]) for k, p in schema()["properties"].items()
            if p.get("type") in ("integer", "number")}


@functools.cache
def counters() -> dict[str, float]:
    """Counter field -> the largest increase per second of elapsed time it may show, in its own
    unit (x-max-rate: the field whose range bounds the rate, e.g. watts for a Wh counter)."""
    out = {}
    for k, p in schema()["properties"].items():
        if "x-max-rate" in p:
            rate = p["x-max-rate"]
            lo, hi = bounds()[rate["field"]]
            out[k] = max(abs(lo), abs(hi)) / rate["time_unit_s"]
    return out


def extra_decimals(key: str, value: Any) -> bool:
    """True if value has digits beyond its field's x-decimals: they would be stored but not
    signed, so such a reading is refused. '%.Nf' and back is exact for the contract's ranges
    (|value| * 10**N stays far below 2**53)."""
    d = decimals().get(key)
    return (d is not None and type(value) is float and math.isfinite(value)
            and _off_grid(value, 10.0**d))


def _off_grid(value: float, scale: float) -> bool:
    # the nearest multiple of 1/scale, computed with one correctly rounded division: equal to
    # value exactly when value is the double nearest to a number with that many decimals
    # (the same answer as float('%.Nf' % value) != value, at a tenth of the cost)
    # (beyond 2**53 there are no decimals to speak of; such values break the bounds anyway)
    x = value * scale
    return abs(x) < 2**53 and round(x) / scale != value



_FAST_KEYWORDS = {"type", "minimum", "maximum", "pattern", "maxLength", "description"}
_TOP_KEYWORDS = {"$schema", "$id", "title", "description", "type", "required",
                 "additionalProperties", "properties", "dependentRequired"}


def _plain(keys) -> set[str]:
    return {k for k in keys if not k.startswith("x-")}


@functools.cache
def _fast_plan():
    """A compiled form of the schema's simple keywords, or None if the schema uses anything
    else (then jsonschema alone decides). jsonschema costs ~0.3 ms per reading; this is the
    hot path of batch ingest."""
    s = schema()
    if _plain(s) - _TOP_KEYWORDS or s.get("additionalProperties") is not False:
        return None
    plan = {}
    for name, p in s["properties"].items():
        if _plain(p) - _FAST_KEYWORDS or p.get("type") not in ("string", "integer", "number"):
            return None
        plan[name] = (p["type"], p.get("minimum"), p.get("maximum"),
                      ecma_regex(p["pattern"]) if "pattern" in p else None, p.get("maxLength"),
                      10.0 ** p["x-decimals"] if "x-decimals" in p else None)
    deps = tuple((k, frozenset(v)) for k, v in s.get("dependentRequired", {}).items())
    return frozenset(s["required"]), plan, deps


def quick_valid(doc: Any) -> bool:
    """True only if doc certainly satisfies the schema and has no digits beyond x-decimals;
    False means 'ask jsonschema' (and check the decimals)."""
    fp = _fast_plan()
    if fp is None or not isinstance(doc, dict):
        return False
    required, plan, deps = fp
    keys = doc.keys()
    if not required <= keys:
        return False
    for k, needs in deps:  # version 2 fields come together, with schema_version
        if k in keys and not needs <= keys:
            return False
    for k, v in doc.items():
        spec = plan.get(k)
        if spec is None:
            return False
        kind, lo, hi, pattern, maxlen, scale = spec
        if kind == "string":
            if type(v) is not str or (pattern and not pattern.search(v)) or (
                    maxlen is not None and len(v) > maxlen):
                return False
        else:
            if type(v) is not int and (kind == "integer" or type(v) is not float):
                return False
            if (lo is not None and v < lo) or (hi is not None and v > hi) or v != v:
                return False
            if scale is not None and type(v) is float and _off_grid(v, scale):
                return False
    return True


@functools.cache
def fields() -> tuple[str, ...]:
    return tuple(schema()["properties"])


def number_fields() -> list[str]:
    return [k for k, p in schema()["properties"].items() if p.get("type") == "number"]


@functools.lru_cache(maxsize=256)
def _quoted_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=True)


def canonical(reading: dict[str, Any]) -> str:
    """Canonical text per x-canonical: sorted keys, no whitespace, x-decimals per number field,
    'sig' left out, absent fields absent."""
    dec = decimals()
    ints = integer_fields()
    parts = []
    for key in sorted(k for k in reading if k != "sig"):
        value = reading[key]
        if value is None:
            raise ValueError(f"{key}: null is not allowed in the canonical form (omit the field)")
        if key in dec:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key}: expected a number")
            text = f"{value:.{dec[key]}f}"  # same digits as C/MicroPython "%.Nf"
            if text[0] == "-" and not text.strip("-0."):
                text = text[1:]  # zero has no sign: -0.0 and 0.0 are one value
        elif key in ints and type(value) is float:
            # JSON Schema's integer: 119.0 is the integer 119, written as such
            if not value.is_integer():
                raise ValueError(f"{key}: {value!r} is not an integer")
            text = str(int(value))
        elif isinstance(value, bool):
            raise ValueError(f"{key}: booleans are not part of the contract")
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, str):
            text = json.dumps(value, ensure_ascii=True)
        else:
            raise ValueError(f"{key}: unexpected type {type(value).__name__}")
        parts.append(_quoted_key(key) + ":" + text)
    return "{" + ",".join(parts) + "}"


def sign(key_hex: str, reading: dict[str, Any], text: str | None = None) -> str:
    """HMAC of the canonical text; pass text when it was already computed."""
    text = canonical(reading) if text is None else text
    return hmac.new(bytes.fromhex(key_hex), text.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(key_hex: str, reading: dict[str, Any], text: str | None = None) -> bool:
    sig = reading.get("sig")
    if not isinstance(sig, str):
        return False
    return hmac.compare_digest(sign(key_hex, reading, text), sig)


def image_message(meter_id: str, sha256_hex: str) -> dict[str, str]:
    """What a meter signs to upload a JPEG: the same canonical encoder over a tiny document,
    so the firmware needs no second signing scheme (contract/transport.json image.signed_fields)."""
    values = {"image_sha256": sha256_hex, "meter_id": meter_id}
    return {k: values[k] for k in transport()["image"]["signed_fields"]}


def sign_image(key_hex: str, meter_id: str, sha256_hex: str) -> str:
    return sign(key_hex, image_message(meter_id, sha256_hex))
