"""Hypothesis fuzzing of the ingest API: never a 500, nothing stored from a rejected request."""

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omd_server import contract
from omd_server_testlib import iso_now, reading

FIELDS = contract.fields()
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.text(max_size=8), c, max_size=3), max_leaves=6)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))


def mutated_reading():
    """Valid signed readings with a few fields replaced, dropped or added."""
    return st.tuples(
        st.integers(min_value=1, max_value=2**32 - 1),
        st.dictionaries(keys, values, max_size=3),
        st.lists(st.sampled_from(FIELDS), max_size=2),
        st.booleans(),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutated_reading())
def test_fuzz_single_readings(fuzz_harness, case):
    h, key = fuzz_harness
    seq, changes, drops, resign = case
    doc = reading(seq=seq)
    doc.update(changes)
    for d in drops:
        doc.pop(d, None)
    if resign:
        try:
            doc["sig"] = contract.sign(key, doc)
        except (ValueError, TypeError, OverflowError):
            doc["sig"] = "0" * 64
    before = h.storage.count()
    res = h.client.post("/api/v1/readings", content=json.dumps(doc).encode())
    assert res.status_code < 500, res.text
    event(f"HTTP {res.status_code}")
    after = h.storage.count()
    if res.status_code == 201:
        assert after == before + 1
    elif res.status_code == 200:  # identical re-send of a stored reading
        assert res.json()["status"] == "duplicate" and after == before
    else:
        assert after == before, (res.status_code, res.text)
        assert res.json()["detail"]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(st.binary(max_size=200), values.map(lambda v: json.dumps(v).encode())),
       batch=st.booleans())
def test_fuzz_raw_bodies(fuzz_harness, body, batch):
    h, key = fuzz_harness
    before = h.storage.count()
    url = "/api/v1/readings/batch" if batch else "/api/v1/readings"
    res = h.client.post(url, content=body)
    assert res.status_code < 500
    if res.status_code >= 400:
        assert h.storage.count() == before


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(st.tuples(st.integers(0, 50), st.booleans(), st.booleans()),
                      min_size=1, max_size=8))
def test_fuzz_batches_are_all_or_nothing(fuzz_harness, items):
    h, key = fuzz_harness
    base = h.storage.list_meters()[0]["last_seq"] or 0
    docs = []
    for off, corrupt, sign in items:
        d = reading(seq=base + off, timestamp=iso_now(-5))
        if corrupt:
            d["voltage"] = 1000.0
        d["sig"] = contract.sign(key, d) if sign else "f" * 64
        docs.append(d)
    before = h.storage.count()
    res = h.client.post("/api/v1/readings/batch", json={"readings": docs})
    assert res.status_code < 500
    if res.status_code == 200:
        assert h.storage.count() == before + res.json()["stored"]
    else:
        assert h.storage.count() == before


@settings(max_examples=300, deadline=None)
@given(case=mutated_reading())
def test_fast_validator_never_accepts_what_jsonschema_rejects(case):
    seq, changes, drops, _ = case
    doc = reading(seq=seq)
    doc.update(changes)
    for d in drops:
        doc.pop(d, None)
    if contract.quick_valid(doc):
        assert list(contract.validator().iter_errors(doc)) == []
    # and valid readings do take the fast path
    assert contract.quick_valid(reading(seq=seq))
