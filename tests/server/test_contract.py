"""The server's canonical encoder and HMAC reproduce the shared contract's vectors exactly."""

import json

import pytest
from omd_server import contract

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
