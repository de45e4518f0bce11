"""A settable ticks clock with the ESP32-S3's wrap, for the bench rig and the tests (host only).

MicroPython's ticks_ms() counts modulo 2**30 on the ESP32-S3 (extmod/modtime.c); this clock
starts wherever a test puts it (a few seconds before the wrap, at 2**29, at 2**30 - 1) and
advances only when the simulation does, so the real driver sees the device's wrap. The
ticks_diff/ticks_add formulas are firmware/ticks.py's (modtime.c's).
"""

from ticks import HALF, PERIOD  # firmware/ticks.py: modtime.c at the ESP32 period
from ticks import ticks_add as _add
from ticks import ticks_diff as _diff


class WrapTicks:
    """ticks_ms / ticks_diff / ticks_add of a clock that only moves with advance(ms)."""

    def __init__(self, start_ms=0):
        self.start = start_ms % PERIOD
        self.elapsed = 0  # ms since start, a plain duration
        self.now = self.start

    def ticks_ms(self):
        return self.now

    @staticmethod
    def ticks_diff(a, b):
        return _diff(a, b)

    @staticmethod
    def ticks_add(t, delta):
        return _add(t, delta)

    @property
    def wraps(self):
        return (self.start + self.elapsed) // PERIOD

    def advance(self, ms):
        ms = int(ms)
        self.elapsed += ms
        while ms > 0:  # ticks_add refuses steps of half a period or more
            step = min(ms, HALF - 1)
            self.now = _add(self.now, step)
            ms -= step
