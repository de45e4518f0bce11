"""The tick check: no raw arithmetic or ordering on ticks values in firmware/."""

import shutil
import textwrap
from pathlib import Path

import pytest

from firmware.tools import tickcheck

FW = Path(__file__).resolve().parents[2] / "firmware"

PLANTED = '''\
import time
import utime
from time import ticks_cpu as tc

import ticks
from ticks import ticks_add, ticks_diff, ticks_ms

T0 = ticks_ms()


class Meter:
    def __init__(self, clock):
        self.clock = clock
        self.t0 = clock()
        self.deadline = None

    def late(self):
        now = self.clock()
        dt = now - self.t0  # BAD
        self.deadline = now + 500  # BAD
        if now < self.t0:  # BAD
            pass
        if self.deadline >= 7:  # BAD
            pass
        self.t0 += 10  # BAD
        first = max(now, self.t0)  # BAD
        ok = ticks_diff(now, self.t0) > 5
        ok2 = ticks.elapsed(now, self.t0) >= 1000
        same = now == self.t0 or now is None
        text = "%d ms" % now
        later = ticks_add(now, 500)
        return later > now, dt, first, ok, ok2, same, text  # BAD


def raw_sources():
    a = time.ticks_us()
    b = utime.ticks_ms()
    c = tc()
    return a - 3, -b, c * 2  # BAD


def since_boot():
    return ticks_ms() - T0  # BAD


def helper():
    return ticks_ms()


def uses_helper():
    t = helper()
    return t + 1  # BAD


def clock_lambda():
    clk = lambda: ticks_ms()  # noqa: E731
    return clk() - 1  # BAD


def deadline_param(now, limit):
    return now > limit  # BAD


def wiring():
    deadline_param(ticks.ticks_ms(), 5)
    return Meter(time.ticks_ms)
'''

# a clock handed from one module into a class of another, by keyword
TIMER = '''\
class Timer:
    def __init__(self, limit, clock=None):
        self.clock = clock
        self.limit = limit
        self.start = clock()

    def expired(self):
        return self.clock() - self.start >= self.limit  # BAD
'''
USER = '''\
import time

import timer

t = timer.Timer(500, clock=time.ticks_ms)
'''

CLEAN = '''\
import time

import ticks


class Loop:
    def __init__(self, clock):
        self.clock = clock
        self.t = clock()
        self.n = 0

    def step(self, period):
        now = self.clock()
        if ticks.ticks_diff(now, self.t) >= period:
            self.t = ticks.ticks_add(self.t, period)
            self.n += 1
        unix = time.time() - 3600  # wall-clock seconds are plain numbers
        return ticks.elapsed(now, self.t) < period and unix > 0 and self.n > 1


def run():
    return Loop(time.ticks_ms).step(1000)
'''


def bad_lines(src):
    return {i for i, line in enumerate(src.splitlines(), 1) if line.rstrip().endswith("# BAD")}


def write(tmp_path, name, src):
    p = tmp_path / name
    p.write_text(textwrap.dedent(src))
    return p


def test_firmware_has_no_raw_ticks_arithmetic():
    found, _ = tickcheck.check()
    assert found == [], "\n".join(map(str, found))


def test_the_check_sees_the_firmwares_ticks():
    """Guard against a vacuous pass: the clocks and stored ticks of the firmware are found."""
    _, a = tickcheck.check()
    slots = a.ticks_slots()
    assert {
        "main:App.clock=clock", "meter:ChipMeter.t_poll=value", "main:App.t_interval=value",
        "main:run:now=value", "main:run:last_ping=value", "main:App.pump:now=value",
        "net:Backoff.failed_at=value", "net:Backoff.due:now=value", "net:Wifi.started=value",
        "net:Wifi.clock=clock", "evidence:Evidence.last=value", "evidence:Evidence.clock=clock",
        "meter:ChipMeter.t_energy=value",
    } <= slots, sorted(slots)
    assert all("ticks.py" not in str(p) or p.parent != FW for p in tickcheck.firmware_files())


def test_planted_violations_are_all_caught(tmp_path):
    found, _ = tickcheck.check([write(tmp_path, "planted.py", PLANTED)])
    assert {f.line for f in found} == bad_lines(PLANTED), "\n".join(map(str, found))


def test_a_clock_passed_across_modules_is_followed(tmp_path):
    files = [write(tmp_path, "timer.py", TIMER), write(tmp_path, "user.py", USER)]
    found, _ = tickcheck.check(files)
    assert [(Path(f.path).name, f.line) for f in found] == [
        ("timer.py", line) for line in sorted(bad_lines(TIMER))]
    # without the module that passes the clock in, nothing says Timer.clock is a clock
    assert tickcheck.check(files[:1])[0] == []


def test_wrap_safe_code_is_clean(tmp_path):
    assert tickcheck.check([write(tmp_path, "clean.py", CLEAN)])[0] == []


@pytest.mark.parametrize("module, good, bad", [
    ("main.py", "late = ticks.elapsed(now, self.t_interval)", "late = now - self.t_interval"),
    ("main.py", "self.t_interval = ticks.ticks_add(self.t_interval, self.interval)",
     "self.t_interval += self.interval"),
    ("net.py", "ticks.elapsed(now, self.failed_at) >= self.delay",
     "now >= self.failed_at + self.delay"),
    ("evidence.py", "ticks.elapsed(now, self.last) >= self.every", "now - self.last >= self.every"),
    ("meter.py", "dt = t.ticks_diff(now, self.t_energy)", "dt = now - self.t_energy"),
])
def test_a_regression_in_the_real_firmware_is_caught(tmp_path, module, good, bad):
    shutil.copytree(FW, tmp_path / "fw", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "fw" / module
    src = path.read_text()
    assert src.count(good) == 1
    path.write_text(src.replace(good, bad))
    line = src[:src.index(good)].count("\n") + 1
    found, _ = tickcheck.check(tickcheck.firmware_files(tmp_path / "fw"))
    assert {(Path(f.path).name, f.line) for f in found} == {(module, line)}, found


def test_cli_exit_status(tmp_path, capsys):
    assert tickcheck.main([]) == 0
    assert tickcheck.main([str(write(tmp_path, "planted.py", PLANTED))]) == 1
    assert "planted.py:19:" in capsys.readouterr().out
