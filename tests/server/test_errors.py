"""One error shape everywhere, and a read side that answers valid JSON whatever is stored."""

import json

import pytest
from omd_server_testlib import reading


def _no_constant(c):
    raise AssertionError(f"{c} is not JSON")


def shape_free_json(text: str):
    return json.loads(text, parse_constant=_no_constant)


def shape(res) -> list[dict]:
    body = shape_free_json(res.text)
    assert set(body) == {"detail"} and isinstance(body["detail"], list) and body["detail"]
    for d in body["detail"]:
        assert set(d) == {"loc", "msg", "type"} and isinstance(d["loc"], list)
    return body["detail"]


@pytest.mark.parametrize("method,path,status,loc", [
    ("GET", "/api/v1/nothing-here", 404, []),
    ("DELETE", "/api/v1/readings", 405, []),
    ("GET", "/api/v1/meters/unknown-1/readings", 404, ["path", "meter_id"]),
    ("GET", "/api/v1/meters/unknown-1/latest", 404, ["path", "meter_id"]),
    ("GET", "/api/v1/meters/Bad%20Id/readings", 422, ["path", "meter_id"]),
    ("GET", "/api/v1/meters/meter-01/readings?start=99999999999999999999", 422,
     ["query", "start"]),
    ("GET", "/api/v1/meters/meter-01/readings.csv?end=tomorrow", 422, ["query", "end"]),
    ("GET", "/api/v1/meters/meter-01/energy?start=2025-02-01&end=2025-01-01", 422,
     ["query", "start"]),
    ("GET", "/api/v1/meters/meter-01/energy?period=year", 422, ["query", "period"]),
    ("GET", "/api/v1/meters/meter-01/readings?limit=0", 422, ["query", "limit"]),
    ("GET", "/api/v1/images/xyz", 422, ["path", "sha256"]),
    ("GET", "/api/v1/images/" + "0" * 64, 404, ["path", "sha256"]),
    ("POST", "/api/v1/readings", 400, ["body"]),
])
def test_every_error_has_the_one_shape(h, method, path, status, loc):
    key = h.provision()
    assert h.post(reading(seq=1, key=key)).status_code == 201
    res = h.client.request(method, path, content=b"{nope" if method == "POST" else None)
    assert res.status_code == status, res.text
    assert shape(res)[0]["loc"] == loc


def test_default_windows_follow_the_newest_reading(h):
    """A meter whose data is old still shows it without start/end (the README's table)."""
    key = h.provision()
    old = reading(seq=1, key=key, timestamp="2024-03-01T12:00:00Z")
    assert h.post(old).status_code == 201
    hist = h.client.get("/api/v1/meters/meter-01/readings").json()
    assert [p["seq"] for p in hist["points"]] == [1]
    assert hist["end"] - hist["start"] == 86400
    energy = h.client.get("/api/v1/meters/meter-01/energy").json()
    assert energy["totals"][0]["period"] == "2024-03-01"
    csv = h.client.get("/api/v1/meters/meter-01/readings.csv").text
    assert csv.count("\n") == 2


def test_read_side_answers_json_even_over_non_finite_rows(h):
    """Rows written before the bounds existed (or by hand) can hold inf/NaN: the answers
    write them as null instead of failing with a 500 for every meter."""
    key = h.provision()
    assert h.post(reading(seq=1, key=key, energy_export_wh=10.0)).status_code == 201
    h.storage._query("UPDATE readings SET energy_export_wh = ?, watts = ?", (1e308 * 10, 1e308 * 10))
    for path in ("/api/v1/status", "/api/v1/meters", "/api/v1/meters/meter-01/latest",
                 "/api/v1/meters/meter-01/readings?start=0",
                 "/api/v1/meters/meter-01/readings?start=0&bucket=60",
                 "/api/v1/meters/meter-01/energy?start=0"):
        res = h.client.get(path)
        assert res.status_code == 200, (path, res.text)
        shape_free_json(res.text)
    assert h.client.get("/api/v1/meters/meter-01/latest").json()["watts"] is None
