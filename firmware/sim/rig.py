"""A simulated rev-B meter on the bench: board + chip + the real driver, one shared clock.

The driver's sleep_ms() advances the chip's mains time and a ticks clock that wraps like the
ESP32's (2**30 ms), so every poll, calibration wait and reporting interval of the real code
runs against simulated time. The rig also integrates the true energy of each channel from
the sensor models, which is what the benchmark compares the ledger with.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

FW = Path(__file__).resolve().parents[1]
if str(FW) not in sys.path:
    sys.path.insert(0, str(FW))

import meter  # noqa: E402

from sim import sensors  # noqa: E402
from sim.m90e32as import NOISE_V, Chip, CSPin, SPIBus  # noqa: E402
from sim.ticks import PERIOD, WrapTicks  # noqa: E402,F401  (PERIOD: re-exported for tests)


class Rig:
    def __init__(self, seed=1, voltage_sensor="zmpt101b", start_ms=PERIOD - 5000, cfg=None,
                 data_dir=None, noise=True, log=None):
        self.board = sensors.Board.draw(seed, voltage_sensor)
        self.chip = Chip(self.board, seed, noise_v=NOISE_V if noise else 0.0)
        self.clock = WrapTicks(start_ms)
        self.bus = SPIBus(self.chip)
        self.cs = CSPin()
        self.drv = meter.ATM90E32(self.bus, self.cs, self.sleep_ms)
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory()
            data_dir = self._tmp.name
        self.data_dir = data_dir
        self.meter = meter.ChipMeter(self.drv, cfg or {}, self.clock, data_dir,
                                     log=log or (lambda *a: None))
        self.truth_mj = [0.0, 0.0, 0.0]  # per board channel, export positive

    def set(self, vrms=None, f=None, loads=None, harmonics=None):
        m = self.board.mains
        if vrms is not None:
            m.vrms = vrms
        if f is not None:
            m.f = f
        if harmonics is not None:
            m.harmonics = harmonics
        if loads is not None:
            for i, ld in enumerate(loads):
                self.board.loads[i] = ld

    def true_power(self, ch):
        """W through board channel ch, export positive (contract)."""
        return -sensors.true_power(self.board.mains, self.board.loads[ch])

    def sleep_ms(self, ms):
        for ch in range(3):
            self.truth_mj[ch] += self.true_power(ch) * ms
        self.chip.advance(ms / 1000.0)
        self.clock.advance(ms)

    def run(self, seconds):
        """Main-loop stand-in: sleep a poll period, poll, for `seconds` of chip time."""
        poll = self.meter.cfg["poll_ms"]
        for _ in range(int(seconds * 1000 // poll)):
            self.sleep_ms(poll)
            self.meter.poll()
