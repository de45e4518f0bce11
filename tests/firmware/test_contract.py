import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

import contract


def test_vectors_canonical_and_sig(ct, vectors):
    key = contract.key_from_hex(vectors["key_hex"])
    assert vectors["cases"]
    for case in vectors["cases"]:
        assert ct.canonical(case["reading"]) == case["canonical"], case["name"]
        body, sig = ct.signed_body(case["reading"], key)
        assert sig == case["sig"], case["name"]
        sent = json.loads(body)
        assert sent.pop("sig") == case["sig"]
        assert ct.canonical(sent) == case["canonical"]


def test_vectors_through_fixed_point(ct, vectors):
    """The device path (Fx mantissas, no floats) gives the same bytes as the vectors."""
    key = contract.key_from_hex(vectors["key_hex"])
    for case in vectors["cases"]:
        r = {k: (contract.fx(v, ct.decimals[k]) if k in ct.decimals else v)
             for k, v in case["reading"].items()}
        assert ct.signed_body(r, key)[1] == case["sig"]


@pytest.mark.parametrize("case", json.loads(
    (__import__("pathlib").Path(__file__).resolve().parents[2] / "contract" / "vectors.json")
    .read_text())["refused"], ids=lambda c: c["name"])
def test_refused_vectors_are_flagged(ct, case):
    """The device's contract check names the field of every reading the server refuses."""
    import sys

    limit = sys.get_int_max_str_digits()  # a CPython guard; MicroPython has no such limit
    sys.set_int_max_str_digits(0)
    try:
        problems = ct.check(json.loads(case["json"]))
    finally:
        sys.set_int_max_str_digits(limit)
    assert (case["field"], case["rule"]) in problems
    # and the cases the server accepts pass the same check
    assert not ct.check({"seq": 119.0, "voltage": 220.000, "watts": -0.0, "fw": "0.1.0"})


def test_canonical_refuses_a_fraction_in_an_integer_field(ct):
    with pytest.raises(ValueError, match="seq"):
        ct.canonical({"seq": 119.5})


def test_hmac_matches_stdlib():
    import hashlib
    import hmac

    for key in (b"", b"k", bytes(range(64)), bytes(range(100))):
        msg = b"open metering" * 7
        assert contract.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=4))
def test_fmt_int_exact(m, d):
    from decimal import Decimal

    assert Decimal(contract.fmt_int(m, d)) == Decimal(m).scaleb(-d)
    assert len(contract.fmt_int(m, d).partition(".")[2]) == d


def test_unknown_field_refused(ct):
    with pytest.raises(ValueError, match="volts"):
        ct.canonical({"volts": 1.0})


def test_contract_decimals_come_from_schema(ct, schema):
    for k, p in schema["properties"].items():
        if "x-decimals" in p:
            assert ct.decimals[k] == p["x-decimals"]
    jsonschema.Draft202012Validator.check_schema(schema)
