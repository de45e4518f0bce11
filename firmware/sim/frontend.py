"""Simulated analog front end + ESP32-S3 ADC (host only: the one thing that cannot exist here).

It produces what machine.ADC.read_u16() would return on the board, interleaved V/I, for a
given mains scenario, from physical models of the parts:

* ZMPT101B module (3.3 V supply, mid-rail bias): voltage ratio with a per-unit error, a small
  phase lead of the transformer and a slight core non-linearity.
* ACS712-5A (5 V supply): 185 mV/A around Vcc/2 (per-unit sensitivity and zero-current offset
  errors), ~21 mV peak-to-peak output noise (sigma 3.5 mV), then the 10k/15k divider.
* The ZMPT101B output goes through the board's 1k/10k divider.
* RC anti-alias filters on both channels, modelled as group delays (first-order RC at 50 Hz is
  a pure delay to within 0.01 %), so the chains differ by 0.2..1.2 degrees at the fundamental.
* ESP32-S3 ADC1 at 12 dB attenuation: gain and offset errors, a smooth S-shaped INL that
  grows towards the rails, clipping, 12-bit quantisation, scaled to u16 as read_u16() does.
* Sampling: free-running interleaved reads, the current sample half a pair period after the
  voltage sample, a random start phase.

Ground truth is computed analytically from the harmonic content (P = sum Vh Ih cos phi_h).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ADC_FS_NOMINAL = 3.1  # V at code 4095, what nominal_cal assumes
ZMPT_V_PER_V_NOMINAL = 0.70 / 230.0
ACS_SENS_NOMINAL = 0.185
DIVIDER_NOMINAL = 0.6  # 10k / 15k
V_DIVIDER_NOMINAL = 10.0 / 11.0  # 1k / 10k
I_RANGE_A = 5.0  # 100 % of range, A rms (ACS712-5A)


@dataclass
class Unit:
    """One manufactured board: part tolerances drawn once from a seeded RNG."""

    seed: int = 1
    zmpt_gain: float = ZMPT_V_PER_V_NOMINAL
    zmpt_bias: float = 1.65
    zmpt_lead_deg: float = 0.0
    zmpt_cubic: float = 0.0  # relative compression at full scale
    acs_sens: float = ACS_SENS_NOMINAL
    acs_zero: float = 2.5
    acs_noise_v: float = 0.0035  # sigma, ~21 mV p-p
    divider: float = DIVIDER_NOMINAL
    v_divider: float = V_DIVIDER_NOMINAL
    v_rc_delay_s: float = 0.0
    i_rc_delay_s: float = 0.0
    adc_fs: float = ADC_FS_NOMINAL
    adc_offset_v: float = 0.0
    adc_inl_lsb: float = 0.0
    v_noise_v: float = 0.0006

    @classmethod
    def draw(cls, seed: int = 1) -> Unit:
        r = np.random.default_rng(seed)
        u = cls(seed=seed)
        u.zmpt_gain = ZMPT_V_PER_V_NOMINAL * (1 + r.uniform(-0.03, 0.03))  # trimmer setting
        u.zmpt_bias = 1.65 * (1 + r.uniform(-0.01, 0.01))
        u.zmpt_lead_deg = r.uniform(0.1, 0.4)
        u.zmpt_cubic = r.uniform(0.0005, 0.0015)
        u.acs_sens = ACS_SENS_NOMINAL * (1 + r.uniform(-0.015, 0.015))
        u.acs_zero = 2.5 + r.uniform(-0.02, 0.02)
        u.divider = DIVIDER_NOMINAL * (1 + r.uniform(-0.01, 0.01))
        u.v_divider = V_DIVIDER_NOMINAL * (1 + r.uniform(-0.01, 0.01))
        # anti-alias RCs: 0.9k*100n on V (90 us), 6k*10n on I (60 us), 5 % capacitors; the
        # current chain leads by 0.2..1.2 degrees at 50 Hz in total
        u.v_rc_delay_s = 90e-6 * (1 + r.uniform(-0.05, 0.05))
        diff_deg = -r.uniform(0.2, 1.2)
        u.i_rc_delay_s = u.v_rc_delay_s + (diff_deg - u.zmpt_lead_deg) / 360.0 / 50.0
        u.adc_fs = ADC_FS_NOMINAL * (1 + r.uniform(-0.02, 0.02))
        u.adc_offset_v = r.uniform(-0.015, 0.015)
        u.adc_inl_lsb = r.uniform(4.0, 8.0)
        return u

    def chain_phase_deg(self, f: float = 50.0) -> float:
        """Current-chain lag relative to the voltage chain at f (what calibration must find)."""
        lead_s = self.zmpt_lead_deg / 360.0 / 50.0
        return (self.i_rc_delay_s - self.v_rc_delay_s + lead_s) * 360.0 * f

    def adc(self, vpin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = (vpin - self.adc_offset_v) / self.adc_fs * 4095.0
        u = np.clip(x / 4095.0, 0.0, 1.0)
        # S-shaped INL: flat mid-scale, bending towards the rails as the raw ESP32 ADC does
        x = x + self.adc_inl_lsb * (2 * u - 1) ** 3 - 0.4 * self.adc_inl_lsb * np.sin(2 * np.pi * u)
        x = x + rng.normal(0.0, 0.35, x.shape)  # ADC's own noise, ~1 LSB p-p
        code = np.clip(np.floor(x + 0.5), 0, 4095).astype(np.int64)
        return code * 65535 // 4095


@dataclass
class Scenario:
    vrms: float = 230.0
    irms: float = 2.0
    f: float = 50.0
    phi_deg: float = 0.0  # current lags voltage by phi (inductive > 0, capacitive < 0)
    export: bool = False  # True: power flows out of the inverter (P > 0 per contract)
    v_harm: dict = field(default_factory=lambda: {3: (0.02, 10.0), 5: (0.015, 200.0)})
    i_harm: dict = field(default_factory=lambda: {3: (0.05, 30.0), 5: (0.03, 120.0)})

    def truth(self) -> dict:
        """Exact RMS and power; harmonic h of the current lags by h*phi + its own angle."""
        v1 = self.vrms / math.sqrt(1 + sum(a * a for a, _ in self.v_harm.values()))
        i1 = self.irms / math.sqrt(1 + sum(a * a for a, _ in self.i_harm.values()))
        sign = 1.0 if self.export else -1.0
        p = v1 * i1 * math.cos(math.radians(self.phi_deg))
        for h, (av, pv) in self.v_harm.items():
            if h in self.i_harm:
                ai, pi = self.i_harm[h]
                p += av * v1 * ai * i1 * math.cos(math.radians(pv - (pi - h * self.phi_deg)))
        return {"vrms": self.vrms, "irms": self.irms, "p": sign * p, "f": self.f,
                "s": self.vrms * self.irms}

    def waves(self, t_v: np.ndarray, t_i: np.ndarray):
        v1 = self.vrms / math.sqrt(1 + sum(a * a for a, _ in self.v_harm.values()))
        i1 = self.irms / math.sqrt(1 + sum(a * a for a, _ in self.i_harm.values()))
        w = 2 * math.pi * self.f
        phi = math.radians(self.phi_deg)
        v = math.sqrt(2) * v1 * np.sin(w * t_v)
        for h, (a, p) in self.v_harm.items():
            v += math.sqrt(2) * v1 * a * np.sin(h * w * t_v + math.radians(p))
        i = math.sqrt(2) * i1 * np.sin(w * t_i - phi)
        for h, (a, p) in self.i_harm.items():
            i += math.sqrt(2) * i1 * a * np.sin(h * (w * t_i - phi) + math.radians(p))
        # the ACS712 is wired so that current drawn by the house (import) reads positive
        return v, (i if not self.export else -i)


# Timing of free-running read_u16() pairs on the ESP32-S3 at 240 MHz with the native emitter
FS_PAIRS = 5120.0
DELAY = 0.5


def burst(unit: Unit, sc: Scenario, rng: np.random.Generator, n: int | None = None,
          fs: float = FS_PAIRS, delay: float = DELAY, cycles: int = 10):
    """One interleaved burst of raw u16 samples; returns (list, n, fs_reported, delay)."""
    if n is None:
        n = int(fs * (cycles + 1.5) / sc.f) + 1
    t0 = rng.uniform(0, 1.0 / sc.f)
    k = np.arange(n)
    tv = t0 + k / fs
    ti = tv + delay / fs
    # the chain delays: what the pin shows at t is the signal from t - delay
    zlead = unit.zmpt_lead_deg / 360.0 / 50.0
    v_m, _ = sc.waves(tv - unit.v_rc_delay_s + zlead, tv)
    _, i_m = sc.waves(ti, ti - unit.i_rc_delay_s)
    zv = unit.zmpt_gain * v_m
    full = unit.zmpt_gain * 230 * math.sqrt(2)
    zv = zv - unit.zmpt_cubic * zv**3 / full**2
    vpin = (unit.zmpt_bias + zv + rng.normal(0.0, unit.v_noise_v, n)) * unit.v_divider
    acs = unit.acs_zero + unit.acs_sens * i_m + rng.normal(0.0, unit.acs_noise_v, n)
    ipin = acs * unit.divider
    out = np.empty(2 * n, dtype=np.int64)
    out[0::2] = unit.adc(vpin, rng)
    out[1::2] = unit.adc(ipin, rng)
    return out.tolist(), n, fs, delay


def nominal_config() -> dict:
    """The datasheet defaults the firmware's config.py ships (checked equal in a test)."""
    return {"adc_fullscale_v": ADC_FS_NOMINAL, "v_ratio": 1.0 / ZMPT_V_PER_V_NOMINAL,
            "i_sensitivity_v_per_a": ACS_SENS_NOMINAL, "i_divider": DIVIDER_NOMINAL,
            "v_divider": V_DIVIDER_NOMINAL,
            "i_invert": True}
