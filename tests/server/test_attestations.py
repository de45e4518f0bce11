"""The attestation routes on both storage backends, against a real anvil chain holding the
registry: store, duplicate, replay, the batch read with its Merkle check, and hostile input
that must get a clear 4xx (never a 5xx)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omd_server import attestation as ref
from omd_server import contract

from openmetering import chain

ROOT = Path(__file__).resolve().parents[2]
VEC = json.loads((ROOT / "contract" / "attestation-vectors.json").read_text())


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    chain.build()
    with chain.Anvil() as anvil:
        dep = chain.deploy(anvil.url, tmp / "deployment.json")
        chain.register(dep, "meter-01", VEC["address"])
        yield tmp / "deployment.json", dep


def _doc(dep, seq=1, first=1, count=3, **over):
    w = dict(VEC["cases"][0]["wire"], seq=seq, firstReadingSeq=first, readingCount=count,
             chainId=dep["chain_id"],
             verifyingContract=dep["contracts"]["AttestationVerifier"]["address"])
    w.update(over)
    w["signature"] = ref.sign(w, VEC["private_key"])
    return w


@pytest.fixture
def api(harness_factory, database_url, deployed):
    path, dep = deployed
    h = harness_factory(database_url=database_url, deployment_file=str(path))
    return h, dep


def test_store_duplicate_replay_and_batch(api):
    h, dep = api
    key = h.provision("meter-01")
    from omd_server_testlib import reading

    rs = [reading("meter-01", seq=s, key=key) for s in (1, 2, 3)]
    assert h.post(rs, batch=True).status_code == 200
    root = ref.batch_root([contract.canonical(r) for r in rs])
    doc = _doc(dep, readingsRoot=root)
    r = h.client.post("/api/v1/attestations", json=doc)
    assert r.status_code == 201, r.text
    assert r.json()["digest"] == "0x" + ref.digest(doc).hex()
    assert h.client.post("/api/v1/attestations", json=doc).status_code == 200
    other = _doc(dep, readingsRoot=root, exportMj=doc["exportMj"] + 1)
    r = h.client.post("/api/v1/attestations", json=other)
    assert r.status_code == 409 and r.json()["detail"][0]["loc"] == ["body", "seq"]

    got = h.client.get("/api/v1/meters/meter-01/attestations/1").json()
    b = got["batch"]
    assert b["complete"] and b["root_matches"] and b["stored_text_intact"]
    assert b["root"] == root and len(b["readings"]) == 3 and b["readings"][0]["sig"] == rs[0]["sig"]
    assert got["abi_encoded"] == ref.abi_encoded(doc)
    # anyone can redo it from the answer alone
    assert ref.merkle_root([bytes.fromhex(x[2:]) for x in b["leaves"]]).hex() == root[2:]
    assert ref.batch_root([contract.canonical(r) for r in b["readings"]]) == root
    # a batch that is not all there says so
    doc2 = _doc(dep, seq=2, first=3, count=2, readingsRoot=root)
    assert h.client.post("/api/v1/attestations", json=doc2).status_code == 201
    b2 = h.client.get("/api/v1/meters/meter-01/attestations/2").json()["batch"]
    assert not b2["complete"] and not b2["root_matches"] and b2["found"] == 1
    listing = h.client.get("/api/v1/meters/meter-01/attestations?after_seq=1").json()
    assert [x["attestation"]["seq"] for x in listing["attestations"]] == [2]
    assert h.client.get("/api/v1/meters/meter-01/attestations/9").status_code == 404


def test_refusals_are_clear_4xx(api):
    h, dep = api
    c = h.client
    good = _doc(dep)
    cases = [
        (dict(good, chainId=5), 422, ["body", "chainId"]),
        (dict(good, verifyingContract="0x" + "11" * 20), 422, ["body", "verifyingContract"]),
        (dict(good, exportMj=good["exportMj"] + 1), 401, ["body", "signature"]),
        (_doc(dep, meterId="meter-99"), 401, ["body", "meterId"]),
        (dict(good, seq=2**63), 422, ["body", "seq"]),
        (dict(good, seq=-1), 422, ["body", "seq"]),
        (dict(good, seq=True), 422, ["body", "seq"]),
        (dict(good, seq="1"), 422, ["body", "seq"]),
        (dict(good, readingCount=2**32), 422, ["body", "readingCount"]),
        (dict(good, readingsRoot="0x" + "AB" * 32), 422, ["body", "readingsRoot"]),
        (dict(good, meterId="Meter 1"), 422, ["body", "meterId"]),
        (dict(good, signature=good["signature"][:-2] + "00"), 422, ["body", "signature"]),
        (dict(good, signature=good["signature"][:-2] + "01"), 422, ["body", "signature"]),
        (dict(good, signature=good["signature"][:130]), 422, ["body", "signature"]),
        (dict(good, intervalEnd=good["intervalStart"]), 422, ["body", "intervalEnd"]),
        (dict(good, extra=1), 422, ["body", "extra"]),
        ({k: v for k, v in good.items() if k != "importMj"}, 422, ["body", "importMj"]),
        ([good], 422, ["body"]),
    ]
    for doc, code, loc in cases:
        r = c.post("/api/v1/attestations", json=doc)
        assert r.status_code == code, (doc, r.text)
        assert r.json()["detail"][0]["loc"] == loc, r.text
    # r that is no x-coordinate on the curve: no key recovers
    bad_r = "0x" + "00" * 31 + "05" + good["signature"][66:]
    r = c.post("/api/v1/attestations", json=dict(good, signature=bad_r))
    assert r.status_code in (401, 422), r.text
    assert c.post("/api/v1/attestations", content=b"[1,").status_code == 400
    assert c.post("/api/v1/attestations", content=b"x" * (h.cfg.max_body_bytes + 1)).status_code == 413
    assert c.get("/api/v1/meters/NOPE/attestations/1").status_code == 422
    assert c.get(f"/api/v1/meters/meter-01/attestations/{2**64}").status_code == 422


def test_chain_down_means_retry(harness_factory, deployed, tmp_path):
    path, dep = deployed
    dead = dict(dep, rpc_url=f"http://127.0.0.1:{chain.free_port()}")
    p = tmp_path / "dead.json"
    p.write_text(json.dumps(dead))
    h = harness_factory(deployment_file=str(p))
    r = h.client.post("/api/v1/attestations", json=_doc(dep))
    assert r.status_code == 503 and r.headers["retry-after"]
    h2 = harness_factory()  # no deployment configured at all
    assert h2.client.post("/api/v1/attestations", json=_doc(dep)).status_code == 503


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=20), kids, max_size=5),
    max_leaves=12)


@pytest.fixture(scope="module")
def hostile_harness(deployed, tmp_path_factory):
    from fastapi.testclient import TestClient
    from omd_server.app import create_app
    from omd_server.config import Config

    path, dep = deployed
    tmp = tmp_path_factory.mktemp("hostile")
    app = create_app(Config(database_url=f"sqlite:///{tmp}/omd.db", image_dir=str(tmp / "img"),
                            deployment_file=str(path)))
    with TestClient(app) as client:
        yield client, dep


def _stored(client) -> list:
    return client.get("/api/v1/meters/meter-01/attestations?limit=1000").json()["attestations"]


@settings(max_examples=60, deadline=None)
@given(mutation=st.dictionaries(st.sampled_from(list(VEC["cases"][0]["wire"]) + ["x"]), json_values,
                                min_size=1, max_size=3))
def test_hostile_documents_never_5xx(hostile_harness, mutation):
    client, dep = hostile_harness
    doc = dict(_doc(dep), **mutation)
    before = _stored(client)
    r = client.post("/api/v1/attestations", json=doc)
    assert r.status_code in (200, 201, 401, 409, 422), r.text
    if r.status_code >= 400:
        assert r.json()["detail"][0]["loc"][0] == "body", r.text
        assert _stored(client) == before  # a refused attestation stores nothing


def test_trailing_newline_and_case_refused(api):
    """Patterns have their JSON Schema meaning: "$" is the end of the text."""
    h, dep = api
    good = _doc(dep)
    for member, value in [("signature", good["signature"] + "\n"),
                          ("readingsRoot", good["readingsRoot"] + "\n"),
                          ("verifyingContract", good["verifyingContract"] + "\n"),
                          ("meterId", good["meterId"] + "\n")]:
        r = h.client.post("/api/v1/attestations", json=dict(good, **{member: value}))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", member], r.text
    assert _stored(h.client) == []


def test_seq_range_at_the_integer_limit_reads_back(api):
    """A batch that ends at the largest seq the databases hold: the read side must not
    overflow computing one past it."""
    h, dep = api
    cap = ref.spec()["wire"]["server_max_uint"]
    doc = _doc(dep, seq=cap, first=cap - 1, count=2)
    r = h.client.post("/api/v1/attestations", json=doc)
    assert r.status_code == 201, r.text
    r = h.client.get(f"/api/v1/meters/meter-01/attestations/{cap}")
    assert r.status_code == 200, r.text
    assert r.json()["batch"]["found"] == 0 and not r.json()["batch"]["root_matches"]


def test_racing_identical_posts_are_one_stored_rest_duplicates(api):
    """Concurrent copies of one attestation (a meter retrying after a timeout): one 201, the
    others 200, never an integrity error; a racing different one is 409."""
    from concurrent.futures import ThreadPoolExecutor

    h, dep = api
    doc = _doc(dep, seq=7)
    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(lambda _: h.client.post("/api/v1/attestations",
                                                        json=doc).status_code, range(6)))
    assert codes == [200] * 5 + [201], codes
    other = _doc(dep, seq=7, exportMj=doc["exportMj"] + 1)
    assert h.client.post("/api/v1/attestations", json=other).status_code == 409
    assert [a["attestation"] for a in _stored(h.client)] == [doc]
