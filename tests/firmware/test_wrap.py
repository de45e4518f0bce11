"""Across ticks_ms()'s wrap at 2**30 ms (12.4 days): the day offline, energy (the App on the
real chip driver and ChipMeter), backoff, Wi-Fi, evidence, and gaps longer than ticks_diff can
measure."""

import sys
from pathlib import Path

import config
import evidence
import main
import net
import pytest
import ticks

import contract

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrap_scenario as ws  # noqa: E402
from test_store_forward import Server  # noqa: E402

PERIOD, HALF = ws.DEVICE_PERIOD, ws.DEVICE_PERIOD // 2
DAY = 24 * 3600 // 10
START_IDS = ["wrap-5s", "half", "last-tick"]


def lan(ct):
    return ws.LanServer(ct, contract, bytes.fromhex(ws.KEY_HEX))


def test_firmware_wraps_where_the_device_does():
    assert ticks.PERIOD == ws.DEVICE_PERIOD
    m = ticks.MASK
    # MicroPython's own invariants (tests/extmod/ticks_diff.py, ticks_add.py)
    assert ticks.ticks_diff(1, 0) == 1 and ticks.ticks_diff(0, 1) == -1
    assert ticks.ticks_diff(0, m) == 1 and ticks.ticks_diff(m, 0) == -1
    assert ticks.ticks_diff(HALF, 1) == HALF - 1 and ticks.ticks_diff(HALF, 0) == -HALF
    assert ticks.ticks_add(m, 1) == 0 and ticks.ticks_add(0, -1) == m
    assert ticks.ticks_add(5, HALF - 1) == HALF + 4
    for d in (HALF, -HALF, PERIOD):
        with pytest.raises(OverflowError):
            ticks.ticks_add(0, d)
    for t in (0, 1, HALF - 1, HALF, m):
        for d in (1, -1, 1000, -(HALF - 1), HALF - 1):
            assert ticks.ticks_diff(ticks.ticks_add(t, d), t) == d
    assert 0 <= ticks.ticks_ms() <= m and 0 <= ticks.ticks_us() <= m
    assert ticks.elapsed(5, m) == 6 and ticks.elapsed(m, 5) == HALF  # "long ago", not -6


@pytest.mark.parametrize("start", ws.STARTS, ids=START_IDS)
def test_store_and_forward_day_across_the_wrap(tmp_path, ct, schema, start):
    server = Server(ct, schema)
    clock = ws.WrapClock(start)
    out = ws.day(main, config, str(tmp_path / "data"), clock, server, DAY)
    if start > HALF:
        assert clock() < start  # the counter really wrapped during the run
    assert out["missed"] == 0  # every interval closed, before and after the wrap
    assert out["pending"] == DAY  # a day queued, nothing lost
    assert out["left"] == 0 and out["passes"] < 400  # backoff (<= 120 s) let it drain
    assert server.order == list(range(1, out["seq"] + 1))  # in order, none missing
    assert server.duplicates == 0
    # a dead server is tried 2, 4, ... 120 s apart, not every pass and not never
    assert DAY * 10 / 120 - 5 < out["calls_offline"] - 10 < DAY * 10 / 120 + 10
    # 1500 W imported during every millisecond between the first and the last poll
    assert ws.lag_ok(1500, out["measured_ms"], out["import_mj"])
    assert out["export_mj"] == 0


@pytest.mark.parametrize("start", ws.STARTS, ids=START_IDS)
def test_energy_integration_across_the_wrap(tmp_path, ct, start):
    clock = ws.WrapClock(start - 1800_000)  # the wrap half way through the hour
    out = ws.energy(main, config, str(tmp_path / "data"), clock, lan(ct), 3600)
    assert out["export_mj"] == 0
    # the chip counts; the ledger lags it by at most a poll and a count, whatever the ticks do
    assert ws.lag_ok(575, out["measured_ms"], out["import_mj"])
    gaps = [b - a for a, b in zip(out["closes"], out["closes"][1:], strict=False)]
    # one close per 10 s, never late by more than one loop pass, never skipped
    assert len(out["closes"]) == out["measured_ms"] // 10_000
    assert all(10_000 - 1300 < g < 10_000 + 1300 for g in gaps)


@pytest.mark.parametrize("start", ws.STARTS, ids=START_IDS)
def test_backoff_across_the_wrap(start):
    clock = ws.WrapClock(start - 30_000)
    got = ws.backoff(net, clock)
    assert got == [2000, 4000, 8000, 16000, 32000, 64000, 120000, 120000, 120000]


@pytest.mark.parametrize("unpolled", [HALF - 1, HALF, HALF + 86_400_000, PERIOD - 1000,
                                      7 * 86_400_000])
def test_backoff_asked_after_days_is_due(unpolled):
    # e.g. the MQTT backoff: asked only while Wi-Fi is up, and Wi-Fi was down for a week
    clock = ws.WrapClock(PERIOD - 5000)
    b = net.Backoff(2, 300)
    b.failed(clock())
    clock.advance(unpolled)
    assert b.due(clock())


def test_backoff_aliased_to_a_short_gap_waits_at_most_one_delay():
    clock = ws.WrapClock(PERIOD - 5000)
    b = net.Backoff(2, 300)
    for _ in range(10):
        b.failed(clock())
    clock.advance(PERIOD + 1000)  # exactly one period later reads as 1 s: indistinguishable
    waited = 0
    while not b.due(clock()) and waited < 3600_000:
        clock.advance(1000)
        waited += 1000
    assert waited <= b.delay == 300_000


@pytest.mark.parametrize("start", ws.STARTS, ids=START_IDS)
def test_wifi_timeout_and_retries_across_the_wrap(start):
    class WLAN:
        def __init__(self):
            self.calls = []

        def isconnected(self):
            return False

        def active(self, on):
            pass

        def connect(self, ssid, pw):
            self.calls.append(clock.t)

    clock = ws.WrapClock(start - 10_000)
    w = WLAN()
    wifi = net.Wifi(w, [{"ssid": "a", "password": "b"}], clock=clock, timeout_ms=5000)
    for _ in range(4000):
        clock.advance(250)
        wifi.poll()
    gaps = [b - a for a, b in zip(w.calls, w.calls[1:], strict=False)]
    # each attempt: 5 s timeout, then 1, 2, 4 ... 300 s of backoff
    want = [5000 + min(1000 * 2**k, 300_000) for k in range(len(gaps))]
    assert gaps == want and len(gaps) >= 8


@pytest.mark.parametrize("start", ws.STARTS, ids=START_IDS)
def test_evidence_schedule_across_the_wrap(start):
    class Cam:
        def capture(self):
            shots.append(clock.t)
            return b"\xff\xd8\xff\xe0jpeg"

    shots = []
    clock = ws.WrapClock(start - 3 * 3600_000)
    ev = evidence.Evidence(Cam(), lambda img, sha: 201, 3600, clock)
    for _ in range(6 * 3600):
        clock.advance(1000)
        ev.poll()
    first = shots[0]
    assert [s - first for s in shots] == [k * 3600_000 for k in range(6)]


def test_evidence_schedule_longer_than_ticks_can_measure_is_bounded():
    clock = ws.WrapClock(PERIOD - 5000)
    ev = evidence.Evidence(object(), None, 30 * 86400, clock)  # a photo a month: not measurable
    ev.last, ev.requested = clock(), False
    assert ev.every == HALF // 2
    clock.advance(HALF // 2 - 1)
    assert not ev.due()
    clock.advance(1)
    assert ev.due()


@pytest.mark.parametrize("gap", [HALF - 1, HALF, HALF + 86_400_000, PERIOD - 1000, PERIOD,
                                 PERIOD + 5000, 7 * 86_400_000, 30 * 86_400_000])
def test_gap_longer_than_ticks_can_measure_books_bounded_energy(tmp_path, ct, gap):
    """A loop that blocks or sleeps past PERIOD/2: ticks_diff cannot tell how long. The chip
    counted meanwhile; what its 16-bit registers held is booked once, in the right register,
    and reporting carries on at once, not 6 days later."""
    clock = ws.WrapClock(PERIOD - 60_000)
    app = ws.make_app(main, config, str(tmp_path / "data"), clock, lan(ct), -575.0)

    class Cam:
        def capture(self):
            return b"\xff\xd8\xff\xe0jpeg"

    ev = evidence.Evidence(Cam(), lambda img, sha: 201, 3600, clock)
    ev.poll()
    for _ in range(30):
        clock.advance(1000)
        app.step()
    g = app.grid
    before = app.ledger.import_mj(g)
    assert ws.lag_ok(575, 30_000, before)
    clock.advance(gap)
    app.step()
    booked = app.ledger.import_mj(g) - before
    assert app.ledger.export_mj(g) == 0
    # never more than the register holds (plus the counts before the gap), never negative
    assert 0 <= booked <= (0xFFFF + 2) * ws.COUNT_MJ + 575 * 1300
    closed = 0
    for _ in range(11):
        clock.advance(1000)
        closed += app.step() is not None
    assert closed >= 1  # the next interval closes within one interval
    after = app.ledger.import_mj(g) - before - booked
    assert abs(575 * 11_000 - after) <= 575 * 1300 + 2 * ws.COUNT_MJ
    # the hourly photo is overdue, not 6 days away; only a gap that is a whole number of
    # periods plus less than the schedule is invisible to ticks (the photo comes <= 1 h late)
    assert ev.due() == ((30_000 + gap) % PERIOD >= 3600_000)


def test_too_long_interval_is_bounded(tmp_path, ct):
    logs = []
    cfg, _ = config.load(str(tmp_path / "none.json"))
    cfg["key_hex"] = ws.KEY_HEX
    cfg["interval_s"] = 30 * 86400
    clock = ws.WrapClock(0)
    app = ws.make_app(main, config, str(tmp_path / "d"), clock, lan(ct), 1.0, cfg=cfg,
                      log=logs.append)
    assert app.interval == main.MAX_INTERVAL_MS and 4 * app.interval <= HALF
    assert "interval_s" in logs[0]
