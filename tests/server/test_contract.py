"""The server's canonical encoder and HMAC reproduce the shared contract's vectors exactly."""

import json

import pytest
from omd_server import contract
from omd_server_testlib import iso_now

VECTORS = contract.vectors()


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_vectors(case):
    assert contract.canonical(case["reading"]) == case["canonical"]
    assert contract.sign(VECTORS["key_hex"], case["reading"]) == case["sig"]
    signed = dict(case["reading"], sig=case["sig"])
    assert contract.verify(VECTORS["key_hex"], signed)
    # the sig field itself is never part of the signed text
    assert contract.canonical(signed) == case["canonical"]
    assert not contract.verify(VECTORS["key_hex"], dict(signed, watts=case["reading"]["watts"] + 0.01))


def test_contract_read_from_repo_files():
    path = contract.contract_dir() / "reading.schema.json"
    on_disk = json.loads(path.read_text())
    assert contract.schema() == on_disk
    # decimals come from x-decimals, not from a copy in the server code
    assert contract.decimals() == {
        k: p["x-decimals"] for k, p in on_disk["properties"].items() if "x-decimals" in p
    }
    assert set(contract.decimals()) >= {"voltage", "current", "watts"}


def test_canonical_refuses_null_and_bool():
    with pytest.raises(ValueError):
        contract.canonical({"voltage": None})
    with pytest.raises(ValueError):
        contract.canonical({"watts": True})


def test_every_vector_reading_is_valid_against_the_schema():
    for case in VECTORS["cases"]:
        assert list(contract.validator().iter_errors(case["reading"])) == []


def test_every_number_has_bounds_that_both_databases_and_the_firmware_hold():
    """Generic over the schema (a v2 with more counters is covered without a new test)."""
    props = contract.schema()["properties"]
    for k, p in props.items():
        if p["type"] not in ("integer", "number"):
            continue
        assert "minimum" in p and "maximum" in p, k
        lo, hi = p["minimum"], p["maximum"]
        if p["type"] == "integer":
            # SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit; the firmware's seq is u32
            assert -(2**63) <= lo <= hi < 2**63, k
        else:
            # DOUBLE PRECISION (both databases) holds every value with x-decimals exactly
            d = p["x-decimals"]
            assert max(abs(lo), abs(hi)) * 10**d < 2**53, k
            for v in (lo, hi):
                assert float(f"{v:.{d}f}") == v, k
    # the firmware keeps energy as u64 millijoules: the counters' maximum fits in it
    for k in contract.counters():
        assert props[k]["maximum"] * 3600 * 1000 < 2**64, k
    assert props["seq"]["maximum"] == 2**32 - 1


def test_every_string_is_printable_ascii_by_its_pattern():
    props = contract.schema()["properties"]
    for k, p in props.items():
        if p["type"] == "string":
            assert "pattern" in p, k
            for bad in ("\u00fc", "\n", "\x00", "\u2603"):
                assert not contract.matches(p["pattern"], "a" + bad), (k, bad)


def test_counters_are_bounded_by_a_bounded_rate_field():
    for k, rate in contract.counters().items():
        assert 0 < rate < 1e6, k
        assert contract.schema()["properties"][k]["x-max-rate"]["field"] in contract.bounds()


def test_patterns_have_ecma_semantics():
    sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    pattern = contract.schema()["properties"]["image_sha256"]["pattern"]
    assert contract.matches(pattern, sha)
    assert not contract.matches(pattern, sha + "\n")  # Python's $ would accept this
    errors = [e.validator for e in contract.validator().iter_errors(
        {"voltage": 1.0, "current": 1.0, "watts": 1.0, "timestamp": "2024-07-26T10:30:00Z",
         "image_sha256": sha + "\n"})]
    assert errors == ["pattern"]
    assert contract.matches("^[0-9]$", "7") and not contract.matches("^[0-9]$", "\u0667")


@pytest.mark.parametrize("case", VECTORS["refused"], ids=[c["name"] for c in VECTORS["refused"]])
def test_refused_vectors(h, case):
    h.provision("meter-01")
    res = h.client.post("/api/v1/readings", content=case["json"].encode())
    assert res.status_code == 422, res.text
    assert ["body", case["field"]] in [d["loc"] for d in res.json()["detail"]]
    assert h.storage.count() == 0


def test_accepted_edge_vectors_are_stored_exactly_as_signed(h):
    """The vectors' edge cases (119.0 as seq, -0.0, counters at their maximum) are accepted
    and read back as their canonical text; each gets its own meter (seq rules aside)."""
    cases = [c for c in VECTORS["cases"] if "x-canonical" in c["name"]]
    assert len(cases) >= 3
    for n, case in enumerate(cases):
        meter = f"edge-{n}"
        h.storage.set_key(meter, VECTORS["key_hex"])
        doc = dict(case["reading"], meter_id=meter, timestamp=iso_now(-60))
        doc["sig"] = contract.sign(VECTORS["key_hex"], doc)
        res = h.client.post("/api/v1/readings", content=json.dumps(doc).encode())
        assert res.status_code == 201, (case["name"], res.text)
        back = h.client.get(f"/api/v1/meters/{meter}/latest").json()
        back.pop("received_at")
        assert contract.canonical(back) == contract.canonical(doc) and back["sig"] == doc["sig"]
