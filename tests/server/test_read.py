"""Read side, evidence photos and retention."""

import csv
import hashlib
import io
import time
from datetime import UTC, datetime

import pytest
from omd_server import contract, images
from omd_server.simulate import fake_jpeg
from omd_server_testlib import reading


def _ts(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.fixture
def day(h):
    """Two days of readings every 10 minutes with known counters: +60 Wh export per interval in
    daylight hours (06-18 UTC), +10 Wh import otherwise."""
    key = h.provision()
    base = _ts("2025-06-01T00:00:00Z")
    imp, exp = 1000.0, 5000.0
    docs = []
    for n in range(2 * 144):
        ts = base + (n + 1) * 600
        hour = (ts % 86400) / 3600
        if 6 < hour <= 18:
            exp += 60.0
            w, v, i, pf = 360.0, 230.0, 1.6, 0.978
        else:
            imp += 10.0
            w, v, i, pf = -60.0, 230.0, 0.3, 0.87
        docs.append(reading(seq=n + 1, key=key, timestamp=datetime.fromtimestamp(ts, UTC)
                            .strftime("%Y-%m-%dT%H:%M:%SZ"), watts=w, voltage=v, current=i,
                            pf=pf, energy_import_wh=imp, energy_export_wh=exp))
    for i in range(0, len(docs), 100):
        assert h.post(docs[i:i + 100], batch=True).status_code == 200
    return h, docs


def test_history_raw_and_downsampled(day):
    h, docs = day
    res = h.client.get("/api/v1/meters/meter-01/readings",
                       params={"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T12:00:00Z"})
    pts = res.json()["points"]
    assert len(pts) == 71 + 1 - 1  # 00:10 .. 11:50 inclusive
    assert pts[0]["timestamp"] == "2025-06-01T00:10:00Z"
    res = h.client.get("/api/v1/meters/meter-01/readings",
                       params={"start": "2025-06-01T00:00:00Z", "end": "2025-06-02T00:00:00Z",
                               "bucket": 3600})
    pts = res.json()["points"]
    assert len(pts) == 24
    assert pts[0]["count"] == 5 and pts[1]["count"] == 6
    assert pts[12]["watts_avg"] == pytest.approx(360.0)
    assert pts[23]["watts_min"] == -60.0
    assert sum(p["count"] for p in pts) == 143
    assert h.client.get("/api/v1/meters/nope/readings").status_code == 404
    assert h.client.get("/api/v1/meters/meter-01/readings",
                        params={"start": "tomorrow"}).status_code == 422


def test_energy_per_day_and_month(day):
    h, docs = day
    res = h.client.get("/api/v1/meters/meter-01/energy",
                       params={"period": "day", "start": "2025-06-01", "end": "2025-06-03"})
    totals = {t["period"]: t for t in res.json()["totals"]}
    # day 1 holds readings 00:10..23:50 (the one at 24:00 belongs to day 2): 72 daylight
    # intervals x 60 Wh and 71 night ones x 10 Wh, of which the first has no predecessor
    assert totals["2025-06-01"]["export_wh"] == pytest.approx(72 * 60)
    assert totals["2025-06-01"]["import_wh"] == pytest.approx(70 * 10)
    assert totals["2025-06-02"]["export_wh"] == pytest.approx(72 * 60)
    assert totals["2025-06-02"]["import_wh"] == pytest.approx(72 * 10)
    # a range starting mid-way uses the reading before it as the baseline
    res = h.client.get("/api/v1/meters/meter-01/energy",
                       params={"period": "day", "start": "2025-06-02", "end": "2025-06-03"})
    assert res.json()["totals"][0]["import_wh"] == pytest.approx(72 * 10)
    res = h.client.get("/api/v1/meters/meter-01/energy", params={"period": "month",
                       "start": "2025-06-01", "end": "2025-07-01"})
    month = res.json()["totals"]
    assert month == [{"period": "2025-06", "import_wh": pytest.approx(143 * 10),
                      "export_wh": pytest.approx(144 * 60), "readings": 288}]
    assert h.client.get("/api/v1/meters/meter-01/energy",
                        params={"period": "week"}).status_code == 422


def test_energy_integrates_watts_when_no_counters(harness_factory):
    h = harness_factory(allow_unsigned=True)
    for n in range(7):
        doc = {"voltage": 230.0, "current": 5.0, "watts": 1150.0,
               "timestamp": datetime.fromtimestamp(_ts("2025-06-01T10:00:00Z") + n * 600, UTC)
               .strftime("%Y-%m-%dT%H:%M:%S")}
        assert h.post(doc).status_code == 201
    totals = h.client.get("/api/v1/meters/seed/energy",
                          params={"start": "2025-06-01", "end": "2025-06-02"}).json()["totals"]
    # six 10-minute intervals at 1150 W
    assert totals[0]["export_wh"] == pytest.approx(6 * 1150 / 6)
    assert totals[0]["import_wh"] == 0


def test_csv_export(day):
    h, docs = day
    res = h.client.get("/api/v1/meters/meter-01/readings.csv")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert len(rows) == len(docs)
    assert [int(r["seq"]) for r in rows] == [d["seq"] for d in docs]
    first = {k: v for k, v in rows[0].items() if v != "" and k != "received_at"}
    assert first["sig"] == docs[0]["sig"]
    assert float(first["watts"]) == docs[0]["watts"]


def test_csv_export_pages_beyond_5000_rows(h):
    key = h.provision()
    base = _ts("2025-01-01T00:00:00Z")
    docs = [reading(seq=n + 1, key=key, timestamp=datetime.fromtimestamp(base + n, UTC)
                    .strftime("%Y-%m-%dT%H:%M:%SZ")) for n in range(5200)]
    for i in range(0, len(docs), 1000):
        assert h.post(docs[i:i + 1000], batch=True).status_code == 200
    rows = list(csv.DictReader(io.StringIO(h.client.get("/api/v1/meters/meter-01/readings.csv").text)))
    assert [int(r["seq"]) for r in rows] == list(range(1, 5201))


def _upload(h, meter_id, data, key=None, sha=None, sig=None):
    sha_hdr = sha or hashlib.sha256(data).hexdigest()
    headers = {"Content-Type": "image/jpeg", "X-OMD-Image-SHA256": sha_hdr}
    if key:
        headers["X-OMD-Signature"] = sig or contract.sign_image(key, meter_id, sha_hdr)
    return h.client.post(f"/api/v1/meters/{meter_id}/images", content=data, headers=headers)


def test_evidence_upload_and_status_page(h):
    key = h.provision()
    jpeg = fake_jpeg("meter-01 photo 1")
    sha = hashlib.sha256(jpeg).hexdigest()
    assert _upload(h, "meter-01", jpeg).status_code == 401  # unsigned
    assert _upload(h, "meter-01", jpeg, key="22" * 32).status_code == 401  # wrong key
    res = _upload(h, "meter-01", jpeg, key=key, sha="ab" * 32)
    assert res.status_code == 422 and "does not match" in res.text
    assert _upload(h, "meter-01", b"GIF89a....", key=key).status_code == 422
    res = _upload(h, "meter-01", jpeg, key=key)
    assert res.status_code == 201 and res.json() == {"sha256": sha, "status": "stored"}
    assert _upload(h, "meter-01", jpeg, key=key).json()["status"] == "duplicate"
    got = h.client.get(f"/api/v1/images/{sha}")
    assert got.status_code == 200 and got.content == jpeg
    assert hashlib.sha256(got.content).hexdigest() == sha
    # the photo becomes "last photo" once a signed reading announces its hash
    assert h.client.get("/api/v1/status").json()["meters"] == []
    assert h.post(reading(seq=1, key=key, image_sha256=sha)).status_code == 201
    status = h.client.get("/api/v1/status").json()["meters"][0]
    assert status["photo"] == f"/api/v1/images/{sha}"
    assert status["latest"]["watts"] == 900.0
    page = h.client.get("/")
    assert page.status_code == 200 and "/api/v1/status" in page.text
    # a file altered on disk is no longer served as evidence
    path = images.image_path(h.cfg, sha)
    path.write_bytes(jpeg + b"tampered")
    assert h.client.get(f"/api/v1/images/{sha}").status_code == 404


def test_retention_policy(harness_factory):
    h = harness_factory(image_retention_days=7, image_max_total_mb=0)
    key = h.provision()
    shas = []
    for n in range(3):
        jpeg = fake_jpeg(f"photo {n}")
        assert _upload(h, "meter-01", jpeg, key=key).status_code == 201
        shas.append(hashlib.sha256(jpeg).hexdigest())
    assert images.prune(h.cfg, h.storage) == []
    gone = images.prune(h.cfg, h.storage, now=time.time() + 8 * 86400)
    assert sorted(gone) == sorted(shas)
    for sha in shas:
        assert not images.image_path(h.cfg, sha).exists()
        assert h.client.get(f"/api/v1/images/{sha}").status_code == 404


def test_retention_by_total_size_keeps_newest(harness_factory):
    h = harness_factory(image_retention_days=0, image_max_total_mb=1)
    key = h.provision()
    shas = []
    for n in range(3):
        jpeg = fake_jpeg(f"photo {n}") + b"\0" * 400_000
        assert _upload(h, "meter-01", jpeg, key=key).status_code == 201
        shas.append(hashlib.sha256(jpeg).hexdigest())
        # distinct received_at so "oldest" is well defined
        h.storage._query("UPDATE images SET received_at = ? WHERE sha256 = ?", (1000 + n, shas[-1]))
    gone = images.prune(h.cfg, h.storage)
    assert gone == [shas[0]]
    assert h.client.get(f"/api/v1/images/{shas[2]}").status_code == 200
