"""Ingest semantics on both storage backends (SQLite file and a real PostgreSQL server)."""

import pytest
from omd_server import contract
from omd_server_testlib import iso_now, reading


@pytest.fixture
def hb(harness_factory, database_url):
    h = harness_factory(database_url=database_url)
    assert h.storage.backend == database_url.split(":")[0]
    return h


def test_signed_reading_stored_then_duplicate_then_replay(hb):
    key = hb.provision()
    r = reading(seq=5, key=key)
    res = hb.post(r)
    assert res.status_code == 201, res.text
    assert res.json() == {"meter_id": "meter-01", "seq": 5, "status": "stored"}
    # identical re-send (lost ack): acknowledged, not stored twice
    res = hb.post(r)
    assert res.status_code == 200 and res.json()["status"] == "duplicate"
    assert hb.storage.count() == 1
    # same seq, other content: replay
    res = hb.post(reading(seq=5, key=key, watts=880.0))
    assert res.status_code == 409
    assert res.json()["detail"][0]["loc"] == ["body", "seq"]
    # lower seq never stored: replay too (seq only increases)
    res = hb.post(reading(seq=4, key=key))
    assert res.status_code == 409
    assert "not greater" in res.json()["detail"][0]["msg"]
    assert hb.storage.count() == 1
    assert hb.post(reading(seq=6, key=key)).status_code == 201
    latest = hb.client.get("/api/v1/meters/meter-01/latest").json()
    assert latest["seq"] == 6 and latest["sig"]


def test_forged_and_unknown_and_unsigned_rejected(hb, caplog):
    key = hb.provision()
    forged = reading(seq=1, key=key)
    forged["watts"] = 905.0
    res = hb.post(forged)
    assert res.status_code == 401
    assert res.json()["detail"][0]["loc"] == ["body", "sig"]
    other = reading(seq=1, key="11" * 32)
    assert hb.post(other).status_code == 401
    unknown = reading(meter_id="meter-99", seq=1, key=key)
    res = hb.post(unknown)
    assert res.status_code == 401 and "unknown meter" in res.text
    unsigned = reading(seq=1)
    res = hb.post(unsigned)
    assert res.status_code == 401 and "allow_unsigned" in res.text
    seed = {"voltage": 220.0, "current": 1.5, "watts": 330.0, "timestamp": "2024-07-26T10:30:00"}
    assert hb.post(seed).status_code == 401
    assert hb.storage.count() == 0
    assert any("rejected" in rec.getMessage() for rec in caplog.records
               if rec.name == "omd_server.auth")


def test_seed_shape_accepted_only_with_allow_unsigned(harness_factory, database_url):
    h = harness_factory(database_url=database_url, allow_unsigned=True)
    seed = {"voltage": 220.0, "current": 1.5, "watts": 330.0, "timestamp": "2024-07-26T10:30:00"}
    res = h.post(seed)
    assert res.status_code == 201, res.text
    assert res.json()["meter_id"] == "seed"
    assert h.post(seed).json()["status"] == "duplicate"
    assert h.post(dict(seed, watts=329.0)).status_code == 409
    assert h.storage.count() == 1
    stored = h.client.get("/api/v1/meters/seed/latest").json()
    assert stored["timestamp"] == "2024-07-26T10:30:00" and stored["watts"] == 330.0
    # a provisioned meter must still sign, even when unsigned readings are allowed
    h.provision("meter-01")
    res = h.post(reading(seq=1))
    assert res.status_code == 401 and "must be signed" in res.text


@pytest.mark.parametrize("change, loc, needle", [
    ({"voltage": "230"}, ["body", "voltage"], "not of type"),
    ({"voltage": 600.0}, ["body", "voltage"], "maximum"),
    ({"current": -1.0}, ["body", "current"], "minimum"),
    ({"watts": 2000.0}, ["body", "watts"], "voltage*current*pf"),
    ({"watts": 2000.0, "pf": None}, ["body", "watts"], "exceeds voltage*current"),
    ({"timestamp": "2024-02-30T10:00:00Z"}, ["body", "timestamp"], "not a valid date"),
    ({"timestamp": "yesterday"}, ["body", "timestamp"], "does not match"),
    ({"timestamp": "future"}, ["body", "timestamp"], "ahead of the server clock"),
    ({"timestamp": "1970-01-01T00:00:10Z"}, ["body", "timestamp"], "clock is probably not set"),
    ({"meter_id": "Bad Id"}, ["body", "meter_id"], "does not match"),
    ({"colour": "red"}, ["body", "colour"], "unknown field"),
    ({"seq": -1}, ["body", "seq"], "minimum"),
])
def test_validation_errors_say_what_and_where(hb, change, loc, needle):
    key = hb.provision()
    change = dict(change)
    if change.get("timestamp") == "future":
        change["timestamp"] = iso_now(3600)
    refused(hb, key, reading(**({"seq": 1} | change)), loc, needle)


def refused(hb, key, r, loc, needle):
    """r, signed if it can be, gets a 422 naming loc with needle, and nothing is stored."""
    try:
        r["sig"] = contract.sign(key, r)
    except ValueError:  # wrong types cannot be canonicalised; validation must still answer 422
        r["sig"] = "0" * 64
    res = hb.post(r)
    assert res.status_code == 422, res.text
    detail = res.json()["detail"]
    assert any(d["loc"] == loc and needle in d["msg"] for d in detail), detail
    assert hb.storage.count() == 0


def test_missing_required_field_points_at_it(hb):
    r = reading(seq=1)
    del r["watts"]
    res = hb.post(r)
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"] == ["body", "watts"]


def test_bad_json_and_large_body(h):
    res = h.client.post("/api/v1/readings", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert res.status_code == 400 and "invalid JSON" in res.text
    res = h.client.post("/api/v1/readings", content=b'{"watts": NaN}')
    assert res.status_code == 400
    res = h.client.post("/api/v1/readings", content=b"x" * (h.cfg.max_body_bytes + 1))
    assert res.status_code == 413
    res = h.client.post("/api/v1/readings", json=[1, 2])
    assert res.status_code == 422


def test_batch_is_atomic(hb):
    key = hb.provision()
    good = [reading(seq=s, key=key) for s in range(1, 6)]
    bad = reading(seq=6, key=key, voltage=900.0)
    res = hb.post(good + [bad], batch=True)
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"][:3] == ["body", "readings", 5]
    assert hb.storage.count() == 0
    # a replay in the middle of a batch also stores nothing
    assert hb.post(good[2]).status_code == 201
    res = hb.post(good, batch=True)
    assert res.status_code == 409
    assert res.json()["detail"][0]["loc"] == ["body", "readings", 0, "seq"]
    assert hb.storage.count() == 1
    # store-and-forward replay of what follows: newer seqs stored, resent one is a duplicate
    res = hb.post(good[2:], batch=True)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["stored"] == 2 and body["duplicates"] == 1
    assert [x["status"] for x in body["results"]] == ["duplicate", "stored", "stored"]
    assert hb.storage.count() == 3
    res = hb.post([reading(seq=s, key=key) for s in range(10, 10 + hb.cfg.max_batch + 1)], batch=True)
    assert res.status_code == 413


def test_energy_counters_and_decimals_survive_storage(hb):
    key = hb.provision()
    vec = contract.vectors()["cases"][1]["reading"]
    r = dict(vec, timestamp=iso_now(-10))
    r["sig"] = contract.sign(key, r)
    assert hb.post(r).status_code == 201
    got = hb.client.get("/api/v1/meters/meter-01/latest").json()
    for k, v in r.items():
        assert got[k] == v
    # what was stored still verifies: the record is evidence, not a re-typed copy
    stored = {k: got[k] for k in contract.fields() if k in got}
    assert contract.verify(key, stored)


V2 = {"schema_version": 2, "solar_current": 10.5, "solar_watts": 2403.88, "solar_pf": 0.99,
      "solar_energy_export_wh": 45678.901, "solar_energy_import_wh": 12.345}


def test_both_reading_versions_are_stored_side_by_side(hb):
    """The transition: version 1 readings (one point) and version 2 (grid + solar) from the
    same meter, in one batch and one by one; both stored, the v2 fields kept exactly."""
    key = hb.provision()
    v1 = [reading(seq=1, key=key), reading(seq=2, key=key)]
    v2 = [reading(seq=3, key=key, **V2), reading(seq=4, key=key, **(V2 | {"solar_watts": 2395.0,
                                                                         "solar_pf": 0.986}))]
    res = hb.post(v1 + v2[:1], batch=True)
    assert res.status_code == 200, res.text
    assert hb.post(v2[1]).status_code == 201
    assert hb.post(reading(seq=5, key=key)).status_code == 201  # and back to v1
    assert hb.storage.count() == 5
    latest = hb.client.get("/api/v1/meters/meter-01/latest").json()
    assert latest["seq"] == 5 and "solar_watts" not in latest
    pts = hb.client.get("/api/v1/meters/meter-01/readings?start=0&limit=10").json()["points"]
    by_seq = {p["seq"]: p for p in pts}
    assert by_seq[4]["solar_watts"] == 2395.0 and by_seq[4]["schema_version"] == 2
    assert by_seq[3]["solar_energy_export_wh"] == 45678.901
    assert "schema_version" not in by_seq[1] and "solar_watts" not in by_seq[2]


@pytest.mark.parametrize("change, loc, needle", [
    # a v2 field in a reading that does not say version 2
    ({"schema_version": None}, ["body", "schema_version"], "needs 'schema_version'"),
    # version 2 without its channel
    ({"solar_watts": None}, ["body", "solar_watts"], "needs 'solar_watts'"),
    ({"schema_version": 3}, ["body", "schema_version"], "maximum"),
    ({"schema_version": 1}, ["body", "schema_version"], "minimum"),
    ({"solar_watts": 60000.0}, ["body", "solar_watts"], "maximum"),
    ({"solar_pf": 1.5}, ["body", "solar_pf"], "maximum"),
    ({"solar_energy_export_wh": 1.2345}, ["body", "solar_energy_export_wh"], "decimals"),
    ({"solar_watts": 900.0}, ["body", "solar_watts"], "voltage*solar_current*solar_pf"),
])
def test_bad_v2_readings_get_a_clear_422_and_nothing_is_stored(hb, change, loc, needle):
    key = hb.provision()
    refused(hb, key, reading(seq=1, **(V2 | change)), loc, needle)
    # the same meter's good reading right after: nothing lost, nothing blocked
    assert hb.post(reading(seq=1, key=key, **V2)).status_code == 201


def test_solar_counter_jump_is_implausible(hb):
    key = hb.provision()
    assert hb.post(reading(seq=1, key=key, timestamp=iso_now(-120), **V2)).status_code == 201
    jump = V2 | {"solar_energy_export_wh": V2["solar_energy_export_wh"] + 5000.0}
    res = hb.post(reading(seq=2, key=key, timestamp=iso_now(-60), **jump))
    assert res.status_code == 422, res.text
    assert res.json()["detail"][0]["loc"] == ["body", "solar_energy_export_wh"]
