# Metering core: pure Python, identical under CPython (tests, benchmark) and MicroPython (device).
#
# Input is one burst of interleaved raw ADC samples [v0, i0, v1, i1, ...] taken at fs pairs/s,
# the current sample of each pair taken `delay` sample periods after the voltage sample.
# Everything is computed over a whole number of mains cycles, delimited by rising zero
# crossings of the voltage, with fractional weights on the two edge samples so the window is
# exactly N periods long even though crossings fall between samples.
#
# Numerics are chosen for 32-bit floats (ESP32): the DC estimate is subtracted with an
# integer sum first so squares never carry the ~2^15 ADC mid-scale offset.
import math

try:  # the native emitter roughly doubles the loop speed on the ESP32; CPython has no such thing
    import micropython

    _native = micropython.native
except (ImportError, AttributeError):

    def _native(f):
        return f


class Cal:
    """Calibration constants (see calibration.py for how they are obtained).

    v_gain, i_gain: volts / amps per ADC count (u16 domain). i_gain's sign sets the power
    direction: P > 0 is export (inverter delivering), per the contract.
    phase_deg: how much later (in degrees at phase_hz, the calibration frequency) the current
    chain shows an event than the voltage chain, beyond the known inter-channel sampling delay.
    The RC filters and sensors behave as time delays, so it is applied as a time shift and stays
    right at 50 and 60 Hz.
    v_offset, i_offset: RMS noise floors removed quadratically; p_offset: W removed from P.
    """

    def __init__(self, v_gain, i_gain, phase_deg=0.0, v_offset=0.0, i_offset=0.0, p_offset=0.0,
                 phase_hz=50.0):
        self.v_gain = v_gain
        self.phase_hz = phase_hz
        self.i_gain = i_gain
        self.phase_deg = phase_deg
        self.v_offset = v_offset
        self.i_offset = i_offset
        self.p_offset = p_offset

    def to_dict(self):
        return {
            "v_gain": self.v_gain,
            "i_gain": self.i_gain,
            "phase_deg": self.phase_deg,
            "v_offset": self.v_offset,
            "i_offset": self.i_offset,
            "p_offset": self.p_offset,
            "phase_hz": self.phase_hz,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(
            d["v_gain"],
            d["i_gain"],
            d.get("phase_deg", 0.0),
            d.get("v_offset", 0.0),
            d.get("i_offset", 0.0),
            d.get("p_offset", 0.0),
            d.get("phase_hz", 50.0),
        )


class Result:
    """One burst: RMS values, real/apparent/reactive power, PF, frequency, window length."""

    def __init__(self, vrms, irms, p, s, q, pf, freq, cycles, seconds):
        self.vrms = vrms
        self.irms = irms
        self.p = p
        self.s = s
        self.q = q
        self.pf = pf
        self.freq = freq
        self.cycles = cycles
        self.seconds = seconds

    def __repr__(self):
        return "Result(V=%.3f I=%.4f P=%.3f S=%.3f PF=%.4f f=%s)" % (
            self.vrms, self.irms, self.p, self.s, self.pf, self.freq)


@_native
def rising_crossings(buf, n, ov, hyst):
    """Fractional sample indices of rising zero crossings of buf[0::2] - ov, with hysteresis.

    The signal must fall below -hyst to re-arm, so noise and harmonics near zero cannot
    produce extra crossings.
    """
    out = []
    armed = False
    prev = buf[0] - ov
    for k in range(1, n):
        x = buf[2 * k] - ov
        if armed:
            if x >= 0.0 and prev < 0.0:
                out.append(k - 1 + (-prev) / (x - prev))
                armed = False
        elif x < -hyst:
            armed = True
        prev = x
    return out


@_native
def _sums(buf, lo, hi, n0, a, nq, aq, ov, oi):
    """Weighted sums over sample window [lo, hi] (fractional), voltage shifted by n0 + a samples.

    Sample k stands for the interval [k - 0.5, k + 0.5]; its weight is the overlap with the
    window, so only the two edge samples get a weight below 1 and sum(w) == hi - lo.
    The quadrature voltage (shift nq + aq) gives reactive power for the phase calibration.
    """
    k0 = int(math.floor(lo + 0.5))
    k1 = int(math.floor(hi + 0.5))
    b = 1.0 - a
    bq = 1.0 - aq
    sw = sv = si = svv = sii = svi = sqi = 0.0
    for k in range(k0, k1 + 1):
        w = 1.0
        if k == k0:
            w = k0 + 0.5 - lo
        if k == k1:
            w = w - (k1 + 0.5 - hi)
        j = 2 * (k + n0)
        v = b * buf[j] + a * buf[j + 2] - ov
        i = buf[2 * k + 1] - oi
        jq = 2 * (k + nq)
        vq = bq * buf[jq] + aq * buf[jq + 2] - ov
        sw += w
        sv += w * v
        si += w * i
        svv += w * v * v
        sii += w * i * i
        svi += w * v * i
        sqi += w * vq * i
    return sw, sv, si, svv, sii, svi, sqi


def analyse(buf, n, fs, delay, cal, max_cycles=0):
    """Measure one burst. buf: interleaved raw samples (>= 2n entries), fs: pairs per second,
    delay: I sample lag after the V sample in sample periods. Returns a Result.

    max_cycles > 0 limits the window (e.g. 10 cycles = 200 ms at 50 Hz, as IEC 61000-4-30).
    """
    # integer DC estimate first: exact, and keeps the float sums small
    sv = 0
    si = 0
    vmin = vmax = buf[0]
    for k in range(n):
        x = buf[2 * k]
        sv += x
        si += buf[2 * k + 1]
        if x < vmin:
            vmin = x
        elif x > vmax:
            vmax = x
    ov = sv / n
    oi = si / n
    hyst = 0.1 * (vmax - vmin) / 2
    xs = rising_crossings(buf, n, ov, hyst) if hyst > 0 else []

    spc = 0.0
    cycles = 0
    if len(xs) >= 2:
        spc = (xs[-1] - xs[0]) / (len(xs) - 1)
    # total voltage shift in samples: inter-channel delay plus the calibrated chain phase
    shift = delay - cal.phase_deg / 360.0 / cal.phase_hz * fs
    qshift = shift - spc / 4.0
    n0 = int(math.floor(shift))
    nq = int(math.floor(qshift))
    a = shift - n0
    aq = qshift - nq
    # valid window for sample index k: k + n0 and k + nq and +1 must stay inside the burst
    kmin = max(0, -n0, -nq) + 0.5
    kmax = min(n - 1, n - 2 - n0, n - 2 - nq) - 0.5
    lo = hi = 0.0
    if spc > 0:
        # crossings of the shifted voltage lie at x - shift; take the longest whole-cycle span
        c = [x - shift for x in xs if kmin <= x - shift <= kmax]
        if len(c) >= 2:
            cycles = len(c) - 1
            if max_cycles and cycles > max_cycles:
                cycles = max_cycles
            lo = c[0]
            hi = c[cycles]
    if cycles == 0:
        # no usable mains voltage: the whole burst (RMS of noise, P meaningless but harmless)
        lo, hi = kmin, kmax
        if hi <= lo:
            return Result(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, 0, 0.0)
    sw, sv, si, svv, sii, svi, sqi = _sums(buf, lo, hi, n0, a, nq, aq, ov, oi)
    mv = sv / sw
    mi = si / sw
    vv = svv / sw - mv * mv
    ii = sii / sw - mi * mi
    vi = svi / sw - mv * mi
    qi = sqi / sw - mv * mi
    if vv < 0:
        vv = 0.0
    if ii < 0:
        ii = 0.0
    if spc > 0:
        # linear interpolation attenuates the shifted voltage's fundamental by |1 - a + a e^jw|
        cw = 1.0 - math.cos(2.0 * math.pi / spc)
        hv = math.sqrt(1.0 - 2.0 * a * (1.0 - a) * cw)
        hq = math.sqrt(1.0 - 2.0 * aq * (1.0 - aq) * cw)
        vv = vv / (hv * hv)
        vi = vi / hv
        qi = qi / hq
    vg = cal.v_gain
    ig = cal.i_gain
    vr2 = vv * vg * vg - cal.v_offset * cal.v_offset
    ir2 = ii * ig * ig - cal.i_offset * cal.i_offset
    vrms = math.sqrt(vr2) if vr2 > 0 else 0.0
    irms = math.sqrt(ir2) if ir2 > 0 else 0.0
    p = vi * vg * ig
    q = qi * vg * ig
    if cal.p_offset:
        # the offset is a magnitude (crosstalk/noise); it must not flip the sign
        p = p - cal.p_offset if p > 0 else p + cal.p_offset
    s = vrms * irms
    pf = abs(p) / s if s > 0 else 0.0
    if pf > 1.0:
        pf = 1.0
    freq = None
    seconds = (hi - lo) / fs
    if cycles:
        freq = cycles / seconds
    return Result(vrms, irms, p, s, q, pf, freq, cycles, seconds)


def nominal_cal(c):
    """Cal from datasheet values in a config 'cal' dict (before any calibration).

    adc_fullscale_v: pin voltage at full scale (ESP32-S3, 12 dB attenuation, ~3.1 V);
    v_ratio: mains volts per volt out of the ZMPT101B module (trimmed to 0.70 V rms at 230 V),
    v_divider: the board's divider from the module to the pin;
    i_sensitivity_v_per_a: ACS712-5A, 0.185 V/A; i_divider: the divider ratio onto the pin.
    """
    per_count = c["adc_fullscale_v"] / 65535.0
    vg = per_count * c["v_ratio"] / c.get("v_divider", 1.0)
    ig = per_count / (c["i_divider"] * c["i_sensitivity_v_per_a"])
    if c.get("i_invert"):
        ig = -ig
    return Cal(vg, ig)


class Averager:
    """Combines the bursts of one reporting interval into one reading's values."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.n = 0
        self.v2 = 0.0
        self.i2 = 0.0
        self.p = 0.0
        self.s = 0.0
        self.f = 0.0
        self.nf = 0

    def add(self, r):
        self.n += 1
        self.v2 += r.vrms * r.vrms
        self.i2 += r.irms * r.irms
        self.p += r.p
        self.s += r.s
        if r.freq:
            self.f += r.freq
            self.nf += 1

    def values(self):
        """(vrms, irms, p, pf, freq or None) over the interval."""
        if not self.n:
            return None
        n = self.n
        p = self.p / n
        s = self.s / n
        pf = abs(p) / s if s > 0 else 0.0
        return (
            math.sqrt(self.v2 / n),
            math.sqrt(self.i2 / n),
            p,
            pf if pf < 1.0 else 1.0,
            self.f / self.nf if self.nf else None,
        )
