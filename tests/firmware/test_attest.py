"""Device-signed attestations in the firmware: Keccak-256, secp256k1/RFC 6979, EIP-712, the
Merkle tree, the Attestor at interval close, the App hook and store-and-forward, on CPython
against eth-account, and the same modules on the MicroPython unix port."""

import json
import os
import subprocess
import sys
from pathlib import Path

import attest
import eip712
import keccak
import pytest
import secp256k1
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_hash.auto import keccak as ref_keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from omd_server import attestation as ref

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = Path(sys.executable).parent / "micropython"
SPEC = json.loads((ROOT / "contract" / "attestation.json").read_text())
VEC = json.loads((ROOT / "contract" / "attestation-vectors.json").read_text())


def _rec(w):
    return (w["seq"], w["intervalStart"], w["intervalEnd"], w["exportMj"], w["importMj"],
            w["firstReadingSeq"], w["readingCount"], bytes.fromhex(w["readingsRoot"][2:]))


def _attestor(tmp_path, key, domain=None, period=900, name="a"):
    w = VEC["cases"][0]["wire"]
    domain = domain or {"chainId": w["chainId"], "verifyingContract": w["verifyingContract"]}
    return attest.Attestor(SPEC, domain, "meter-01", key, str(tmp_path / name), period,
                           log=lambda *a: None)


@pytest.mark.parametrize("n", [0, 1, 55, 135, 136, 137, 271, 272, 1000])
def test_keccak_matches_reference(n):
    data = bytes((i * 7 + n) & 0xFF for i in range(n))
    assert keccak.keccak256(data) == ref_keccak(data)


def test_vectors_on_cpython(tmp_path):
    d = int(VEC["private_key"], 16)
    assert secp256k1.checksum_address(secp256k1.address(d)) == VEC["address"]
    assert eip712.encode_type(SPEC["eip712"]["types"], "Attestation") == VEC["type_string"]
    a = _attestor(tmp_path, d)
    assert "0x" + a.domain_sep.hex() == VEC["domain_separator"]
    for case in VEC["cases"]:
        rec = _rec(case["wire"])
        dg = a.digest(a.message_of(rec))
        assert "0x" + dg.hex() == case["digest"]
        sig = secp256k1.signature_bytes(*secp256k1.sign(d, dg))
        assert "0x" + sig.hex() == case["wire"]["signature"]
    for m in VEC["merkle"]:
        tree = attest.Merkle()
        for t in m["texts"]:
            tree.add(attest.leaf(t.encode()))
        assert "0x" + tree.root().hex() == m["root"]


@settings(max_examples=40, deadline=None)
@given(key=st.integers(1, secp256k1.N - 1), digest=st.binary(min_size=32, max_size=32))
def test_signatures_equal_eth_account(key, digest):
    r, s, v = secp256k1.sign(key, digest)
    ref_sig = Account.unsafe_sign_hash(digest, key.to_bytes(32, "big"))
    assert (r, s, v) == (ref_sig.r, ref_sig.s, ref_sig.v)
    assert s <= secp256k1.N // 2 and v in (27, 28)
    assert secp256k1.address(key).hex() == Account.from_key(key.to_bytes(32, "big")).address[2:].lower()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 40), seed=st.integers(0, 1000))
def test_incremental_merkle_equals_rfc6962(n, seed):
    texts = [f'{{"seq":{seed + i}}}' for i in range(n)]
    tree = attest.Merkle()
    for t in texts:
        tree.add(attest.leaf(t.encode()))
    assert "0x" + tree.root().hex() == ref.batch_root(texts)


@settings(max_examples=20, deadline=None)
@given(exp=st.integers(0, 2**64 - 1), imp=st.integers(0, 2**64 - 1), seq=st.integers(1, 2**64 - 1),
       count=st.integers(1, 2**32 - 1), root=st.binary(min_size=32, max_size=32),
       chain=st.integers(1, 2**63 - 1))
def test_eip712_digest_equals_eth_account(tmp_path_factory, exp, imp, seq, count, root, chain):
    tmp = tmp_path_factory.mktemp("e")
    vc = "0x000000000000000000000000000000000000dEaD"
    a = _attestor(tmp, 1, {"chainId": chain, "verifyingContract": vc})
    rec = (seq, 1722000600, 1722001500, exp, imp, 7, count, root)
    doc = dict(a.message_of(rec), readingsRoot="0x" + root.hex(), chainId=chain,
               verifyingContract=vc)
    want = _hash_eip191_message(encode_typed_data(full_message=ref.typed_data(doc)))
    assert a.digest(a.message_of(rec)) == want


def test_eip712_refuses_out_of_range_and_nested():
    with pytest.raises(ValueError):
        eip712.encode_value("uint64", 2**64)
    with pytest.raises(ValueError):
        eip712.encode_value("uint64", -1)
    with pytest.raises(ValueError):
        eip712.encode_value("address", "0x1234")
    with pytest.raises(ValueError):
        eip712.encode_type({"A": [{"name": "b", "type": "B"}], "B": []}, "A")
    assert eip712.encode_value("int8", -1) == b"\xff" * 32


def test_key_from_hardware_rng_rejects_out_of_range():
    draws = iter([b"\x00" * 32, b"\xff" * 32, (5).to_bytes(32, "big")])
    assert secp256k1.key_from_entropy(lambda n: next(draws)) == 5


def test_provision_creates_key_and_shows_only_the_address(tmp_path, capsys):
    import provision

    path = str(tmp_path / "device.key")
    addr = provision.device_key(path)
    out = capsys.readouterr().out
    d = attest.load_key(path)
    assert addr == Account.from_key(d.to_bytes(32, "big")).address
    assert addr in out
    assert d.to_bytes(32, "big").hex() not in out.lower() and hex(d)[2:] not in out.lower()
    # a second provisioning keeps the key
    assert provision.device_key(path) == addr
    (tmp_path / "device.key").write_bytes(b"\x00" * 32)
    with pytest.raises(ValueError):
        attest.load_key(path)


def test_attestor_intervals_persistence_and_signature(tmp_path):
    key = 0x1234567
    a = _attestor(tmp_path, key)
    t0 = 1_722_000_000 - 1_722_000_000 % 900
    texts = []
    closed = []
    exp = 0
    for k in range(25):  # 60 s readings: 15 per interval
        t = t0 + 60 * k + 5
        exp += 1000 * k
        text = f'{{"meter_id":"meter-01","seq":{k + 1}}}'.encode()
        texts.append(text)
        if k == 7:
            a = _attestor(tmp_path, key)  # reboot mid-interval: the tree comes back from flash
        c = a.add(text, k + 1, t, exp, k)
        if c:
            closed.append(c)
    assert len(closed) == 1
    rec = closed[0]
    seq, start, end, e, i, first, count, root, r, s, v = rec
    assert (seq, start, end, first, count) == (1, t0, t0 + 900, 1, 15)
    assert e == sum(1000 * k for k in range(15)) and i == 14
    assert root.hex() == ref.batch_root([t.decode() for t in texts[:15]])[2:]
    # the spooled record is what goes on the wire, and eth-account recovers the device
    assert a.spool.peek(5) == [rec]
    doc = json.loads(a.body(rec))
    assert ref.recover(doc) == Account.from_key(key.to_bytes(32, "big")).address
    assert ref.problems(doc) == []
    # the open interval continues at 15 readings' worth from seq 16
    assert (a.first, a.count, a.seq) == (16, 10, 1)


def test_attestor_clock_back_and_period_change(tmp_path):
    a = _attestor(tmp_path, 99)
    t0 = 1_722_000_000 - 1_722_000_000 % 900
    a.add(b"1", 1, t0 + 10, 0, 0)
    assert a.add(b"2", 2, t0 - 300, 5, 0) is None  # clock stepped back: stays in the interval
    rec = a.add(b"3", 3, t0 + 900, 9, 0)
    assert rec[:7] == (1, t0, t0 + 900, 5, 0, 1, 2)
    b = attest.Attestor(SPEC, a.domain, "meter-01", 99, str(tmp_path / "a"), 3600)
    rec = b.add(b"4", 4, t0 + 1900, 10, 0)  # restarted with 1 h intervals
    assert rec[:3] == (2, t0 + 900, t0 + 1800)  # the open 15-min interval keeps its end
    assert b.start >= rec[2]  # never overlapping the last one
    with pytest.raises(ValueError):
        attest.Attestor(SPEC, a.domain, "meter-01", 99, str(tmp_path / "x"), 60)


def test_app_hook_and_store_and_forward(tmp_path, ct):
    """The App feeds every spooled reading to the Attestor and sends the attestations after
    the readings, with the readings' status rules (retry keeps, rejected drops); the leaves
    are exactly the readings the server receives."""
    import sys
    from pathlib import Path

    import config
    import main
    from omd_server import contract as server_contract

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import wrap_scenario as ws

    cfg, _ = config.load(str(tmp_path / "none.json"))
    cfg.update(meter_id="meter-01", key_hex="11" * 32, interval_s=60,
               server_url="http://127.0.0.1:9")
    clock = ws.WrapClock(0)
    t_base = 1_722_000_000 - 1_722_000_000 % 900
    answers: list[int] = []
    posted: list[tuple[str, bytes]] = []

    def http(url, body, ctype="application/json", headers=None):
        posted.append((url, body))
        return answers.pop(0) if answers else 201

    w = VEC["cases"][0]["wire"]
    a = attest.Attestor(SPEC, {"chainId": w["chainId"], "verifyingContract": w["verifyingContract"]},
                        "meter-01", 4242, str(tmp_path / "data"), 900)
    app = ws.make_app(main, config, str(tmp_path / "data"), clock, http, 920.0, cfg=cfg, ct=ct,
                      unix=lambda: t_base + clock.t // 1000, log=lambda *x: None, attestor=a)
    for _ in range(16):
        clock.advance(60_000)
        app.step()
    # interval 1 = readings 1..14 (t = 60..840 s), closed when reading 15 (t = 900) arrived
    assert a.spool.pending() == 1
    rec = a.spool.peek(1)[0]
    assert (rec[1], rec[2], rec[5], rec[6]) == (t_base, t_base + 900, 1, 14)
    # readings first (one batch), then the attestation: a 503 keeps it, a 201 delivers it
    answers[:] = [200, 503]
    app.pump(clock())
    assert posted[-1][0].endswith("/api/v1/attestations") and a.spool.pending() == 1
    sent = json.loads(posted[0][1])["readings"]
    texts = [server_contract.canonical(r) for r in sent[:14]]
    assert "0x" + rec[7].hex() == ref.batch_root(texts)
    # the attested energy is the solar production: the same counter, in mWh
    assert rec[3] // 3600 == round(sent[13]["solar_energy_export_wh"] * 1000)
    assert rec[3] > 0 and rec[4] == 0
    answers[:] = [201]
    app.backoff.ok()
    app.pump(clock())
    assert a.spool.pending() == 0
    body = json.loads(posted[-1][1])
    assert body["readingCount"] == 14
    assert ref.recover(body) == Account.from_key((4242).to_bytes(32, "big")).address
    # a 422 drops it (a later attestation's cumulative counter covers its energy)
    for _ in range(15):
        clock.advance(60_000)
        app.step()
    assert a.spool.pending() == 1
    answers[:] = [200, 422]
    app.backoff.ok()
    app.pump(clock())
    assert a.spool.pending() == 0 and app.rejected == 1


MP_SCRIPT = r"""
import sys, json
sys.path.insert(0, FW)
import attest, secp256k1, keccak, eip712
from binascii import hexlify, unhexlify
with open(SPEC) as f:
    spec = json.load(f)
with open(VEC) as f:
    vec = json.load(f)
out = {"impl": sys.implementation.name, "digests": [], "sigs": [], "roots": [], "rand": []}
d = int(vec["private_key"][2:], 16)
out["address"] = secp256k1.checksum_address(secp256k1.address(d))
w0 = vec["cases"][0]["wire"]
a = attest.Attestor(spec, {"chainId": w0["chainId"], "verifyingContract": w0["verifyingContract"]},
                    "meter-01", d, TMP + "/a", 900)
for c in vec["cases"]:
    w = c["wire"]
    rec = (w["seq"], w["intervalStart"], w["intervalEnd"], w["exportMj"], w["importMj"],
           w["firstReadingSeq"], w["readingCount"], unhexlify(w["readingsRoot"][2:]))
    dg = a.digest(a.message_of(rec))
    out["digests"].append("0x" + hexlify(dg).decode())
    out["sigs"].append("0x" + hexlify(secp256k1.signature_bytes(*secp256k1.sign(d, dg))).decode())
for m in vec["merkle"]:
    t = attest.Merkle()
    for x in m["texts"]:
        t.add(attest.leaf(x.encode()))
    out["roots"].append("0x" + hexlify(t.root()).decode())
for k, h in RAND:
    r, s, v = secp256k1.sign(k, unhexlify(h))
    out["rand"].append([r, s, v])
# a whole interval through the Attestor, as at interval close on the device
b = attest.Attestor(spec, {"chainId": 31337, "verifyingContract": w0["verifyingContract"]},
                    "meter-01", d, TMP + "/b", 900)
rec = None
for i in range(20):
    rec = b.add(('{"seq":%d}' % (i + 1)).encode(), i + 1, 1722000600 + 60 * i, 1000 * i, i) or rec
out["closed"] = hexlify(b.body(rec)).decode()
print(json.dumps(out))
"""


def test_same_attestations_on_micropython(tmp_path):
    assert MICROPYTHON.exists()
    rand = [(int.from_bytes(os.urandom(32), "big") % (secp256k1.N - 1) + 1, os.urandom(32).hex())
            for _ in range(3)]
    script = (f"FW={str(ROOT / 'firmware')!r}\nSPEC={str(ROOT / 'contract' / 'attestation.json')!r}\n"
              f"VEC={str(ROOT / 'contract' / 'attestation-vectors.json')!r}\nTMP={str(tmp_path)!r}\n"
              f"RAND={rand!r}\n" + MP_SCRIPT)
    (tmp_path / "run.py").write_text(script)
    p = subprocess.run([str(MICROPYTHON), str(tmp_path / "run.py")], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["impl"] == "micropython"
    assert out["address"] == VEC["address"]
    assert out["digests"] == [c["digest"] for c in VEC["cases"]]
    assert out["sigs"] == [c["wire"]["signature"] for c in VEC["cases"]]
    assert out["roots"] == [m["root"] for m in VEC["merkle"]]
    for (k, h), got in zip(rand, out["rand"], strict=True):
        s = Account.unsafe_sign_hash(bytes.fromhex(h), k.to_bytes(32, "big"))
        assert got == [s.r, s.s, s.v]
    # the interval the unix port closed is byte for byte the one CPython closes
    b = attest.Attestor(SPEC, {"chainId": 31337, "verifyingContract": VEC["cases"][0]["wire"]["verifyingContract"]},
                        "meter-01", int(VEC["private_key"], 16), str(tmp_path / "cp"), 900)
    rec = None
    for i in range(20):
        rec = b.add(f'{{"seq":{i + 1}}}'.encode(), i + 1, 1722000600 + 60 * i, 1000 * i, i) or rec
    mp_doc = json.loads(bytes.fromhex(out["closed"]))
    assert mp_doc == json.loads(b.body(rec))
    assert ref.recover(mp_doc) == VEC["address"]
