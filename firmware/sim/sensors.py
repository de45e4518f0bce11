# ruff: noqa: UP031  (%-formatting, as in the chip simulator and the benchmark)
"""Sensor and grid models for the rev-B front end (host only, feeds sim/m90e32as.py).

Every signal is a sum of tones; each sensor is a per-tone complex gain (ratio, phase) plus the
effects a single calibration cannot remove: a CT whose ratio and phase move with current and
saturate above rating, voltage transformers whose lead falls with frequency (and, for the
AC-AC adapter, grows with voltage), a ZMPT101B module whose op-amp compresses. The figures and
where they come from are in impairments() (printed beside the benchmark table).

Direction convention of the board: each CT is clipped on so that power flowing from the
grid into the house reads positive on its channel (IMPORT); an inverter exporting through
CT1 therefore reads negative on channel A, exactly like export on CT2 (grid). The driver's
per-channel `sign` maps this to the contract (P > 0 is export).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FW = Path(__file__).resolve().parents[1]
if str(FW) not in sys.path:
    sys.path.insert(0, str(FW))

from chipcal import FRONTEND  # noqa: E402

TAU = 2 * math.pi

# Mains voltage harmonics (relative amplitude, phase deg): a typical European LV feeder,
# well inside the EN 50160 limits (3rd 5 %, 5th 6 %, 7th 5 %, 9th 1.5 %, 11th 3.5 %,
# 13th 3 %, 15th 0.5 %), flat-topped by rectifier loads.
V_HARMONICS = {3: (0.012, 180.0), 5: (0.028, 175.0), 7: (0.014, 10.0), 9: (0.004, 190.0),
               11: (0.007, 170.0), 13: (0.005, 20.0), 15: (0.002, 180.0)}
# Capacitor-input rectifier (SMPS, LED drivers) current spectrum relative to the fundamental:
# the shape of IEC 61000-3-2 class D equipment (3rd 80-90 %, 5th 60 %, 7th 40 %, ... ) as
# measured on PC power supplies; fundamental leads slightly (input EMI capacitor).
SMPS_HARMONICS = {3: (0.82, 180.0), 5: (0.58, 0.0), 7: (0.35, 180.0), 9: (0.16, 0.0),
                  11: (0.07, 180.0), 13: (0.06, 0.0), 15: (0.05, 180.0)}
SMPS_PHI_DEG = -8.0
# Grid-tie inverter output current: THD below the 5 % of IEC 61727 / VDE-AR-N 4105.
INVERTER_HARMONICS = {3: (0.012, 30.0), 5: (0.018, 200.0), 7: (0.010, 60.0), 11: (0.004, 0.0),
                      13: (0.003, 90.0)}


@dataclass
class Mains:
    vrms: float = 230.0  # total rms
    f: float = 50.0
    harmonics: dict = field(default_factory=lambda: dict(V_HARMONICS))

    def tones(self):
        """[(h, amplitude_peak, phase_rad)] with the total rms equal to vrms."""
        k = math.sqrt(1 + sum(a * a for a, _ in self.harmonics.values()))
        v1 = self.vrms / k
        out = [(1, v1 * math.sqrt(2), 0.0)]
        for h, (a, p) in sorted(self.harmonics.items()):
            out.append((h, v1 * a * math.sqrt(2), math.radians(p)))
        return out


@dataclass
class Load:
    """Current through one CT. kind: resistive, inductive, capacitive, smps, inverter."""

    irms: float = 0.0
    kind: str = "resistive"
    pf: float = 1.0  # fundamental displacement factor for inductive / capacitive
    export: bool = False  # power flows from the house to the grid through this CT

    def tones(self, mains: Mains):
        """[(h, amplitude_peak, phase_rad)] of the current, total rms = irms, import positive."""
        vt = {h: (a, p) for h, a, p in mains.tones()}
        raw = []
        if self.kind == "resistive":
            raw = [(h, a, p) for h, (a, p) in vt.items()]
        elif self.kind in ("inductive", "capacitive"):
            phi = math.acos(self.pf)  # R-L (lag) or R-C (lead) branch fixed at the fundamental
            x = math.tan(phi)
            for h, (a, p) in vt.items():
                xh = x * h if self.kind == "inductive" else x / h
                z = math.hypot(1.0, xh)
                ang = math.atan(xh)
                raw.append((h, a / z, p - ang if self.kind == "inductive" else p + ang))
        elif self.kind in ("smps", "inverter"):
            spec = SMPS_HARMONICS if self.kind == "smps" else INVERTER_HARMONICS
            phi1 = math.radians(SMPS_PHI_DEG if self.kind == "smps" else 0.0)
            raw = [(1, 1.0, -phi1)]
            for h, (a, p) in spec.items():
                raw.append((h, a, -h * phi1 + math.radians(p)))
        else:
            raise ValueError(f"unknown load kind {self.kind!r}")
        rms = math.sqrt(sum(a * a for _, a, _ in raw) / 2)
        k = self.irms / rms if rms > 0 else 0.0
        sign = -1.0 if self.export else 1.0
        return [(h, sign * a * k, p) for h, a, p in raw]


def true_power(mains: Mains, load: Load) -> float:
    """Active power (W) through the CT, import positive: sum over harmonics of Vh Ih cos."""
    vt = {h: (a, p) for h, a, p in mains.tones()}
    p = 0.0
    for h, a, ph in load.tones(mains):
        if h in vt:
            av, pv = vt[h]
            p += av * a / 2 * math.cos(pv - ph)
    return p


# --- sensors -------------------------------------------------------------------------------------


@dataclass
class CurrentTransformer:
    """YHDC SCT-013-000, 100 A : 50 mA, on the board's burden.

    Lead and ratio error come from the magnetising branch: the lead falls as 1/f and grows
    at low current (lower permeability); the ratio follows it. Above its rating the ferrite
    core saturates (OEM ratio test: +1.44 % at 100 A, +0.33 % at 120 A, -1.86 % at 140 A,
    -6.9 % at 160 A).
    """

    turns: float = FRONTEND["ct_turns"]
    ratio_err: float = 0.0  # unit error at i_ref
    lead_ref_deg: float = 2.9  # at i_ref, 50 Hz
    lead_slope: float = 0.06  # relative growth of the lead per decade below i_ref
    ratio_per_rad: float = 0.35  # ratio error change per radian of extra lead
    i_ref: float = 20.0
    hf_lag_deg_at_1k5: float = 5.0  # leakage/capacitance: OEM 5 deg at 1.5 kHz
    sat_a: float = 0.0027  # saturation: -a (I / i_knee)^n
    sat_n: float = 7.1
    i_knee: float = 100.0

    # unit-to-unit spread drawn per board (datasheet +-3 %, OEM test +0.7..+2 % at 10-100 A;
    # OEM phase test at 22 / 120 ohm, scaled to this burden; knee around the 100 A rating)
    SPREAD = {"ratio_err": (-0.02, 0.02), "lead_ref_deg": (2.4, 3.4), "lead_slope": (0.03, 0.10),
              "i_knee": (95.0, 110.0)}

    @classmethod
    def draw(cls, rng: np.random.Generator) -> CurrentTransformer:
        return cls(**{k: rng.uniform(*r) for k, r in cls.SPREAD.items()})

    def saturation(self, irms: float) -> float:
        """Relative ratio loss of the ferrite core at irms (0 far below the knee)."""
        return self.sat_a * (max(irms, 0.05) / self.i_knee) ** self.sat_n

    def lead_deg(self, irms: float, f: float) -> float:
        i = max(irms, 0.05)
        lead50 = self.lead_ref_deg * (1 + self.lead_slope * math.log10(self.i_ref / i))
        return lead50 * 50.0 / f - self.hf_lag_deg_at_1k5 * f / 1500.0

    def gain(self, irms: float) -> float:
        """Secondary amps per primary amp at the fundamental (50 Hz lead used for the ratio)."""
        i = max(irms, 0.05)
        extra = math.radians(self.lead_deg(i, 50.0) - self.lead_deg(self.i_ref, 50.0))
        return (1 + self.ratio_err - self.ratio_per_rad * extra - self.saturation(i)) / self.turns


@dataclass
class ZMPT101BModule:
    """ZMPT101B 2 mA : 2 mA transformer module with its LM358 stage, fed from the 5 V rail.

    Transformer: phase error <= 20' (0.33 deg) at rated current, linearity <= 0.2 %
    (ZMPT101B datasheet). Module trimmer sets the ratio (here ~0.55 V rms at 230 V); the
    LM358 output stage swings to Vcc - 1.5 V only, so it compresses near the top.
    """

    v_per_v: float = FRONTEND["zmpt101b_v_per_v"]
    lead_deg50: float = 0.25
    cubic: float = 0.001  # relative compression at 230 V peak
    v_high: float = 1.0  # headroom above the bias before the LM358 clips (5 V - 1.5 V - 2.5 V)

    RATIO_TOL = 0.05  # the trimmer's setting
    SPREAD = {"lead_deg50": (0.1, 0.33), "cubic": (0.0005, 0.002)}

    @classmethod
    def draw(cls, rng: np.random.Generator) -> ZMPT101BModule:
        tol = cls.RATIO_TOL
        return cls(v_per_v=FRONTEND["zmpt101b_v_per_v"] * rng.uniform(1 - tol, 1 + tol),
                   **{k: rng.uniform(*r) for k, r in cls.SPREAD.items()})


@dataclass
class ACAdapter:
    """9 V AC-AC wall adapter (OEM report, Ideal Power 77DB-06-09): lead 4 deg at 185 V rising
    to 7.5 deg at 253 V as the core saturates; open-circuit 11.36 V at 240 V."""

    v_per_v: float = FRONTEND["adapter_v_per_v"]
    lead_at_185: float = 4.0
    lead_at_253: float = 7.5

    LEAD_AT_185 = (3.5, 4.5)
    LEAD_RISE = (3.0, 4.0)  # degrees more at 253 V than at 185 V
    RATIO_TOL = 0.03

    @classmethod
    def draw(cls, rng: np.random.Generator) -> ACAdapter:
        lo = rng.uniform(*cls.LEAD_AT_185)
        tol = cls.RATIO_TOL
        return cls(v_per_v=FRONTEND["adapter_v_per_v"] * rng.uniform(1 - tol, 1 + tol), lead_at_185=lo,
                   lead_at_253=lo + rng.uniform(*cls.LEAD_RISE))

    def lead_deg(self, vrms: float, f: float) -> float:
        x = (vrms - 185.0) / (253.0 - 185.0)
        return (self.lead_at_185 + (self.lead_at_253 - self.lead_at_185) * x) * 50.0 / f


def rc_lowpass(f: float, tau: float) -> complex:
    return 1.0 / (1.0 + 1j * TAU * f * tau)


def rc_highpass(f: float, tau: float) -> complex:
    s = 1j * TAU * f * tau
    return s / (1.0 + s)


def _par(a: complex, b: complex) -> complex:
    return a * b / (a + b)


def _zc(f: float, c: float) -> complex:
    return 1.0 / (1j * TAU * f * c)


def zmpt_path(f: float, couple_c: float = None, divider: float = None,
              aa_c: float = None) -> complex:
    """Module output to the chip's V pins: the coupling capacitor into the divider, whose
    midpoint drives the anti-alias filter (its load, and the divider's source resistance)."""
    couple_c = ZMPT_COUPLE_C if couple_c is None else couple_c
    divider = ZMPT_DIVIDER if divider is None else divider
    aa_c = AA_C if aa_c is None else aa_c
    r_bot = ZMPT_R_TOP * divider / (1.0 - divider)
    z_aa = AA_R + _zc(f, aa_c)
    z_mid = _par(r_bot, z_aa)
    return z_mid / (_zc(f, couple_c) + ZMPT_R_TOP + z_mid) * _zc(f, aa_c) / z_aa


def adapter_path(f: float, divider: float = None, aa_c: float = None) -> complex:
    """Adapter output to the chip's V pins: the divider, the lag network, the anti-alias."""
    divider = ADAPTER_DIVIDER if divider is None else divider
    aa_c = AA_C if aa_c is None else aa_c
    r_bot = ADAPTER_R_TOP * divider / (1.0 - divider)
    z_aa = AA_R + _zc(f, aa_c)
    z_lag = _par(_zc(f, ADAPTER_LAG_C), z_aa)
    z_mid = _par(r_bot, ADAPTER_LAG_R + z_lag)
    return (z_mid / (ADAPTER_R_TOP + z_mid) * z_lag / (ADAPTER_LAG_R + z_lag)
            * _zc(f, aa_c) / z_aa)


# Board values, part by part as built (hardware/skidl/metering.py; the front end is explained
# in docs/hardware/metering-chip.md; tests/firmware/test_sim_frontend.py holds every one to the
# netlist and the voltage paths' phase to the design assertions' nodal analysis): 2 x 3.3 ohm
# burden with the centre tap on AGND, 1 k + 18 nF anti-alias per leg. ZMPT101B path: C55
# 2.2 uF coupling into the R60 12 k / R61 10 k divider. Adapter path: R62 100 k / R63 3.3 k
# divider, then the R64 3.3 k + C56 18 nF lag. Both then into the R65 1 k + C57 18 nF
# anti-alias, which loads the divider: its source resistance adds to the filter's lag.
BURDEN_OHM = FRONTEND["burden_ohm"]
AA_R, AA_C = 1e3, 18e-9            # R65/C57 (voltage), R/C of each current leg
AA_TAU = AA_R * AA_C
ZMPT_COUPLE_C = 2.2e-6             # C55
ZMPT_R_TOP = 12e3                  # R60 (R61 follows from the divider ratio)
ZMPT_DIVIDER = FRONTEND["zmpt101b_divider"]
ADAPTER_R_TOP = 100e3              # R62 (R63 follows from the divider ratio)
ADAPTER_DIVIDER = FRONTEND["adapter_divider"]
ADAPTER_LAG_R, ADAPTER_LAG_C = 3.3e3, 18e-9  # R64, C56
BURDEN_TOL = 0.01  # 1 %, 25 ppm
AA_TAU_TOL = 0.06  # 1 % resistors, 5 % NP0 capacitors [AN Table-1]
DIVIDER_TOL = 0.01
COUPLE_TOL = 0.2  # X7R 2.2 uF under DC bias
CROSSTALK_DB = -90.0  # voltage trace into each current input (estimate, no layout yet)
CROSSTALK_DEG = 80.0


@dataclass
class Board:
    """One assembled rev-B board: part tolerances drawn once from a seed."""

    seed: int = 1
    voltage_sensor: str = "zmpt101b"  # or "adapter"
    cts: list = field(default_factory=list)
    zmpt: ZMPT101BModule = field(default_factory=ZMPT101BModule)
    adapter: ACAdapter = field(default_factory=ACAdapter)
    burden: list = field(default_factory=lambda: [BURDEN_OHM, BURDEN_OHM, BURDEN_OHM])
    aa_tau_i: list = field(default_factory=lambda: [AA_TAU, AA_TAU, AA_TAU])
    aa_c_v: float = AA_C  # the voltage anti-alias capacitor (its tolerance carries the tau's)
    divider: float = ZMPT_DIVIDER
    couple_c: float = ZMPT_COUPLE_C
    crosstalk: float = 10 ** (CROSSTALK_DB / 20)  # voltage trace into each current input
    crosstalk_deg: float = CROSSTALK_DEG
    mains: Mains = field(default_factory=Mains)
    loads: list = field(default_factory=lambda: [Load(), Load(), Load()])

    @classmethod
    def draw(cls, seed: int = 1, voltage_sensor: str = "zmpt101b") -> Board:
        r = np.random.default_rng(seed)
        b = cls(seed=seed, voltage_sensor=voltage_sensor)
        b.cts = [CurrentTransformer.draw(r) for _ in range(3)]
        b.zmpt = ZMPT101BModule.draw(r)
        b.adapter = ACAdapter.draw(r)
        b.burden = [BURDEN_OHM * (1 + r.uniform(-BURDEN_TOL, BURDEN_TOL)) for _ in range(3)]
        b.aa_tau_i = [AA_TAU * (1 + r.uniform(-AA_TAU_TOL, AA_TAU_TOL)) for _ in range(3)]
        b.aa_c_v = AA_C * (1 + r.uniform(-AA_TAU_TOL, AA_TAU_TOL))
        b.divider = (ZMPT_DIVIDER if voltage_sensor == "zmpt101b" else ADAPTER_DIVIDER) * (
            1 + r.uniform(-DIVIDER_TOL, DIVIDER_TOL))
        b.couple_c = ZMPT_COUPLE_C * (1 + r.uniform(-COUPLE_TOL, COUPLE_TOL))
        return b

    # -- pin signals -------------------------------------------------------------------------
    def voltage_tones(self):
        """Tones at the V pins (volts peak, rad): sensor, coupling/divider, anti-alias."""
        m = self.mains
        z, ad = self.zmpt, self.adapter
        # the chip asks for them a dozen times per 0.1 s block; they change only with these
        key = (m.vrms, m.f, tuple(sorted(m.harmonics.items())), self.voltage_sensor, z.v_per_v,
               z.lead_deg50, ad.v_per_v, ad.lead_at_185, ad.lead_at_253, self.divider,
               self.couple_c, self.aa_c_v)
        cached = self.__dict__.get("_vt")
        if cached and cached[0] == key:
            return cached[1]
        out = []
        for h, a, p in m.tones():
            f = h * m.f
            if self.voltage_sensor == "zmpt101b":
                g = self.zmpt.v_per_v * np.exp(1j * math.radians(self.zmpt.lead_deg50 * 50.0 / f))
                g *= zmpt_path(f, self.couple_c, self.divider, self.aa_c_v)
            else:
                lead = self.adapter.lead_deg(m.vrms, m.f) * m.f / f
                g = self.adapter.v_per_v * np.exp(1j * math.radians(lead))
                g *= adapter_path(f, self.divider, self.aa_c_v)
            out.append((f, a * abs(g), p + float(np.angle(g))))
        self._vt = (key, out)
        return out

    def current_tones(self, ch: int):
        m = self.mains
        load = self.loads[ch]
        ct = self.cts[ch]
        out = []
        gain = ct.gain(load.irms)
        for h, a, p in load.tones(m):
            f = h * m.f
            g = gain * self.burden[ch] * np.exp(1j * math.radians(ct.lead_deg(load.irms, f)))
            g *= rc_lowpass(f, self.aa_tau_i[ch])
            out.append((f, a * abs(g), p + float(np.angle(g))))
        # capacitive pick-up of the voltage trace (-90 dB, leading)
        for f, a, p in self.voltage_tones()[:1]:
            out.append((f, a * self.crosstalk, p + math.radians(self.crosstalk_deg)))
        return out

    def pin(self, src: str, t: np.ndarray) -> np.ndarray:
        """Differential pin voltage of ADC input 'U0'..'U2' or 'I0'..'I2' at times t (s)."""
        if src[0] == "U":
            tones = self.voltage_tones()
            x = _sum_tones(tones, t, self.mains.f)
            if self.voltage_sensor == "zmpt101b":
                # LM358 compression, referred to the pin through the (linear) divider
                vp = self.mains.vrms * math.sqrt(2) * self.zmpt.v_per_v * self.divider
                x = x - self.zmpt.cubic * x ** 3 / vp ** 2
                x = np.minimum(x, self.zmpt.v_high * self.divider)
            return x
        ch = int(src[1])
        return _sum_tones(self.current_tones(ch), t, self.mains.f)


def _sum_tones(tones, t, f0):
    x = np.zeros_like(t)
    for f, a, p in tones:
        x += a * np.sin(TAU * f * t + p)
    return x


def _pm(lo, hi, scale=1.0, unit=""):
    return "%g..%g%s" % (lo * scale, hi * scale, unit)


def impairments(freqs=(50.0,), i_top=120.0):
    """[(part, text)] of what the sensor models do, written from their own parameters, with
    each figure's source. freqs: the mains frequencies the benchmark ran at; i_top: its
    highest current (A), where the CT's saturation is quoted as well."""
    ct = CurrentTransformer
    sp = ct.SPREAD
    knees = sp["i_knee"]
    sat = {a: [100 * ct(i_knee=k).saturation(a) for k in (knees[1], knees[0])]
           for a in (i_top, 100.0, 120.0)}
    h = sorted(V_HARMONICS.items())
    thd = 100 * math.sqrt(sum(a * a for _, (a, _) in h))
    harm = ", ".join("%d: %g %%" % (n, 100 * a) for n, (a, _) in h)
    smps = ", ".join("%d: %g %%" % (n, 100 * a) for n, (a, _) in sorted(SMPS_HARMONICS.items()))
    z = ZMPT101BModule
    ad = ACAdapter
    rise = ad.LEAD_RISE
    return [
        ("Mains", "harmonics %d-%d (%s; THD %.1f %%), inside EN 50160; frequency %s Hz per row"
         % (h[0][0], h[-1][0], harm, thd, " / ".join("%g" % f for f in sorted(set(freqs))))),
        ("SMPS load", "capacitor-input rectifier, IEC 61000-3-2 class D shape (%s), fundamental "
         "leading %g deg" % (smps, -SMPS_PHI_DEG)),
        ("CT (SCT-013-000, %g turns)" % ct.turns,
         "unit ratio error %s %% (datasheet +-3 %%, OEM test +0.7..+2 %%); lead %s deg at %g A on "
         "%g ohm, falling as 1/f, growing %s %% per decade below %g A (OEM phase test, 22/120 ohm); "
         "ratio follows the lead (%g per rad); ferrite saturation %s %% at %g A, %s %% at 100 A and "
         "%s %% at 120 A for a knee at %s A (OEM ratio test: -0.1 %% from 90 to 100 A, -1.1 %% from 100 to 120 A); "
         "leakage lag %g deg at 1.5 kHz"
         % (_pm(*sp["ratio_err"], 100), _pm(*sp["lead_ref_deg"]), ct.i_ref, BURDEN_OHM,
            _pm(*sp["lead_slope"], 100), ct.i_ref, ct.ratio_per_rad,
            "%.2f to %.2f" % (-sat[i_top][1], -sat[i_top][0]), i_top,
            "%.2f to %.2f" % (-sat[100.0][1], -sat[100.0][0]),
            "%.2f to %.2f" % (-sat[120.0][1], -sat[120.0][0]), _pm(*knees), ct.hf_lag_deg_at_1k5)),
        ("ZMPT101B module", "ratio +-%g %% (trimmer); lead %s deg at 50 Hz falling as 1/f "
         "(datasheet <= 20'); LM358 compression %s %% at the peak (datasheet linearity <= 0.2 %%), "
         "clipping above Vcc - 1.5 V" % (100 * z.RATIO_TOL, _pm(*z.SPREAD["lead_deg50"]),
                                          _pm(*z.SPREAD["cubic"], 100))),
        ("AC-AC adapter (9 V)", "lead %s deg at 185 V rising by %s deg to 253 V (%.3f..%.3f deg/V), "
         "falling as 1/f (OEM Ideal Power report); ratio +-%g %%"
         % (_pm(*ad.LEAD_AT_185), _pm(*rise), rise[0] / 68.0, rise[1] / 68.0, 100 * ad.RATIO_TOL)),
        ("Board", "burden +-%g %%, anti-alias 1 k / 18 nF with +-%g %% tau tolerance per channel "
         "(AN Table-1); coupling capacitor +-%g %%; divider +-%g %%; voltage-to-current crosstalk "
         "%g dB at %g deg (estimate)" % (100 * BURDEN_TOL, 100 * AA_TAU_TOL, 100 * COUPLE_TOL,
                                         100 * DIVIDER_TOL, CROSSTALK_DB, CROSSTALK_DEG)),
    ]
