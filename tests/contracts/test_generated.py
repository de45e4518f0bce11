"""Committed outputs of the token stage equal regenerated ones: the attestation vectors (made
with eth-account) and the gas report (measured on anvil)."""

from __future__ import annotations

from omd_server import attestation

from openmetering import chain


def test_attestation_vectors_current():
    assert attestation.main(["vectors", "--check"]) == 0


def test_vectors_follow_the_contract_file():
    vec = attestation.build_vectors()
    spec = attestation.spec()
    assert vec["domain"]["name"] == spec["eip712"]["domain"]["name"]
    assert vec["type_string"] == attestation.type_string()
    # the verifier's restated type string is the contract file's (forge's Vectors.t.sol also
    # compares it with the vectors on-chain)
    src = (chain.P.contracts / "src" / "AttestationVerifier.sol").read_text()
    assert f'"{attestation.type_string()}"' in src


def test_gas_report_current(tmp_path):
    out = tmp_path / "gas.md"
    text = chain.gas_report(out)
    assert text == chain.P.gas_report.read_text(), "docs/generated/gas-report.md is stale: make contracts"
    assert "attestation mint, steady state" in text
