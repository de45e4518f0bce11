"""One request's failure stays that request's: a poisoned request among concurrent healthy ones
from other meters, on SQLite (group commit) and PostgreSQL, through a real server process and
directly at the storage layer."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from omd_server import keys
from omd_server.config import Config
from omd_server.ingest import to_row
from omd_server.storage import StorageUnavailable, Unstorable, open_storage
from omd_server_testlib import iso_now, reading

HEALTHY = 12
POISONS = {
    # refused by validation before anything is queued
    "seq of 5000 digits": lambda r: _raw(r, "seq", "9" * 5000),
    "counter 1e400": lambda r: _raw(r, "energy_export_wh", "1e400"),
    "counter 1.7e308": lambda r: _raw(r, "energy_export_wh", "1.7e308"),
    "119.5 as seq": lambda r: _raw(r, "seq", "119.5"),
    # refused inside the write transaction, next to the healthy requests of the group
    "counter jump": lambda r: dict(r, energy_export_wh=r["energy_export_wh"] + 1e6),
    "replay": lambda r: dict(r, seq=1, watts=r["watts"] - 1.0),
}


def _raw(r: dict, field: str, literal: str) -> bytes:
    import json

    return json.dumps(dict(r, **{field: "@@"})).replace('"@@"', literal).encode()


def test_poisoned_request_among_healthy_ones(tmp_path, database_url, server_process):
    cfg = Config(database_url=database_url, image_dir=str(tmp_path / "img"),
                 log_level="warning")
    meters = [f"ok-{i:02d}" for i in range(HEALTHY)] + ["poison"]
    st = open_storage(cfg)
    ks = keys.ensure(st, meters)
    st.close()
    srv = server_process(cfg)
    with httpx.Client(base_url=srv.url, timeout=30) as c:  # the poison meter has history
        first = reading("poison", 1, ks["poison"], timestamp=iso_now(-3000),
                        energy_export_wh=500.0)
        assert c.post("/api/v1/readings", json=first).status_code == 201

    seq = {m: 1 for m in meters}
    for name, poison in POISONS.items():
        answers = _round(srv.url, meters, ks, seq, poison)
        # every healthy request succeeded on its first and only try; the bad one got a 4xx,
        # never a 5xx (which the firmware would retry forever, knocking out its neighbours)
        assert {answers[m] for m in meters[:-1]} == {200}, (name, answers)
        assert 400 <= answers["poison"] < 500, (name, answers["poison"])

    st = open_storage(cfg)
    try:
        for m in meters[:-1]:
            assert st.count(m) == 20 * len(POISONS)
        assert st.count("poison") == 1
    finally:
        st.close()


def _round(url: str, meters: list[str], ks: dict, seq: dict, poison) -> dict[str, int]:
    """One batch from each healthy meter and the poisoned request, released at once."""
    from omd_server import contract

    barrier = threading.Barrier(len(meters))
    answers: dict[str, int] = {}

    def healthy(m: str) -> None:
        batch = []
        for _ in range(20):
            seq[m] += 1
            batch.append(reading(m, seq[m], ks[m], energy_export_wh=100.0 + seq[m] * 0.01,
                                 timestamp=iso_now(-600 + seq[m])))
        with httpx.Client(base_url=url, timeout=60) as c:
            barrier.wait()
            answers[m] = c.post("/api/v1/readings/batch", json={"readings": batch}).status_code

    def poisoned() -> None:
        seq["poison"] += 1
        r = reading("poison", seq["poison"], ks["poison"], timestamp=iso_now(-1000),
                    energy_export_wh=500.0)
        doc = poison(r)
        if isinstance(doc, dict):
            doc["sig"] = contract.sign(ks["poison"], {k: v for k, v in doc.items() if k != "sig"})
        with httpx.Client(base_url=url, timeout=60) as c:
            barrier.wait()
            res = (c.post("/api/v1/readings", content=doc) if isinstance(doc, bytes)
                   else c.post("/api/v1/readings", json=doc))
            answers["poison"] = res.status_code

    threads = [threading.Thread(target=healthy, args=(m,)) for m in meters[:-1]]
    threads.append(threading.Thread(target=poisoned))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers


def _rows(meter: str, start_seq: int, n: int, **over) -> list[dict]:
    out = []
    for s in range(start_seq, start_seq + n):
        r = reading(meter, s, timestamp=iso_now(-3600 + s), energy_export_wh=100.0 + s * 0.001,
                    **over)
        out.append(to_row(r, meter))
    return out


def _concurrently(st, jobs: dict[str, list[dict]], hold=None) -> dict[str, object]:
    """insert_readings of every job from its own thread; with hold (SQLite's write lock) all
    of them queue first and so run as one group commit."""
    out: dict[str, object] = {}

    def run(name):
        try:
            out[name] = st.insert_readings(jobs[name])
        except Exception as exc:
            out[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in jobs]
    if hold is not None:
        with hold:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 10
            while len(st._pending) < len(jobs) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(st._pending) == len(jobs), "jobs did not queue into one group"
    else:
        for t in threads:
            t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_a_value_the_database_refuses_fails_only_its_request(tmp_path, database_url):
    """Validation keeps such values out; if one ever got through, the group commit must still
    roll back only that request (422-class Unstorable), not 503 its neighbours."""
    cfg = Config(database_url=database_url)
    st = open_storage(cfg)
    try:
        jobs = {f"m{i}": _rows(f"m{i}", 1, 5) for i in range(6)}
        jobs["bad"] = _rows("bad", 1, 5)
        jobs["bad"][-1]["seq"] = 2**70  # bypasses validation: BIGINT cannot hold it
        out = _concurrently(st, jobs, getattr(st, "_write_lock", None))
        assert isinstance(out["bad"], Unstorable), out["bad"]
        for i in range(6):
            assert out[f"m{i}"] == ["stored"] * 5, out[f"m{i}"]
            assert st.count(f"m{i}") == 5
        assert st.count("bad") == 0
    finally:
        st.close()


def test_sqlite_group_falls_back_to_one_transaction_per_request(tmp_path):
    """A request too large for the capped database fills it inside the shared transaction;
    SQLite then rolls back the whole group. Each request is retried alone: the small ones
    are stored, the large one alone gets the storage error (503)."""
    cfg = Config(database_url=f"sqlite:///{tmp_path}/cap.db", sqlite_max_size_mb=1)
    st = open_storage(cfg)
    try:
        jobs = {f"s{i}": _rows(f"s{i}", 1, 3) for i in range(4)}
        jobs["huge"] = _rows("huge", 1, 20000, fw="x" * 32)
        out = _concurrently(st, jobs, st._write_lock)
        assert isinstance(out["huge"], StorageUnavailable), out["huge"]
        assert "full" in str(out["huge"])
        for i in range(4):
            assert out[f"s{i}"] == ["stored"] * 3, out[f"s{i}"]
            assert st.count(f"s{i}") == 3
        assert st.count("huge") == 0
    finally:
        st.close()


@pytest.mark.parametrize("field", ["energy_import_wh", "energy_export_wh"])
def test_counter_jump_is_refused_in_both_directions_of_time(h, field):
    """The plausibility rule holds for a reading newer than the meter's newest and for an
    older store-and-forward one, against its neighbours in time."""
    key = h.provision()
    t = [iso_now(-3000), iso_now(-2000), iso_now(-1000)]
    assert h.post(reading(seq=1, key=key, timestamp=t[0], **{field: 100.0})).status_code == 201
    assert h.post(reading(seq=3, key=key, timestamp=t[2], **{field: 110.0})).status_code == 201
    # 1000 s at the contract's largest power (50 kW) is 13.9 kWh: +20 kWh is impossible
    res = h.post(reading(seq=4, key=key, timestamp=iso_now(-900), **{field: 20110.0}))
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", field]
    # older reading (seq 2 between seq 1 and 3 in time) that would make the next one jump back
    res = h.post(reading(seq=5, key=key, timestamp=t[1], **{field: 50000.0}))
    assert res.status_code == 422 and res.json()["detail"][0]["type"] == "value.implausible"
    # and a plausible one between them is fine
    assert h.post(reading(seq=6, key=key, timestamp=t[1], **{field: 105.0})).status_code == 201
    assert h.storage.count() == 3
