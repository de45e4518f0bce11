"""Property-based tests: readings, batches, images and query strings generated from
contract/reading.schema.json (valid ones, and ones out of range, of the wrong type, on the
boundaries, oversize), against the real app.

What must hold for every generated request: never a 5xx; a refused request stores nothing; an
accepted reading reads back exactly as it was signed; every read endpoint and the status page
answer valid JSON (no NaN/Infinity), before and after."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from omd_server import contract
from omd_server.simulate import fake_jpeg

SCHEMA = contract.schema()
PROPS = SCHEMA["properties"]
DEC = contract.decimals()
BOUNDS = contract.bounds()
INTS = contract.integer_fields()
NUMBERS = sorted(k for k, p in PROPS.items() if p["type"] == "number")
STRINGS = sorted(k for k, p in PROPS.items() if p["type"] == "string")
_meters = itertools.count(1)
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity: what a browser's JSON.parse accepts."""
    def no(c):
        raise ValueError(f"{c} is not JSON")
    return json.loads(text, parse_constant=no)


# -- values from the schema ----------------------------------------------------------------
def number(name: str):
    """Any value of a number field with its x-decimals, bounds included."""
    d = DEC[name]
    lo, hi = BOUNDS[name]
    return st.integers(round(lo * 10**d), round(hi * 10**d)).map(lambda m: m / 10**d)


def integer(name: str):
    lo, hi = BOUNDS[name]
    return st.integers(lo, hi)


def text_of(name: str):
    p = PROPS[name]
    if name == "timestamp":
        return timestamps()
    if "pattern" in p and p["pattern"] != "^[ -~]*$":
        return st.from_regex(contract.ecma_regex(p["pattern"]).pattern, fullmatch=True)
    return st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                   max_size=p.get("maxLength", 64))


def timestamps():
    """Valid for the server's window: after earliest_timestamp, not in the future."""
    lo = datetime(2020, 1, 2, tzinfo=UTC)
    hi = datetime.now(UTC) - timedelta(seconds=5)
    forms = st.sampled_from(["Z", "+00:00", "+02:00", "-05:30", ""])

    def fmt(args):
        dt, form = args
        if form in ("", "Z", "+00:00"):
            return dt.strftime("%Y-%m-%dT%H:%M:%S") + form
        sign = 1 if form[0] == "+" else -1
        off = timedelta(hours=int(form[1:3]), minutes=int(form[4:6])) * sign
        return (dt + off).strftime("%Y-%m-%dT%H:%M:%S") + form
    return st.tuples(st.datetimes(min_value=lo.replace(tzinfo=None),
                                  max_value=hi.replace(tzinfo=None)), forms).map(fmt)


@st.composite
def valid_reading(draw, meter_id: str):
    """A reading every rule accepts: V, I, PF and P consistent, optional fields at random."""
    v, i = draw(number("voltage")), draw(number("current"))
    with_pf = draw(st.booleans())
    pf = draw(number("pf")) if with_pf else 1.0
    lo, hi = BOUNDS["watts"]
    w = min(hi, max(lo, round(draw(st.sampled_from([1, -1])) * v * i * pf, 2)))
    seq = draw(integer("seq"))
    r = {"meter_id": meter_id, "seq": float(seq) if draw(st.booleans()) else seq,
         "timestamp": draw(timestamps()), "voltage": v, "current": i, "watts": w + 0.0}
    if with_pf:
        r["pf"] = pf
    for k in ("frequency", "energy_import_wh", "energy_export_wh"):
        if draw(st.booleans()):
            r[k] = draw(number(k))
    for k in ("image_sha256", "fw"):
        if draw(st.booleans()):
            r[k] = draw(text_of(k))
    if draw(st.booleans()):  # version 2: the solar channel, all of it, consistent like the grid
        si = draw(number("solar_current"))
        spf = draw(number("solar_pf"))
        r.update(schema_version=2, solar_current=si, solar_pf=spf,
                 solar_watts=min(hi, max(lo, round(draw(st.sampled_from([1, -1])) * v * si * spf,
                                                   2))) + 0.0,
                 solar_energy_export_wh=draw(number("solar_energy_export_wh")),
                 solar_energy_import_wh=draw(number("solar_energy_import_wh")))
    return r


BAD_TYPES = st.sampled_from([True, False, None, "12", [], {}, [1.0]])


@st.composite
def mutation(draw):
    """(field, raw JSON literal) that must be refused with a 422 at that field."""
    kind = draw(st.sampled_from(["range", "huge", "type", "decimals", "string", "fraction"]))
    if kind in ("range", "huge"):
        f = draw(st.sampled_from(sorted(BOUNDS)))
        lo, hi = BOUNDS[f]
        step = 10 ** -DEC.get(f, 0)
        if kind == "range":
            over = draw(st.integers(1, 10**6)) * step
            value = draw(st.sampled_from([hi + over, lo - over]))
            text = str(int(value)) if f in INTS else f"{value:.{DEC[f]}f}"
        else:
            digits = draw(st.integers(len(str(int(hi))) + 1, 6000))
            text = draw(st.sampled_from(["", "-"])) + "9" * digits
            text = draw(st.sampled_from([text, "1e400", "-1e400", "1.7e308", "-1e309",
                                         text + ".5"]))
        return f, text, kind
    if kind == "type":
        f = draw(st.sampled_from(sorted(PROPS)))
        bad = draw(BAD_TYPES if PROPS[f]["type"] != "string" else
                   st.sampled_from([True, None, 7, 1.5, [], {}]))
        return f, json.dumps(bad), kind
    if kind == "decimals":
        f = draw(st.sampled_from(NUMBERS))
        d = DEC[f]
        lo, hi = BOUNDS[f]
        m = draw(st.integers(round(lo * 10**d), round(hi * 10**d) - 1))
        extra = draw(st.integers(1, 9))
        return f, f"{m / 10**d:.{d}f}{extra}", kind
    if kind == "fraction":
        f = draw(st.sampled_from(sorted(INTS)))
        lo, hi = BOUNDS[f]
        n = draw(st.integers(lo, max(lo, hi - 1)))  # schema_version: lo == hi
        return f, f"{n}.{draw(st.integers(1, 9))}", kind
    f = draw(st.sampled_from(STRINGS))
    good = draw(text_of(f))
    bad = draw(st.sampled_from([good + "\n", good + "\u00fc", "\u0007" + good, good + "\x00",
                                good + "\u2603", "x" * (PROPS[f].get("maxLength", 64) + 1)]))
    assume(not contract.matches(PROPS[f].get("pattern", "^.*$"), bad)
           or len(bad) > PROPS[f].get("maxLength", 10**9))
    return f, json.dumps(bad), kind


def with_literal(doc: dict, field: str, literal: str) -> bytes:
    """doc as JSON with field's value written as the raw literal (numbers no float can be)."""
    marker = "__OMD_LITERAL__"
    text = json.dumps(dict(doc, **{field: marker}))
    return text.replace(json.dumps(marker), literal).encode()


# -- harness: `prop` (tests/server/conftest.py) -------------------------------------------


def fresh_meter(h) -> tuple[str, str]:
    m = f"p{next(_meters)}"
    return m, h.provision(m)


def read_side_is_json(h, meter_id: str | None = None, everything: bool = False) -> None:
    # the status page and the meter list cover every meter: once at the end, not per example
    paths = ["/api/v1/health"] + (["/api/v1/status", "/api/v1/meters"] if everything else [])
    if meter_id:
        paths += [f"/api/v1/meters/{meter_id}/{p}" for p in
                  ("latest", "readings?start=0", "readings?start=0&bucket=3600",
                   "energy?start=0", "energy?start=0&period=month", "attestations",
                   "attestations/1")]
    for p in paths:
        res = h.client.get(p)
        assert res.status_code in (200, 404), (p, res.status_code, res.text[:300])
        strict_json(res.text)
    if meter_id:
        res = h.client.get(f"/api/v1/meters/{meter_id}/readings.csv")
        assert res.status_code in (200, 404)


# -- properties -----------------------------------------------------------------------------
@settings(SETTINGS, max_examples=100)
@given(data=st.data())
def test_valid_readings_are_stored_and_read_back_exactly_as_signed(prop, data):
    h = prop
    meter, key = fresh_meter(h)
    r = data.draw(valid_reading(meter))
    r["sig"] = contract.sign(key, r)
    before = h.storage.count()
    res = h.client.post("/api/v1/readings", content=json.dumps(r).encode())
    assert res.status_code == 201, res.text
    assert h.storage.count() == before + 1
    back = h.client.get(f"/api/v1/meters/{meter}/latest").json()
    back.pop("received_at")
    assert contract.canonical(back) == contract.canonical(r)
    assert back["sig"] == r["sig"] and contract.verify(key, back)
    assert type(back["seq"]) is int  # 119.0 is stored as the integer it is
    read_side_is_json(h, meter)


@settings(SETTINGS, max_examples=150)
@given(data=st.data(), case=mutation())
def test_readings_breaking_a_rule_are_refused_and_leave_nothing(prop, data, case):
    h = prop
    field, literal, kind = case
    meter, key = fresh_meter(h)
    r = data.draw(valid_reading(meter))
    r["sig"] = contract.sign(key, r)
    event(kind)
    before = h.storage.count()
    batch = data.draw(st.booleans())
    body = with_literal(r, field, literal)
    if batch:
        good = data.draw(valid_reading(meter))
        good["seq"] = 0 if r["seq"] else 1
        good["sig"] = contract.sign(key, good)
        body = b'{"readings": [' + json.dumps(good).encode() + b"," + body + b"]}"
    res = h.client.post("/api/v1/readings/batch" if batch else "/api/v1/readings", content=body)
    assert res.status_code == 422, (field, literal[:60], res.status_code, res.text[:400])
    detail = strict_json(res.text)["detail"]
    want = ["body", "readings", 1, field] if batch else ["body", field]
    assert want in [d["loc"] for d in detail], (want, detail)
    assert all(set(d) == {"loc", "msg", "type"} for d in detail)
    assert h.storage.count() == before
    read_side_is_json(h)


@settings(SETTINGS, max_examples=30)
@given(data=st.data(), n=st.integers(1, 30), bad=st.sampled_from([None, "jump", "replay"]))
def test_batches_are_all_or_nothing(prop, data, n, bad):
    h = prop
    meter, key = fresh_meter(h)
    t0 = int(time.time()) - 10 * 86400
    docs = []
    for k in range(n):
        r = data.draw(valid_reading(meter))
        r.update(seq=k + 1, timestamp=datetime.fromtimestamp(t0 + 60 * k, UTC)
                 .strftime("%Y-%m-%dT%H:%M:%SZ"), energy_export_wh=1000.0 + k,
                 energy_import_wh=5.0)
        if "solar_watts" in r:  # its counters grow plausibly too
            r.update(solar_energy_export_wh=2000.0 + k, solar_energy_import_wh=1.0)
        docs.append(r)
    if bad == "jump":  # counters: more than the largest power for a minute
        docs[-1]["energy_export_wh"] = 1000.0 + n + 10_000
    elif bad == "replay" and n > 1:
        docs[-1]["seq"] = docs[0]["seq"]
    for r in docs:
        r["sig"] = contract.sign(key, r)
    before = h.storage.count()
    res = h.client.post("/api/v1/readings/batch", json={"readings": docs})
    assert res.status_code < 500
    if res.status_code == 200:
        # a lone first reading has nothing before it to replay or to jump from
        assert bad is None or n == 1
        assert h.storage.count() == before + n
    else:
        assert res.status_code in (409, 422), res.text
        assert h.storage.count() == before
        loc = res.json()["detail"][0]["loc"]
        assert loc[:3] == ["body", "readings", n - 1]


def test_oversize_bodies_and_batches(harness_factory):
    h = harness_factory(max_body_bytes=5000, max_batch=3)
    key = h.provision()
    r = {"meter_id": "meter-01", "seq": 1, "timestamp": "2024-07-26T10:30:00Z", "voltage": 230.0,
         "current": 1.0, "watts": 230.0}
    r["sig"] = contract.sign(key, r)
    big = json.dumps(dict(r, fw="x" * 6000)).encode()
    assert h.client.post("/api/v1/readings", content=big).status_code == 413
    res = h.post([r] * 4, batch=True)
    assert res.status_code == 413 and res.json()["detail"][0]["loc"] == ["body", "readings"]
    assert h.storage.count() == 0


# -- evidence photos --------------------------------------------------------------------------
@settings(SETTINGS, max_examples=50)
@given(body=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(
           lambda b: fake_jpeg(b.hex()))),
       sig=st.sampled_from(["good", "bad", "missing", "garbage"]),
       sha=st.sampled_from(["none", "good", "wrong", "garbage"]))
def test_image_uploads(prop, body, sig, sha):
    h = prop
    meter, key = fresh_meter(h)
    digest = hashlib.sha256(body).hexdigest()
    headers = {"Content-Type": "image/jpeg"}
    if sig != "missing":
        headers["X-OMD-Signature"] = {"good": contract.sign_image(key, meter, digest),
                                      "bad": "0" * 64, "garbage": "zz\n"}[sig]
    if sha != "none":
        headers["X-OMD-Image-SHA256"] = {"good": digest, "wrong": "1" * 64,
                                         "garbage": digest + "\n"}[sha]
    had = h.storage.get_image(digest)
    res = h.client.post(f"/api/v1/meters/{meter}/images", content=body, headers=headers)
    assert res.status_code < 500, res.text
    event(f"HTTP {res.status_code}")
    strict_json(res.text)
    ok = (sig == "good" and sha in ("none", "good") and body.startswith(b"\xff\xd8\xff"))
    if ok:
        assert res.status_code in (200, 201)
        assert h.client.get(f"/api/v1/images/{digest}").content == body
    else:
        assert res.status_code in (401, 413, 422)
        assert (h.storage.get_image(digest) is None) == (had is None)


def test_oversize_image(harness_factory):
    h = harness_factory(max_image_bytes=1000)
    key = h.provision()
    jpeg = fake_jpeg("x" * 2000)
    sha = hashlib.sha256(jpeg).hexdigest()
    res = h.client.post("/api/v1/meters/meter-01/images", content=jpeg, headers={
        "X-OMD-Signature": contract.sign_image(key, "meter-01", sha)})
    assert res.status_code == 413 and h.storage.get_image(sha) is None


# -- query strings ----------------------------------------------------------------------------
TIMES = st.one_of(
    st.integers(-10**25, 10**25).map(str),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.dates().map(str),
    st.text(max_size=30),
    st.sampled_from(["99999999999999999999", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+23:59",
                     "1970-01-01", "2024-07-26T10:30:00", "-1", "1e5", "NaN", ""]),
)
PARAMS = st.fixed_dictionaries({}, optional={
    "start": TIMES, "end": TIMES,
    "bucket": st.one_of(st.integers(-10**20, 10**20).map(str), st.text(max_size=10)),
    "limit": st.one_of(st.integers(-10**20, 10**20).map(str), st.text(max_size=10)),
    "period": st.one_of(st.sampled_from(["day", "month", "year"]), st.text(max_size=10)),
    "after_seq": st.one_of(st.integers(-10**25, 10**25).map(str), st.text(max_size=10)),
    "junk": st.text(max_size=10)})


@pytest.fixture(scope="module")
def queried(prop):
    meter, key = fresh_meter(prop)
    t0 = int(time.time()) - 3 * 86400
    docs = []
    for k in range(50):
        docs.append({"meter_id": meter, "seq": k + 1, "voltage": 230.0, "current": 1.0,
                     "watts": 230.0, "energy_import_wh": 5.0, "energy_export_wh": 100.0 + k,
                     "timestamp": datetime.fromtimestamp(t0 + 3600 * k, UTC)
                     .strftime("%Y-%m-%dT%H:%M:%SZ")})
        docs[-1]["sig"] = contract.sign(key, docs[-1])
    assert prop.post(docs, batch=True).status_code == 200
    return prop, meter


@settings(SETTINGS, max_examples=200)
@given(params=PARAMS, endpoint=st.one_of(
           st.sampled_from(["readings", "energy", "readings.csv", "latest", "attestations"]),
           st.one_of(st.integers(-10**25, 10**25).map(str), st.text(min_size=1, max_size=30))
           .filter(lambda t: t not in (".", ".."))
           .map(lambda seq: f"attestations/{quote(seq, safe='')}")),
       which=st.sampled_from(["known", "unknown", "invalid"]), bad_id=st.text(max_size=40))
def test_query_strings_are_validated_before_any_answer(queried, params, endpoint, which, bad_id):
    h, meter = queried
    m = {"known": meter, "unknown": "nobody-here", "invalid": bad_id}[which]
    if which == "invalid":
        assume(m and "/" not in m and "?" not in m and "#" not in m and m not in (".", "..")
               and not contract.matches(contract.schema()["properties"]["meter_id"]["pattern"],
                                        m))
    res = h.client.get(f"/api/v1/meters/{quote(m, safe='')}/{endpoint}", params=params)
    event(f"HTTP {res.status_code}")
    assert res.status_code in (200, 404, 422), (res.status_code, params, res.text[:300])
    if res.status_code == 200 and endpoint == "readings.csv":
        assert res.text.startswith("meter_id,") and res.text.endswith("\n")
        return
    body = strict_json(res.text)
    if res.status_code >= 400:
        assert body["detail"] and all(set(d) == {"loc", "msg", "type"} for d in body["detail"])
        if res.status_code == 422:
            assert body["detail"][0]["loc"][0] in ("query", "path")


def test_read_side_stays_json_after_all_that(prop):
    meters = prop.storage.reading_meters()
    assert len(meters) > 100
    for m in meters:
        read_side_is_json(prop, m)
    read_side_is_json(prop, everything=True)
