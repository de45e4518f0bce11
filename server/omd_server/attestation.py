"""Interval attestations (contract/attestation.json): EIP-712 typed data, device-signature
recovery with eth-account, the readings' Merkle tree, the ABI form the verifier takes, and the
test vectors.

The firmware implements the same file in MicroPython (firmware/attest.py, eip712.py,
secp256k1.py); this module is the CPython reference both are tested against, built on
eth-account rather than on a second hand-written signer.

    python -m omd_server.attestation vectors [--check]   # contract/attestation-vectors.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import keccak, to_checksum_address

from . import contract

# secp256k1 group order: signatures with s above N/2 are the malleable twin (EIP-2)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# JSON Schema (ECMA-262) meaning, like every pattern of the contract: "$" is the end of the
# text, so a trailing newline is refused rather than stored
_HEX32 = contract.ecma_regex(r"^0x[0-9a-f]{64}$")
_SIG = contract.ecma_regex(r"^0x[0-9a-f]{130}$")
_ADDR = contract.ecma_regex(r"^0x[0-9a-fA-F]{40}$")
VECTORS = "attestation-vectors.json"


def spec() -> dict[str, Any]:
    return contract._load("attestation.json")


def types() -> dict[str, list[dict[str, str]]]:
    return spec()["eip712"]["types"]


def members() -> list[dict[str, str]]:
    return types()[spec()["eip712"]["primaryType"]]


def type_string() -> str:
    """EIP-712 encodeType of the attestation: what AttestationVerifier.ATTESTATION_TYPE says."""
    primary = spec()["eip712"]["primaryType"]
    return primary + "(" + ",".join(f"{m['type']} {m['name']}" for m in members()) + ")"


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    d = dict(spec()["eip712"]["domain"])
    d["chainId"] = int(chain_id)
    d["verifyingContract"] = to_checksum_address(verifying_contract)
    return d


def message_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The EIP-712 message (member names) of a wire document; readingsRoot as bytes."""
    out = {}
    for m in members():
        v = doc[m["name"]]
        out[m["name"]] = bytes.fromhex(v[2:]) if m["type"] == "bytes32" else v
    return out


def typed_data(doc: dict[str, Any], chain_id: int | None = None,
               verifying_contract: str | None = None) -> dict[str, Any]:
    """Full EIP-712 message for eth-account (domain from the document unless given)."""
    e = spec()["eip712"]
    return {
        "types": e["types"],
        "primaryType": e["primaryType"],
        "domain": domain(doc["chainId"] if chain_id is None else chain_id,
                         doc["verifyingContract"] if verifying_contract is None
                         else verifying_contract),
        "message": message_of(doc),
    }


def digest(doc: dict[str, Any], chain_id: int | None = None,
           verifying_contract: str | None = None) -> bytes:
    """The 32 bytes the device signs (keccak256(0x1901 || domainSeparator || hashStruct))."""
    return _hash_eip191_message(encode_typed_data(
        full_message=typed_data(doc, chain_id, verifying_contract)))


def meter_key(meter_id: str) -> bytes:
    """bytes32 meterId of the ABI form / MeterRegistry: keccak256 of the meter id's UTF-8."""
    return keccak(meter_id.encode("utf-8"))


class BadSignature(ValueError):
    pass


def split_signature(sig_hex: str) -> tuple[int, int, int]:
    """(r, s, v) of a 0x r||s||v signature, refusing what AttestationVerifier refuses."""
    if not isinstance(sig_hex, str) or not _SIG.search(sig_hex):
        raise BadSignature("signature must be 0x followed by 130 lowercase hex digits (r||s||v)")
    raw = bytes.fromhex(sig_hex[2:])
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (27, 28):
        raise BadSignature(f"v must be 27 or 28, got {v}")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise BadSignature("r and s must be in 1..n-1")
    if s > SECP256K1_N // 2:
        raise BadSignature("s is in the upper half of the curve order (malleable signature, EIP-2)")
    return r, s, v


def recover(doc: dict[str, Any], chain_id: int | None = None,
            verifying_contract: str | None = None) -> str:
    """Checksummed address that signed the document (eth-account ecrecover)."""
    r, s, v = split_signature(doc["signature"])
    return Account._recover_hash(digest(doc, chain_id, verifying_contract), vrs=(v, r, s))


def sign(doc: dict[str, Any], private_key: bytes | str) -> str:
    """Signature (0x r||s||v) of a document with eth-account: tests, simulator, vectors."""
    signed = Account.sign_typed_data(private_key, full_message=typed_data(doc))
    return "0x" + (signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big")
                   + bytes([signed.v])).hex()


def abi_tuple(doc: dict[str, Any]) -> tuple:
    """The Attestation struct as AttestationVerifier.submit takes it (bytes32 meterId)."""
    out = []
    for m in members():
        v = doc[m["name"]]
        if m["name"] == "meterId":
            out.append(meter_key(v))
        elif m["type"] == "bytes32":
            out.append(bytes.fromhex(v[2:]))
        else:
            out.append(int(v))
    return tuple(out)


def abi_encoded(doc: dict[str, Any]) -> str:
    """0x abi.encode(Attestation, bytes signature): what an oracle hands to the verifier."""
    from eth_abi import encode

    return "0x" + encode([spec()["abi"]["tuple"], "bytes"],
                         [abi_tuple(doc), bytes.fromhex(doc["signature"][2:])]).hex()


# -- Merkle tree over the batch of readings -----------------------------------------------------
def leaf(reading: dict[str, Any] | str) -> bytes:
    """SHA-256(0x00 || canonical text without sig) of a reading (dict or its canonical text)."""
    text = reading if isinstance(reading, str) else contract.canonical(reading)
    return hashlib.sha256(b"\x00" + text.encode("utf-8")).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash of leaf hashes (left subtree: largest power of two < n)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return _node(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def batch_root(readings: list[dict[str, Any] | str]) -> str:
    return "0x" + merkle_root([leaf(r) for r in readings]).hex()


# -- wire document checks (no key, no database) -------------------------------------------------
def problems(doc: Any) -> list[tuple[list[Any], str]]:
    """Shape problems of a wire document as (loc, message); empty when well formed."""
    if not isinstance(doc, dict):
        return [([], "an attestation must be a JSON object")]
    w = spec()["wire"]
    want = [m["name"] for m in members()] + w["extra_fields"]
    out: list[tuple[list[Any], str]] = []
    for k in sorted(set(doc) - set(want)):
        out.append(([k[:40]], "unknown field"))
    cap = w["server_max_uint"]
    meter_re = contract.schema()["properties"]["meter_id"]["pattern"]
    for m in members():
        name, typ = m["name"], m["type"]
        if name not in doc:
            out.append(([name], "field required"))
            continue
        v = doc[name]
        if typ == "string":
            if not isinstance(v, str) or not contract.matches(meter_re, v):
                out.append(([name], f"must be a meter id matching {meter_re}"))
        elif typ == "bytes32":
            if not isinstance(v, str) or not _HEX32.search(v):
                out.append(([name], "must be 0x followed by 64 lowercase hex digits"))
        elif typ.startswith("uint"):
            bits = int(typ[4:])
            top = min((1 << bits) - 1, cap)
            if type(v) is not int or not 0 <= v <= top:
                out.append(([name], f"must be an integer 0..{top} ({typ})"))
    for name in w["extra_fields"]:
        if name not in doc:
            out.append(([name], "field required"))
    cid = doc.get("chainId")
    if "chainId" in doc and (type(cid) is not int or not 0 < cid <= cap):
        out.append((["chainId"], f"must be an integer 1..{cap}"))
    vc = doc.get("verifyingContract")
    if "verifyingContract" in doc and (not isinstance(vc, str) or not _ADDR.search(vc)):
        out.append((["verifyingContract"], "must be a 0x-prefixed 20-byte hex address"))
    if "signature" in doc:
        try:
            split_signature(doc["signature"])
        except BadSignature as exc:
            out.append((["signature"], str(exc)))
    if not out:
        if doc["intervalEnd"] <= doc["intervalStart"]:
            out.append((["intervalEnd"], "must be after intervalStart"))
        if doc["readingCount"] < 1:
            out.append((["readingCount"], "an attestation covers at least one reading"))
        elif doc["firstReadingSeq"] + doc["readingCount"] - 1 > cap:
            out.append((["readingCount"], "reading seq range exceeds the integer limit"))
    return out


# -- test vectors -------------------------------------------------------------------------------
VECTOR_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
VECTOR_DOMAIN = (31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def build_vectors() -> dict[str, Any]:
    readings = [c["canonical"] for c in contract.vectors()["cases"]]
    merkle = []
    for n in (1, 2, 3, 5, 7):
        # the reading vectors' canonical texts, then copies under other meter ids
        texts = [readings[i % len(readings)].replace('"meter-01"', f'"meter-{i:02d}"')
                 if i >= len(readings) else readings[i] for i in range(n)]
        merkle.append({"texts": texts, "leaves": ["0x" + leaf(t).hex() for t in texts],
                       "root": batch_root(texts)})
    acct = Account.from_key(VECTOR_KEY)
    cases = []
    base = {"meterId": "meter-01", "seq": 1, "intervalStart": 1722000600, "intervalEnd": 1722001500,
            "exportMj": 1234567890, "importMj": 45000, "firstReadingSeq": 42, "readingCount": 3,
            "readingsRoot": merkle[2]["root"]}
    variants = [
        ("first attestation", {}),
        ("next interval", {"seq": 2, "intervalStart": 1722001500, "intervalEnd": 1722002400,
                           "exportMj": 1236000000, "firstReadingSeq": 45, "readingCount": 5,
                           "readingsRoot": merkle[3]["root"]}),
        ("largest uint64 counters", {"seq": 2**64 - 1, "exportMj": 2**64 - 1,
                                      "importMj": 2**64 - 1, "readingCount": 2**32 - 1}),
    ]
    for name, change in variants:
        doc = dict(base, **change)
        doc["chainId"], doc["verifyingContract"] = VECTOR_DOMAIN
        doc["signature"] = sign(doc, VECTOR_KEY)
        td = encode_typed_data(full_message=typed_data(doc))
        cases.append({
            "name": name,
            "wire": doc,
            "struct_hash": "0x" + td.body.hex(),
            "digest": "0x" + digest(doc).hex(),
            "abi_encoded": abi_encoded(doc),
        })
    td0 = encode_typed_data(full_message=typed_data(cases[0]["wire"]))
    return {
        "description": "Test vectors for contract/attestation.json, made with eth-account "
                       "(python -m omd_server.attestation vectors). Firmware (CPython and the "
                       "MicroPython unix port), server and the Solidity tests reproduce them.",
        "private_key": VECTOR_KEY,
        "address": acct.address,
        "domain": domain(*VECTOR_DOMAIN),
        "type_string": type_string(),
        "type_hash": "0x" + keccak(type_string().encode()).hex(),
        "domain_separator": "0x" + td0.header.hex(),
        "meter_key": "0x" + meter_key("meter-01").hex(),
        "cases": cases,
        "merkle": merkle,
    }


def vectors_text() -> str:
    return json.dumps(build_vectors(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m omd_server.attestation")
    ap.add_argument("what", choices=["vectors"])
    ap.add_argument("--check", action="store_true", help="fail if the committed file differs")
    a = ap.parse_args(argv)
    path = contract.contract_dir() / VECTORS
    text = vectors_text()
    if a.check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run python -m omd_server.attestation vectors", file=sys.stderr)
            return 1
        return 0
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
