"""Validation and authentication of incoming readings.

Everything here runs before the database is touched, so a rejected request can never leave
anything behind; the only check that needs the database (seq/replay) runs inside the write
transaction in storage.insert_readings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import contract
from .config import Config
from .errors import Problem

log = logging.getLogger("omd_server.ingest")

class BadJson(ValueError):
    pass


class OutOfRange:
    """A JSON integer no contract field can hold (thousands of digits): kept as its text
    so that validation refuses it at its place with a 422 instead of the parser failing."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        t = self.text
        return t if len(t) <= 24 else f"{t[:12]}…({len(t)} characters)"


# the largest integer either SQL backend stores (BIGINT); the attestations' uint64 members are
# capped there too (attestation.json wire.server_max_uint)
SQL_MAX_INT = 2**63 - 1


@functools.cache
def _int_digits() -> int:
    # digits of the largest bound of any document this parser reads (readings, attestations);
    # anything longer is out of range whatever its value
    bounds = [abs(v) for b in contract.bounds().values() for v in b] + [SQL_MAX_INT]
    return max(len(str(int(v))) for v in bounds) + 1


def _parse_int(text: str):
    return int(text) if len(text.lstrip("-")) <= _int_digits() else OutOfRange(text)


def _reject_constant(name: str):
    raise BadJson(f"{name} is not a valid JSON number")


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        # 1e400 parses as inf, which every field's maximum refuses; an integer of thousands of
        # digits would make int() raise, so it is kept as text for validation to refuse
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise BadJson(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BadJson("JSON nested too deeply") from None


@dataclass
class Outcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # 401 when every problem is about authentication, 422 otherwise
    auth_only: bool = True


def _schema_problems(doc: Any, loc: list[Any]) -> list[Problem]:
    out = []
    for err in sorted(contract.validator().iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = list(err.absolute_path)
        msg = err.message
        if path and isinstance(doc.get(path[0]), OutOfRange):
            continue  # said once, below, as a range problem
        if err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", msg)
            path = path + missing[:1]
        elif err.validator == "dependentRequired":
            # e.g. a solar_* field without schema_version 2: name the missing field
            missing = re.findall(r"'([^']+)' is a dependency of '([^']+)'", msg)
            if missing:
                path = path + [missing[0][0]]
                msg = (f"{missing[0][1]!r} needs {missing[0][0]!r} (reading schema version 2 "
                       "sends schema_version and every solar_* field together)")
        elif err.validator == "additionalProperties":
            extra = sorted(set(doc) - set(contract.fields())) if isinstance(doc, dict) else []
            msg = "unknown field(s): " + ", ".join(repr(e)[:40] for e in extra[:5])
            path = path + extra[:1]
        out.append(Problem(loc + path, msg, "schema." + str(err.validator)))
    return out


def _decimal_problems(doc: dict, loc: list[Any]) -> list[Problem]:
    out = []
    for k, d in contract.decimals().items():
        v = doc.get(k)
        if type(v) is float and math.isfinite(v) and contract.extra_decimals(k, v):
            out.append(Problem(loc + [k], f"{v!r} has more than {d} decimals; the signature "
                               f"covers {d} (x-decimals), so the extra digits would be stored "
                               "unsigned", "value.decimals"))
    return out


def parse_timestamp(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # contract: no offset means UTC (the seed's example)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def check_reading(doc: Any, loc: list[Any], cfg: Config, now: float) -> list[Problem]:
    """Contract + plausibility checks that need no key and no database."""
    if not isinstance(doc, dict):
        return [Problem(loc, "a reading must be a JSON object", "type")]
    if contract.quick_valid(doc):  # schema and x-decimals, the hot path of batch ingest
        problems = []
    else:
        problems = _schema_problems(doc, loc)
        for k, v in doc.items():
            if isinstance(v, OutOfRange):
                lo, hi = contract.bounds().get(k, (None, None))
                rng = f" (allowed {lo} to {hi})" if lo is not None else ""
                problems.append(Problem(loc + [k], f"{v!r} is out of range{rng}", "value.range"))
        problems += _decimal_problems(doc, loc)
    if problems:
        return problems
    try:
        dt = parse_timestamp(doc["timestamp"])
        ts = dt.timestamp()
    except (ValueError, OverflowError) as exc:
        return [Problem(loc + ["timestamp"], f"not a valid date/time: {exc}", "value.timestamp")]
    if ts > now + cfg.max_clock_skew_s:
        problems.append(Problem(
            loc + ["timestamp"],
            f"{doc['timestamp']} is {int(ts - now)} s ahead of the server clock "
            f"(allowed {cfg.max_clock_skew_s} s); check the meter's time sync",
            "value.clock_skew",
        ))
    if cfg.max_age_days and ts < now - cfg.max_age_days * 86400:
        problems.append(Problem(
            loc + ["timestamp"],
            f"{doc['timestamp']} is older than max_age_days={cfg.max_age_days}",
            "value.too_old",
        ))
    if cfg.earliest_timestamp and ts < parse_timestamp(cfg.earliest_timestamp).timestamp():
        problems.append(Problem(
            loc + ["timestamp"],
            f"{doc['timestamp']} is before earliest_timestamp={cfg.earliest_timestamp}; "
            "the meter's clock is probably not set",
            "value.clock_unset",
        ))
    v = doc["voltage"]
    # each metering point: the grid connection (top level) and, in version 2, the inverter
    for wk, ik, pk in (("watts", "current", "pf"), ("solar_watts", "solar_current", "solar_pf")):
        if wk not in doc:
            continue
        i, w = doc[ik], doc[wk]
        s = v * i
        tol = cfg.watts_tolerance_rel * s + cfg.watts_tolerance_abs_w
        if pk in doc:
            expected = s * doc[pk]
            if abs(abs(w) - expected) > tol:
                problems.append(Problem(
                    loc + [wk],
                    f"|{wk}| = {abs(w):.2f} W but voltage*{ik}*{pk} = {expected:.2f} W "
                    f"(tolerance {tol:.2f} W)",
                    "value.power_mismatch",
                ))
        elif abs(w) > s + tol:
            problems.append(Problem(
                loc + [wk],
                f"|{wk}| = {abs(w):.2f} W exceeds voltage*{ik} = {s:.2f} W "
                f"(tolerance {tol:.2f} W)",
                "value.power_mismatch",
            ))
    if "sig" in doc:
        for needed in ("meter_id", "seq"):
            if needed not in doc:
                problems.append(Problem(loc + [needed], "required in a signed reading", "missing"))
    return problems


def digest(doc: dict[str, Any], text: str | None = None) -> str:
    text = contract.canonical(doc) if text is None else text
    return hashlib.sha256(text.encode()).hexdigest()


def to_row(doc: dict[str, Any], meter_id: str, text: str | None = None) -> dict[str, Any]:
    row = {k: doc.get(k) for k in contract.fields()}
    for k in contract.integer_fields():
        if type(row[k]) is float:
            row[k] = int(row[k])  # 119.0 is the integer 119 (x-canonical integers)
    row["meter_id"] = meter_id
    row["ts"] = int(parse_timestamp(doc["timestamp"]).timestamp())
    # identity for duplicate detection: the canonical text as received (meter_id as sent)
    row["digest"] = digest(doc, text)
    return row


def process(docs: list[Any], cfg: Config, key_lookup, batch: bool) -> Outcome:
    """Validate and authenticate readings; all must pass or the caller stores nothing."""
    now = time.time()
    out = Outcome()
    keys: dict[str, str | None] = {}
    for idx, doc in enumerate(docs):
        loc: list[Any] = ["body", contract.transport()["batch"]["field"], idx] if batch else ["body"]
        problems = check_reading(doc, loc, cfg, now)
        if problems:
            out.problems += problems
            out.auth_only = False
            continue
        text = contract.canonical(doc)
        meter_id = doc.get("meter_id")
        if meter_id is not None and meter_id not in keys:
            keys[meter_id] = key_lookup(meter_id)
        if "sig" in doc:
            key = keys[meter_id]
            if key is None:
                out.problems.append(Problem(
                    loc + ["meter_id"], f"unknown meter {meter_id!r} (no key provisioned)",
                    "auth.unknown_meter",
                ))
                continue
            if not contract.verify(key, doc, text):
                out.problems.append(Problem(
                    loc + ["sig"], "signature does not match the canonical reading",
                    "auth.bad_signature",
                ))
                continue
        else:
            if not cfg.allow_unsigned:
                out.problems.append(Problem(
                    loc + ["sig"],
                    "unsigned reading refused: 'sig' missing and allow_unsigned is false",
                    "auth.unsigned",
                ))
                continue
            meter_id = meter_id or cfg.unsigned_meter_id
            if meter_id not in keys:
                keys[meter_id] = key_lookup(meter_id)
            if keys[meter_id] is not None:
                # a provisioned meter must always sign, or allow_unsigned would let anyone on
                # the LAN write into its history
                out.problems.append(Problem(
                    loc + ["sig"], f"meter {meter_id!r} has a key: its readings must be signed",
                    "auth.unsigned",
                ))
                continue
        out.rows.append(to_row(doc, meter_id, text))
    return out
