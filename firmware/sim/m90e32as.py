# ruff: noqa: UP031  (%-formatting, as in the firmware it drives)
"""Register-level simulator of the ATM90E32AS (host only; the chip cannot exist here).

It speaks the chip's SPI frames (sim.transfer(4 bytes) -> 4 bytes) and keeps the datasheet's
register file: reset values, the configuration lock (CfgRegAccEn) with its CRC-16 golden
digest, LastSPIData, read-to-clear energy registers with the 0.01 CF bidirectional
accumulator, startup / no-load thresholds, the measurement averages over 16 mains cycles,
Ugain/Igain/PQGain/offset/Phi calibration and the current-segment and frequency phase
compensation. The analog side comes from sim/sensors.Board, sampled at the chip's 8 kHz
with the chip's own delay chain applied to the sampling instants.

Every address, bit and scale factor is read from firmware/m90e32as.py. Where the datasheet
is silent the model makes a choice and says so (MODEL_CHOICES), so a reader knows what the
simulator cannot confirm about real silicon.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

FW = Path(__file__).resolve().parents[1]
if str(FW) not in sys.path:
    sys.path.insert(0, str(FW))

import m90e32as as F  # noqa: E402

MODEL_CHOICES = [
    "ADC full scale: clips at the peak of the largest specified input, 720 mV rms x sqrt 2.",
    "RMS register scale from DS 3.7.2: a full-scale sine reads 2 x 65535 at Ugain/Igain = 0x8000.",
    "Uoffset/Ioffset add (offset << 7) to the 32-bit RMS value, as the AN 4.2.5 recipe implies.",
    "PQGain scales Pmean/Qmean as well as the energy accumulators.",
    "Configuration writes (00H-6FH) are ignored unless CfgRegAccEn = 55AAH.",
    "CRC-16 initial value 0xFFFF, MSB first; the driver only compares digests, never computes one.",
    "Energy registers wrap at 2^16 (the datasheet does not say); the driver reads them long before.",
    "Reading LastSPIData leaves it unchanged.",
    "PAngle is the voltage-to-current lag of the fundamental, 0..360 deg.",
    "The startup / no-load gates judge |P|+|Q| of each block of signal (100 ms, shorter where a 16-cycle window ends).",
]

# Per-ADC spread of one chip: gain (Vref 1.2 V trim), cubic nonlinearity, input noise. The
# datasheet gives only the result, +-0.1 % active energy over 6000:1 [DS Table-16]; the noise
# is an estimate that keeps 120 uV rms, the bottom of that range, at about 0.1 %.
ADC_GAIN_TOL = 0.01
ADC_CUBIC_TOL = 0.0005
NOISE_V = 10e-6

FS_PEAK = F.ADC_FS_PEAK_V
K_RMS = F.RMS_AT_FULL_SCALE  # rms_norm -> register at unity gain (full-scale sine -> 92681)
PHASES = 3


def impairments():
    """(part, text) of the chip model, from its own parameters and the facts file."""
    lsb = F.energy_mj_per_count() / 1000.0
    return ("ATM90E32AS", "per-ADC gain +-%g %% (Vref %g V), cubic nonlinearity +-%g %% at full "
            "scale, %g uV rms input noise per sample (estimate, against the %g uV bottom of the "
            "datasheet's 0.1 %% range), 16-bit registers, energy quantum 0.01 CF = %g J "
            "at MC %d, %d Hz sampling, %d-cycle means, clip at %g mV rms x sqrt 2"
            % (100 * ADC_GAIN_TOL, F.VREF_V, 100 * ADC_CUBIC_TOL, NOISE_V * 1e6,
               F.ADC_IN_MIN_VRMS * 1e6, lsb, F.METER_CONSTANT,
               F.SAMPLE_RATE_HZ, F.MEAN_CYCLES, F.ADC_IN_MAX_VRMS * 1000))


def _s16(x):
    x &= 0xFFFF
    return x - 0x10000 if x & 0x8000 else x


def _s8(x):
    x &= 0xFF
    return x - 0x100 if x & 0x80 else x


def crc16(words):
    crc = 0xFFFF
    for w in words:
        crc ^= w & 0xFFFF
        for _ in range(16):
            crc = ((crc << 1) ^ F.CRC_POLY) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _log16(x):
    """The chip's Log(x) = log2(x) * 16 [DS 3.9.1]."""
    return math.log2(max(x, 1e-9)) * F.LOG_SCALE


class Chip:
    """One ATM90E32AS on one board."""

    def __init__(self, board, seed=1, noise_v=NOISE_V):
        self.board = board
        r = np.random.default_rng(seed + 7919)
        self.rng = np.random.default_rng(seed + 104729)
        self.adc_gain = {s: 1 + r.uniform(-ADC_GAIN_TOL, ADC_GAIN_TOL)
                         for s in ("U0", "U1", "U2", "I0", "I1", "I2")}
        self.adc_cubic = {s: r.uniform(-ADC_CUBIC_TOL, ADC_CUBIC_TOL) for s in self.adc_gain}
        self.noise_v = noise_v
        self.t = 0.0
        self.samples = 0  # 8 kHz sample counter (chip time base)
        # fault injection: a stuck MISO line, bits flipped in the next n read replies
        # (the chip itself read correctly, so LastSPIData holds the true value), lost writes
        self.faults = {"miso_stuck": None, "flip_read_bits": 0, "flip_reads": 0,
                       "drop_writes": False}
        self.reset()

    # --- reset and register file -------------------------------------------------------------
    def reset(self):
        self.regs = [0] * 1024
        for a, v in F.RESET_VALUES.items():
            self.regs[a] = v
        self.golden = None
        self.acc = [0.0] * (PHASES + 1)  # bidirectional 0.01 CF accumulators, J
        self.win = self._new_window()
        self.phi_now = [0.0] * PHASES  # channel delay in 2.048 MHz cycles, + = current delayed
        self.gain_seg = [1.0] * PHASES
        self.mean = {"P": [0.0] * PHASES, "Q": [0.0] * PHASES, "I": [0.0] * PHASES}
        self.last_rms_i_reg = [0.0] * PHASES
        self.resets = getattr(self, "resets", -1) + 1
        self._crc()

    def _new_window(self):
        return {"n": 0, "vv": np.zeros(PHASES), "ii": np.zeros(PHASES), "vi": np.zeros(PHASES),
                "qi": np.zeros(PHASES), "v1": np.zeros(PHASES, complex), "i1": np.zeros(PHASES, complex),
                "ipk": np.zeros(PHASES), "vpk": np.zeros(PHASES)}

    def _crc(self):
        self.regs[F.CRCDIGEST] = crc16(self.regs[F.CRC_FIRST:F.CRC_LAST + 1])
        err = 0
        if self.golden is not None and self.regs[F.CRCDIGEST] != self.golden:
            err |= F.CRC_ERR_CFG
        self.regs[F.CRCERRSTATUS] = err

    def corrupt(self, addr, bit):
        """A single-event upset in a configuration register (the CRC must see it)."""
        self.regs[addr] ^= 1 << bit
        self._crc()

    # --- SPI -------------------------------------------------------------------------------------
    def transfer(self, tx, clocks=None):
        """One CS-low transaction. tx: bytes sent on SDI; returns what SDO carried."""
        clocks = len(tx) * 8 if clocks is None else clocks
        if self.faults["miso_stuck"] is not None:
            stuck = self.faults["miso_stuck"] & 0xFF
            return bytes([stuck] * len(tx))
        if clocks < 16:
            return bytes(len(tx))
        word = (tx[0] << 8) | tx[1]
        addr = word & F.ADDR_MASK
        if word & F.READ_FLAG:
            val = self._read(addr)
            out = val
            if self.faults["flip_read_bits"] and self.faults["flip_reads"] != 0:
                out ^= self.faults["flip_read_bits"]
                self.faults["flip_reads"] -= 1
            return bytes([0, 0, (out >> 8) & 0xFF, out & 0xFF])[:len(tx)]
        if clocks == 32 and len(tx) >= 4 and not self.faults["drop_writes"]:
            self._write(addr, (tx[2] << 8) | tx[3])
        return bytes(len(tx))

    def _read(self, addr):
        val = self.regs[addr]
        if addr != F.LASTSPIDATA:
            self.regs[F.LASTSPIDATA] = val
        if F.RC_FIRST <= addr <= F.RC_LAST:
            self.regs[addr] = 0
        if addr == F.SOFTRESET:
            return 0
        return val

    def _write(self, addr, val):
        self.regs[F.LASTSPIDATA] = val
        if addr == F.SOFTRESET:
            if val == F.SOFTRESET_KEY:
                self.reset()
            return
        if addr in F.READ_ONLY or F.RC_FIRST <= addr <= F.RC_LAST or addr >= F.MEAS_FIRST:
            return
        if addr == F.CFGREGACCEN:
            self.regs[addr] = val
            if val == F.CFG_UNLOCK:
                self.golden = None
            elif val != F.CFG_GOLDEN_WRITE:
                self._crc()
                self.golden = self.regs[F.CRCDIGEST]
            self._crc()
            return
        if addr == F.CRCDIGEST:
            if self.regs[F.CFGREGACCEN] == F.CFG_GOLDEN_WRITE:
                self.golden = val
                self._crc()
            return
        if addr in (F.EMMINTSTATE0, F.EMMINTSTATE1):
            self.regs[addr] &= ~val & 0xFFFF  # write 1 to clear
            return
        if addr <= F.CRC_LAST and self.regs[F.CFGREGACCEN] != F.CFG_UNLOCK:
            return  # locked
        self.regs[addr] = val
        self._crc()

    # --- configuration as the DSP sees it ----------------------------------------------------------
    def _cfg(self):
        r = self.regs
        mm0 = r[F.MMODE0]
        mm1 = r[F.MMODE1]
        pga = [(1, 2, 4, 4)[(mm1 >> (2 * p)) & 3] for p in range(PHASES)]
        src_i = [(r[F.CHANNELMAPI] >> F.MAP_SHIFT[p]) & 7 for p in range(PHASES)]
        src_u = [(r[F.CHANNELMAPU] >> F.MAP_SHIFT[p]) & 7 for p in range(PHASES)]
        pl = (r[F.PLCONSTH] << 16) | r[F.PLCONSTL]
        return {"on": r[F.METEREN] != 0, "mm0": mm0, "pga": pga, "src_i": src_i, "src_u": src_u,
                "e01": pl * 3.6e6 / F.PL_CONSTANT_NUMERATOR / F.ENERGY_COUNTS_PER_CF,
                "pphase": r[F.PPHASETH] * F.THRESHOLD_LSB_W,
                "pstart": r[F.PSTARTTH] * F.THRESHOLD_LSB_W,
                "f_nom": 60.0 if mm0 & F.MM0_FREQ60 else 50.0}

    @staticmethod
    def _src_name(code):
        names = {0: "I0", 1: "I1", 2: "I2", 4: "U0", 5: "U1", 6: "U2"}
        return names.get(code)

    def _phase_regs(self, p):
        r = self.regs
        g = F.PHASE_REGS
        return {"ug": r[g["Ugain"][p]] / F.GAIN_UNITY, "ig": r[g["Igain"][p]] / F.GAIN_UNITY,
                "pq": 1 + _s16(r[g["PQGain"][p]]) / F.PQGAIN_ONE,
                "poff": _s16(r[g["Poffset"][p]]), "qoff": _s16(r[g["Qoffset"][p]]),
                "uoff": _s16(r[g["Uoffset"][p]]), "ioff": _s16(r[g["Ioffset"][p]]),
                "phi": r[g["Phi"][p]]}

    def _segments(self, p, irms_reg, freq_reg):
        """Current-segment gain and phase compensation [DS 3.9.1, 3.9.2]."""
        r = self.regs
        g = F.PHASE_REGS
        gain01 = r[g["GainIrms01"][p]]
        gain2 = r[g["GainIrms2"][p]]
        phi01 = r[g["PhiIrms01"][p]]
        phi2 = r[g["PhiIrms2"][p]]
        l0 = (r[F.LOGIRMS0] & 0xFF)
        l1 = (r[F.LOGIRMS1] & 0xFF)
        lg = _log16(irms_reg)
        if lg > l0:
            gi, ref, goff = _s8(gain01), l0, 0.0
            pi, poff = _s8(phi01), 0.0
        elif lg > l1:
            gi, ref, goff = _s8(gain01 >> 8), l0, 0.0
            pi, poff = _s8(phi01 >> 8), 0.0
        else:
            gi, ref = _s8(gain2), l1
            pi = _s8(phi2)
            goff = _s8(gain01 >> 8) * (l1 - l0) / 2 ** F.SEG_GAIN_SHIFT
            poff = _s8(phi01 >> 8) * (l1 - l0) / F.SEG_PHI_DIV
        gain = 1 + gi * (lg - ref) / 2 ** F.SEG_GAIN_SHIFT + goff
        phif = _s8(r[F.PHIFREQCOMP])
        dphi = phif * (freq_reg - r[F.F0]) / F.FREQ_PHI_DIV + pi * (lg - ref) / F.SEG_PHI_DIV + poff
        return gain, dphi

    # --- the analog/DSP side -------------------------------------------------------------------
    def advance(self, seconds):
        """Run the chip for `seconds` of mains time."""
        n_total = int(round(seconds * F.SAMPLE_RATE_HZ))
        while n_total > 0:
            # 0.1 s blocks, cut where the 16-cycle window ends so that every mean covers
            # whole cycles, as the chip's do (at 49.5 or 60 Hz 16 cycles are no whole block)
            n = min(n_total, 800, max(1, self._win_len() - self.win["n"]))
            self._block(n)
            n_total -= n

    def _win_len(self):
        return int(round(F.MEAN_CYCLES * F.SAMPLE_RATE_HZ / self.board.mains.f))

    def _block(self, n):
        cfg = self._cfg()
        fs = float(F.SAMPLE_RATE_HZ)
        t = (self.samples + np.arange(n)) / fs
        self.samples += n
        self.t = self.samples / fs
        f_true = self.board.mains.f
        quarter = 0.25 / f_true
        p_inst = np.zeros((PHASES, n))
        pq_block = [0.0] * PHASES  # |P| + |Q| of this 100 ms block, for the no-load gate
        for p in range(PHASES):
            su = self._src_name(cfg["src_u"][p])
            si = self._src_name(cfg["src_i"][p])
            if su is None or si is None:
                continue
            delay = self.phi_now[p] / F.PHI_CLOCK_HZ
            d_i = delay if delay > 0 else 0.0
            d_v = -delay if delay < 0 else 0.0
            v = self._adc(su, t - d_v, 1)
            vq = self._adc(su, t - d_v - quarter, 1, noise=False)
            i = self._adc(si, t - d_i, cfg["pga"][p])
            pr = self._phase_regs(p)
            ig = pr["ig"] * self.gain_seg[p]
            scale = K_RMS * K_RMS * F.URMS_LSB_V * F.IRMS_LSB_A * pr["ug"] * ig
            pw = v * i * scale * pr["pq"] + pr["poff"] * F.POWER_LSB_W
            p_inst[p] = pw
            qb = float(np.dot(vq, i)) / n * scale * pr["pq"] + pr["qoff"] * F.POWER_LSB_W
            pq_block[p] = abs(float(np.mean(pw))) + abs(qb)
            w = self.win
            w["vv"][p] += float(np.dot(v, v))
            w["ii"][p] += float(np.dot(i, i))
            w["vi"][p] += float(np.dot(v, i))
            w["qi"][p] += float(np.dot(vq, i))
            e = np.exp(-2j * math.pi * f_true * t)
            w["v1"][p] += complex(np.dot(v, e))
            w["i1"][p] += complex(np.dot(i, e))
            w["vpk"][p] = max(w["vpk"][p], float(np.max(np.abs(v))))
            w["ipk"][p] = max(w["ipk"][p], float(np.max(np.abs(i))))
        self.win["n"] += n
        if cfg["on"]:
            self._accumulate(cfg, p_inst, pq_block, fs)
        if self.win["n"] >= self._win_len():
            self._publish(cfg, f_true)

    def _adc(self, src, t, pga, noise=True):
        x = self.board.pin(src, t) * pga
        if noise and self.noise_v:
            x = x + self.rng.normal(0.0, self.noise_v * pga, x.shape)
        x = x / FS_PEAK
        x = x * self.adc_gain[src] * (1 + self.adc_cubic[src] * x * x)
        return np.clip(x, -1.0, 1.0)

    def _accumulate(self, cfg, p_inst, pq_block, fs):
        mm0 = cfg["mm0"]
        en = (mm0 & F.MM0_ENPA, mm0 & F.MM0_ENPB, mm0 & F.MM0_ENPC)
        total = np.zeros(p_inst.shape[1])
        gated = []
        for p in range(PHASES):
            on = pq_block[p] >= cfg["pphase"]
            pp = p_inst[p] if on and cfg["pphase"] >= 0 else np.zeros_like(p_inst[p])
            gated.append(pp)
            if en[p]:
                total += np.abs(pp) if mm0 & F.MM0_ABSENP else pp
        e01 = cfg["e01"]
        for p in range(PHASES):
            self._count(p, float(np.sum(gated[p])) / fs, e01, F.PHASE_REGS["APenergy"][p],
                        F.PHASE_REGS["ANenergy"][p])
        if abs(float(np.mean(total))) >= cfg["pstart"]:
            self._count(PHASES, float(np.sum(total)) / fs, e01, F.APENERGYT, F.ANENERGYT)

    def _count(self, k, energy_j, e01, reg_fwd, reg_rev):
        self.acc[k] += energy_j
        if self.acc[k] >= e01 or self.acc[k] <= -e01:
            c = int(self.acc[k] / e01)
            self.acc[k] -= c * e01
            if c > 0:
                self.regs[reg_fwd] = (self.regs[reg_fwd] + c) & 0xFFFF
            else:
                self.regs[reg_rev] = (self.regs[reg_rev] - c) & 0xFFFF

    def _publish(self, cfg, f_true):
        w = self.win
        n = w["n"]
        r = self.regs
        g = F.PHASE_REGS
        freq_reg = int(round(f_true / F.FREQ_LSB_HZ + self.rng.normal(0.0, 0.4)))
        r[F.FREQ] = freq_reg & 0xFFFF
        r[F.TEMP] = 31
        for p in range(PHASES):
            pr = self._phase_regs(p)
            ig = pr["ig"] * self.gain_seg[p]
            u32 = math.sqrt(w["vv"][p] / n) * K_RMS * pr["ug"] * 65536 + (pr["uoff"] << 7)
            i32 = math.sqrt(w["ii"][p] / n) * K_RMS * ig * 65536 + (pr["ioff"] << 7)
            u32 = min(max(u32, 0.0), 0xFFFFFFFF)
            i32 = min(max(i32, 0.0), 0xFFFFFFFF)
            ku = K_RMS * K_RMS * F.URMS_LSB_V * F.IRMS_LSB_A * pr["ug"] * ig
            pw = w["vi"][p] / n * ku * pr["pq"] + pr["poff"] * F.POWER_LSB_W
            qw = w["qi"][p] / n * ku * pr["pq"] + pr["qoff"] * F.POWER_LSB_W
            sw = (u32 / 65536 * F.URMS_LSB_V) * (i32 / 65536 * F.IRMS_LSB_A)
            for name, val in (("Pmean", pw), ("Qmean", qw), ("Smean", sw)):
                v32 = int(round(val / F.POWER_LSB_W)) & 0xFFFFFFFF
                r[g[name][p]] = v32 >> 16
                r[g[name + "LSB"][p]] = v32 & 0xFFFF
            self._set_rms(g["Urms"][p], g["UrmsLSB"][p], u32)
            self._set_rms(g["Irms"][p], g["IrmsLSB"][p], i32)
            pf = pw / sw if sw > 0 else 0.0
            r[g["PFmean"][p]] = int(round(max(-1.0, min(1.0, pf)) / F.PF_LSB)) & 0xFFFF
            ang = math.degrees(np.angle(w["v1"][p]) - np.angle(w["i1"][p])) % 360.0
            r[g["PAngle"][p]] = int(round(ang / F.ANGLE_LSB_DEG)) % 3600
            self.mean["P"][p], self.mean["Q"][p] = pw, qw
            # compensation inputs for the next window: measured Irms and frequency
            irms_reg = i32 / 65536
            gain, dphi = self._segments(p, irms_reg, freq_reg)
            self.gain_seg[p] = gain
            phi = pr["phi"]
            base = (phi & F.PHI_CYCLES_MASK) * (-1 if phi & F.PHI_DELAY_V else 1)
            self.phi_now[p] = base + dphi
        emm0 = 0
        emm1 = 0
        for p in range(PHASES):
            if self.mean["P"][p] < 0:
                emm1 |= F.ST1_PEREG_NEG[p]
        r[F.EMMSTATE0] = emm0
        r[F.EMMSTATE1] = emm1
        self.win = self._new_window()

    def _set_rms(self, reg_hi, reg_lo, v32):
        v32 = int(v32)
        hi = v32 >> 16
        if hi > 0xFFFF:
            hi, v32 = 0xFFFF, 0xFFFFFFFF
        self.regs[reg_hi] = hi
        self.regs[reg_lo] = v32 & 0xFF00


class SPIBus:
    """machine.SPI-like bus + CS pin over a Chip, so the driver runs unchanged on the host."""

    def __init__(self, chip):
        self.chip = chip
        self.cs_low = False
        self.transactions = 0

    def write_readinto(self, tx, rx):
        out = self.chip.transfer(bytes(tx))
        rx[:] = out
        self.transactions += 1

    def write(self, tx):
        self.chip.transfer(bytes(tx))
        self.transactions += 1


class CSPin:
    def __init__(self):
        self.v = 1

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
