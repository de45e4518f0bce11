"""Transport from contract/transport.json: URLs, image signature, batch replay, status handling."""

import json
import sys
from pathlib import Path

import config
import main
import pytest
import spool
import transport

import contract

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrap_scenario as ws  # noqa: E402
from test_store_forward import KEY_HEX, Server, make_app, run_interval  # noqa: E402


def test_urls_and_headers_come_from_the_contract(ct):
    t = ct.transport
    tp = transport.Transport(t, "http://10.0.0.5:8080/api/readings", "meter-07")  # old config
    assert tp.reading_url == "http://10.0.0.5:8080" + t["reading"]["path"]
    assert tp.batch_url == "http://10.0.0.5:8080" + t["batch"]["path"]
    assert tp.image_url == "http://10.0.0.5:8080" + t["image"]["path"].replace(
        "{meter_id}", "meter-07")
    assert set(tp.image_headers(ct, b"k", "ab" * 32)) == {
        t["image"]["signature_header"], t["image"]["sha256_header"]}
    assert json.loads(tp.batch_body([b'{"a":1}', b'{"b":2}'])) == {
        t["batch"]["field"]: [{"a": 1}, {"b": 2}]}


def test_every_status_has_a_known_device_action(ct):
    tp = transport.Transport(ct.transport, "http://h", "m")
    known = {transport.DELIVERED, transport.REJECTED, transport.RETRY, transport.SPLIT}
    assert set(tp.actions.values()) <= known
    assert set(ct.transport["device_actions"]) == known
    assert tp.action(201) == tp.action(200) == transport.DELIVERED
    assert tp.action(409) == transport.REJECTED
    for code in (-1, 500, 502, 503, 401):
        assert tp.action(code) == transport.RETRY


def test_image_signature_vector(ct):
    v = ct.transport["image"]["vector"]
    tp = transport.Transport(ct.transport, "http://h", v["meter_id"])
    assert contract.sha256_hex(bytes.fromhex(v["body_hex"])) == v["image_sha256"]
    doc = {k: v[k] for k in ct.transport["image"]["signed_fields"]}
    assert ct.canonical(doc) == v["canonical"]
    assert tp.image_signature(ct, bytes.fromhex(v["key_hex"]), v["image_sha256"]) == v["signature"]


def offline_backlog(tmp_path, ct, schema, n):
    server = Server(ct, schema)
    clock = ws.WrapClock(0)
    app = make_app(tmp_path, ct, server, clock)
    server.up = False
    for _ in range(n):
        run_interval(app, clock)
        app.pump()
    server.up = True
    return app, server, clock


def drain(app, clock, limit=1000):
    for _ in range(limit):
        if not app.spool.pending():
            return
        clock.advance(130_000)  # past any backoff
        app.pump()
    raise AssertionError("queue never drained")


def test_backlog_goes_in_batches(tmp_path, ct, schema):
    app, server, clock = offline_backlog(tmp_path, ct, schema, 230)
    calls = server.calls
    drain(app, clock)
    assert server.order == list(range(1, 231))
    assert server.batches == 5 and server.calls - calls == 5  # 50 per request, not 230


def test_duplicates_are_delivered_and_conflicts_dropped_without_looping(tmp_path, ct, schema):
    app, server, clock = offline_backlog(tmp_path, ct, schema, 120)
    # the server already has 1..10 (sent before a power cut ate the acks) ...
    for rec in app.spool.peek(10):
        server(app.tp.reading_url, app._body(rec))
    # ... and seq 15 with different content (e.g. a restored flash image re-measured it)
    rec15 = list(app.spool.peek(15)[-1])
    rec15[4] += 100  # watts
    other = ct.canonical(spool.unpack(ct, tuple(rec15), app.cfg["meter_id"], main.FW))
    server.stored[15] = other
    logged = []
    app.log = logged.append
    drain(app, clock, limit=50)  # bounded: a 409 must not loop
    assert app.spool.pending() == 0
    assert server.order == [s for s in range(1, 121) if s != 15]  # every other seq once, in order
    assert server.stored[15] == other and server.duplicates == 10
    assert app.rejected == 1 and "seq 15" in logged[0]


@pytest.mark.parametrize("status", [503, 500, 401, -1])
def test_server_errors_keep_everything_and_back_off(tmp_path, ct, schema, status):
    app, server, clock = offline_backlog(tmp_path, ct, schema, 60)
    server.status = status
    calls = server.calls
    for _ in range(600):  # 10 min of 1 s loop passes
        clock.advance(1000)
        app.pump()
    assert app.spool.pending() == 60 and app.rejected == 0
    assert server.calls - calls <= 10  # 2, 4, 8, ... 120 s apart, not every pass
    server.status = None
    drain(app, clock)
    assert server.order == list(range(1, 61))


def test_413_halves_the_batch(tmp_path, ct, schema):
    app, server, clock = offline_backlog(tmp_path, ct, schema, 60)
    orig = Server.__call__

    def limited(self, url, body, ctype="application/json", headers=None):
        if url.endswith(self.t["batch"]["path"]) and len(json.loads(body)["readings"]) > 20:
            return 413
        return orig(self, url, body, ctype, headers)

    server.__class__ = type("Limited", (Server,), {"__call__": limited})
    drain(app, clock)
    assert server.order == list(range(1, 61)) and app.batch <= 20


def test_evidence_upload_is_signed_per_contract(tmp_path, ct, schema):
    import evidence

    got = []

    def http(url, body, ctype="application/json", headers=None):
        got.append((url, body, ctype, headers))
        return 201

    class Cam:
        def capture(self):
            return b"\xff\xd8\xff\xe0jpeg"

    ev = evidence.Evidence(Cam(), None, 3600, lambda: 0)
    app = ws.make_app(main, config, str(tmp_path / "d2"), ws.WrapClock(0), http, 100.0, ct=ct,
                      evidence=ev)
    app.pump()
    url, body, ctype, headers = got[0]
    img = ct.transport["image"]
    sha = contract.sha256_hex(body)
    assert url == app.tp.image_url and ctype == img["content_type"]
    doc = {"image_sha256": sha, "meter_id": app.cfg["meter_id"]}
    assert headers[img["signature_header"]] == contract.hmac_sha256_hex(
        bytes.fromhex(KEY_HEX), ct.canonical(doc).encode())
    assert ev.take_sha() == sha


def test_bundle_carries_transport(tmp_path):
    from firmware.tools import bundle

    files = {p.name for p in bundle.build(tmp_path / "b")}
    assert {"transport.json", "reading.schema.json", "homeassistant.json", "transport.py"} <= files
    assert spool.SIZE  # spool module untouched by the transport
