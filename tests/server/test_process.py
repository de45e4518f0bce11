"""Real uvicorn processes: kill -9 durability, 100 concurrent meters, the CLI."""

import asyncio
import concurrent.futures
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from omd_server import simulate
from omd_server.config import Config
from omd_server.storage import open_storage
from omd_server_testlib import reading


def _cfg(tmp_path, **over) -> Config:
    cfg = Config(database_url=f"sqlite:///{tmp_path}/omd.db", image_dir=str(tmp_path / "img"),
                 log_level="warning")
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def _provision(cfg, meters):
    st = open_storage(cfg)
    keys = {}
    for m in meters:
        keys[m] = f"{hash(m) & (2**256 - 1):064x}"
        st.set_key(m, keys[m])
    st.close()
    return keys


def test_acknowledged_readings_survive_kill_9(tmp_path, server_process):
    cfg = _cfg(tmp_path)
    keys = _provision(cfg, [f"kill-{i}" for i in range(4)])
    srv = server_process(cfg)
    acked: dict[str, set[int]] = {m: set() for m in keys}
    stop = threading.Event()

    def poster(meter, key):
        seq = 1
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            for _ in range(100_000):  # bounded; the kill ends it long before
                if stop.is_set():
                    return
                batch = [reading(meter_id=meter, seq=s, key=key) for s in range(seq, seq + 5)]
                try:
                    res = c.post("/api/v1/readings/batch", json={"readings": batch})
                except httpx.HTTPError:
                    return
                if res.status_code == 200:
                    acked[meter].update(x["seq"] for x in res.json()["results"])
                seq += 5

    threads = [threading.Thread(target=poster, args=kv) for kv in keys.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(map(len, acked.values())) < 1000 and time.monotonic() < deadline:
        time.sleep(0.02)
    srv.kill9()  # mid-stream: requests are in flight
    stop.set()
    for t in threads:
        t.join(timeout=20)
    total = sum(map(len, acked.values()))
    assert total >= 1000, "server acknowledged too little before the kill"

    con = sqlite3.connect(cfg.sqlite_path())
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    srv2 = server_process(cfg)
    for meter, seqs in acked.items():
        res = httpx.get(f"{srv2.url}/api/v1/meters/{meter}/readings",
                        params={"start": "2020-01-01", "limit": 100000}, timeout=30)
        stored = {p["seq"] for p in res.json()["points"]}
        assert seqs <= stored, f"{meter}: acknowledged but lost: {sorted(seqs - stored)[:10]}"
    # and the restarted server continues where the meters are
    key = keys["kill-0"]
    last = max(acked["kill-0"] | {0})
    # a seq far ahead (seqs lost with the kill) but a counter that moved plausibly
    res = httpx.post(f"{srv2.url}/api/v1/readings", json=reading(
        meter_id="kill-0", seq=last + 1000, key=key, energy_export_wh=100.0 + last + 1))
    assert res.status_code == 201


def test_100_concurrent_meters_lose_nothing(tmp_path, server_process):
    cfg = _cfg(tmp_path)
    meters = [f"m{i:03d}" for i in range(100)]
    keys = _provision(cfg, meters)
    srv = server_process(cfg, workers=2)
    start = int(time.time()) - 3600
    # A thread of its own: asyncio.run() refuses to start inside another running loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        stats = pool.submit(asyncio.run, simulate.run(
            srv.url, keys, start, count=10, interval=10, batch=1, images_every=5,
            max_connections=100)).result()
    assert stats.errors == []
    assert stats.sent == 1000 and stats.stored == 1000 and stats.rejected == 0
    assert stats.images == 200
    st = open_storage(cfg)
    try:
        assert st.count() == 1000
        for m in meters:
            rows = st.readings(m, 0, 2**62)
            assert [r["seq"] for r in rows] == [start + 10 * n for n in range(10)]
    finally:
        st.close()


def test_cli_keys_and_simulate(tmp_path, server_process):
    conf = tmp_path / "omd.toml"
    conf.write_text('database_url = "sqlite:///cli.db"\nimage_dir = "img"\n')
    run = [sys.executable, "-m", "omd_server.cli"]
    res = subprocess.run(run + ["keys", "add", "meter-07", "--config", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    key = res.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    again = subprocess.run(run + ["--config", str(conf), "keys", "add", "meter-07"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already has a key" in again.stderr
    bad = subprocess.run(run + ["keys", "add", "Bad Id", "--config", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    cfg = _cfg(tmp_path, database_url=f"sqlite:///{tmp_path}/cli.db")
    st = open_storage(cfg)
    assert st.get_key("meter-07") == key
    st.close()
    srv = server_process(cfg)
    res = subprocess.run(run + ["simulate", "--config", str(conf), "--url", srv.url,
                                "--meters", "2", "--hours", "1", "--interval", "60",
                                "--batch", "10"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "stored 120" in res.stdout
    meters = httpx.get(srv.url + "/api/v1/meters", timeout=10).json()
    assert {m["meter_id"] for m in meters} == {"meter-07", "sim-01", "sim-02"}


def test_example_config_and_unit_file_are_usable(tmp_path):
    from omd_server.config import load

    server = Path(__file__).resolve().parents[2] / "server"
    cfg = load(server / "omd.example.toml", env={})
    assert cfg.is_sqlite and cfg.allow_unsigned is False and cfg.host == "127.0.0.1"
    assert Path(cfg.sqlite_path()).parent == server  # relative to the file
    env = load(server / "omd.example.toml", env={"OMD_PORT": "9999", "OMD_ALLOW_UNSIGNED": "yes"})
    assert env.port == 9999 and env.allow_unsigned is True
    unit = (server / "omd-server.service").read_text()
    assert "ExecStart=" in unit and "omd-server serve" in unit and "OMD_CONFIG=" in unit
