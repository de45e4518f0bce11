"""The server's routes, header names and status codes are the ones in contract/transport.json."""

import json
import re
from pathlib import Path

from omd_server import app as app_module
from omd_server import contract

T = contract.transport()
OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "server" / "openapi.json").read_text())


def test_routes_come_from_the_contract():
    for kind in ("reading", "batch", "image"):
        op = OPENAPI["paths"][T[kind]["path"]][T[kind]["method"].lower()]
        assert T[kind]["content_type"] in op["requestBody"]["content"]
    img = OPENAPI["paths"][T["image"]["path"]]["post"]
    names = {p["name"] for p in img["parameters"] if p["in"] == "header"}
    assert names == {T["image"]["signature_header"], T["image"]["sha256_header"]}


def test_image_signature_vector():
    v = T["image"]["vector"]
    assert v["key_hex"] == contract.vectors()["key_hex"]
    msg = contract.image_message(v["meter_id"], v["image_sha256"])
    assert contract.canonical(msg) == v["canonical"]
    assert contract.sign_image(v["key_hex"], v["meter_id"], v["image_sha256"]) == v["signature"]


def test_every_status_the_ingest_side_answers_is_in_the_contract():
    src = Path(app_module.__file__).read_text()
    used = {int(c) for c in re.findall(r"_err\((\d{3})", src)} | {200, 201, 503}
    assert used <= {int(c) for c in T["status"]}, used
    actions = {s["device"] for s in T["status"].values()}
    assert actions <= set(T["device_actions"])


def test_statuses_over_http(h):
    key = h.provision("meter-01")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from omd_server_testlib import reading

    r1 = reading("meter-01", 1, key)
    assert h.client.post(T["reading"]["path"], json=r1).status_code == 201
    assert h.client.post(T["reading"]["path"], json=r1).status_code == 200
    r1b = reading("meter-01", 1, key, watts=905.0)
    assert h.client.post(T["reading"]["path"], json=r1b).status_code == 409
    batch = {T["batch"]["field"]: [r1, reading("meter-01", 2, key)]}
    res = h.client.post(T["batch"]["path"], json=batch)
    assert res.status_code == 200 and [x["status"] for x in res.json()["results"]] == [
        "duplicate", "stored"]
    bad = dict(reading("meter-01", 3, key), watts=901.0)
    assert h.client.post(T["reading"]["path"], json=bad).status_code == 401
    res = h.client.post(T["batch"]["path"], json={T["batch"]["field"]: [
        reading("meter-01", 3, key), r1b]})
    assert res.status_code == 409 and res.json()["detail"][0]["loc"] == [
        "body", T["batch"]["field"], 1, "seq"]
