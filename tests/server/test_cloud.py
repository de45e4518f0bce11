"""The cloud shape: several omd-server processes on different ports writing one PostgreSQL
database. Every reading is sent to two different processes at about the same time (a client
retrying against another node of a load balancer); each must be stored exactly once, none
lost, and exactly one of the two answers says 'stored'. The figure printed (readings/s stored
through three processes) is what docs/guides/oracle.md quotes; it is noisy on a shared
machine."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import random
import threading
import time

import httpx
import pytest
from omd_server.config import Config
from omd_server.storage import open_storage
from omd_server_testlib import iso_now, reading

pytestmark = pytest.mark.slow
METERS, PER_METER, NODES = 20, 40, 3


def test_three_processes_one_postgres_nothing_lost_or_doubled(tmp_path, pg_server,
                                                              server_process):
    cfg = Config(database_url=pg_server.new_database(), image_dir=str(tmp_path / "img"),
                 log_level="warning")
    st = open_storage(cfg)
    keys = {}
    for i in range(METERS):
        m = f"c{i:03d}"
        keys[m] = f"{(i + 1) * 7919:064x}"
        st.set_key(m, keys[m])
    st.close()
    nodes = [server_process(dataclasses.replace(cfg)) for _ in range(NODES)]  # started
    rng = random.Random(5)
    # a meter sends in seq order (the server refuses a lower seq than it stored: replay);
    # the meters run in parallel
    jobs = {m: [(reading(m, seq, key, timestamp=iso_now(-7200 + seq * 10)),
                 *rng.sample(range(NODES), 2)) for seq in range(1, PER_METER + 1)]
            for m, key in keys.items()}
    codes: dict[tuple[str, int], list[int]] = {}
    lock = threading.Lock()
    clients = [httpx.Client(base_url=n.url, timeout=30) for n in nodes]

    def send(job):
        doc, a, b = job
        barrier = threading.Barrier(2)

        def one(k):
            barrier.wait()
            return clients[k].post("/api/v1/readings", json=doc).status_code

        with concurrent.futures.ThreadPoolExecutor(2) as two:
            got = list(two.map(one, (a, b)))
        with lock:
            codes[(doc["meter_id"], doc["seq"])] = got

    def meter(m):
        for job in jobs[m]:
            send(job)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(METERS) as pool:
        list(pool.map(meter, jobs))
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    assert len(codes) == METERS * PER_METER
    for key, got in codes.items():
        assert sorted(got) == [200, 201], (key, got)  # one stored, one duplicate
    st = open_storage(cfg)
    try:
        assert st.count() == METERS * PER_METER
        for m in keys:
            assert [r["seq"] for r in st.readings(m, 0, 2**62)] == list(range(1, PER_METER + 1))
    finally:
        st.close()
    n = METERS * PER_METER
    print(f"\n{NODES} processes, one PostgreSQL: {n} readings (each posted twice) in "
          f"{elapsed:.1f} s = {n / elapsed:.0f} readings/s stored, {2 * n / elapsed:.0f} "
          "requests/s")
