# Interleaved V/I bursts from the two ADC1 pins of the pin map.
#
# Free-running read_u16() pairs into one preallocated array('H'): no allocation per burst,
# so the GC never pauses a burst. The pair rate and the inter-channel delay (the I read
# happens one read-time after the V read) are measured at start-up and handed to the core,
# which corrects the delay by fractional-sample interpolation.
import array

import metering
import pinmap
from ticks import ticks_diff, ticks_us

try:
    import micropython

    _native = micropython.native
except (ImportError, AttributeError):

    def _native(f):
        return f


@_native
def _pairs(rv, ri, buf, n):
    for k in range(n):
        buf[2 * k] = rv()
        buf[2 * k + 1] = ri()


@_native
def _singles(rv, buf, n):
    for k in range(n):
        buf[2 * k] = rv()


def make_adcs():  # pragma: no cover - device only
    from machine import ADC, Pin

    atten = getattr(ADC, "ATTN_11DB", None)
    out = []
    for sig in ("ADC_V", "ADC_I"):
        out.append(ADC(Pin(pinmap.gpio(sig)), atten=atten))
    return out


class Sampler:
    def __init__(self, cfg, adcs=None, max_pairs_per_s=8000):
        if adcs is None:
            adcs = make_adcs()
        self.adc_v, self.adc_i = adcs
        self.cycles = cfg.get("burst_cycles", 10)
        # longest burst: cycles + 1.5 at 45 Hz at the highest plausible pair rate
        self.nmax = int(max_pairs_per_s * (self.cycles + 1.5) / 45) + 2
        self.buf = array.array("H", bytes(4 * self.nmax))
        self.fs, self.delay = self.timing()
        self.n = min(self.nmax, int(self.fs * (self.cycles + 1.5) / 45) + 2)

    def timing(self, n=400):
        """(pairs per second, I-after-V delay in sample periods), measured on this chip."""
        rv, ri, buf = self.adc_v.read_u16, self.adc_i.read_u16, self.buf
        t0 = ticks_us()
        _pairs(rv, ri, buf, n)
        tp = ticks_diff(ticks_us(), t0)
        t0 = ticks_us()
        _singles(rv, buf, n)
        ts = ticks_diff(ticks_us(), t0)
        tp = max(tp, 1)
        # a pair costs one loop + two reads, a single one loop + one read: difference = a read
        delay = (tp - ts) / tp if tp > ts else 0.5
        return n * 1e6 / tp, delay

    def burst(self):
        t0 = ticks_us()
        _pairs(self.adc_v.read_u16, self.adc_i.read_u16, self.buf, self.n)
        dt = ticks_diff(ticks_us(), t0)
        if dt > 0:
            # the pair rate of this very burst (Wi-Fi interrupts stretch some bursts)
            self.fs = self.n * 1e6 / dt
        return self.buf, self.n, self.fs, self.delay

    def measure(self, cal):
        buf, n, fs, d = self.burst()
        return metering.analyse(buf, n, fs, d, cal, self.cycles)
