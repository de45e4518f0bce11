# ruff: noqa: UP031  (%-formatting: smallest code path in MicroPython, same text on CPython)
# Board rev B metering: the ATM90E32AS driver and the per-channel energy ledger.
#
# The chip integrates energy itself; the firmware's job is to configure it right, read it
# right and never lose or double-count a joule:
#   * every register fact comes from m90e32as.py;
#   * each write is verified through LastSPIData, each read of a read-to-clear energy
#     register too (its LastSPIData copy recovers a count the bus garbled), so a count is
#     read exactly once;
#   * every poll starts and ends with a health check (MeterEn, CRC status, golden digest,
#     MMode0): a chip reset, a CRC error or a dead bus books nothing from that poll and
#     re-initialises the chip;
#   * energy is integer millijoules per channel and direction, persisted with seq in a
#     rotating checksummed record (store.RotatingRecord): a power cut loses at most what was
#     read since the last persist, nothing is counted twice.
# Time only schedules polls (ticks_diff/ticks_add of an injected ticks module): the energy
# itself never depends on the clock, so a tick wrap cannot book anything.
import struct

import m90e32as as F
import store


class ChipError(Exception):
    pass


def _s16(x):
    return x - 0x10000 if x & 0x8000 else x


def _s32(x):
    return x - 0x100000000 if x & 0x80000000 else x


class ATM90E32:
    """Register access over SPI with the chip's integrity features."""

    def __init__(self, spi, cs, sleep_ms, sleep_us=None):
        self.spi = spi
        self.cs = cs
        self.sleep_ms = sleep_ms
        self.sleep_us = sleep_us
        self._tx = bytearray(F.FRAME_BYTES)
        self._rx = bytearray(F.FRAME_BYTES)
        self.retries = 0  # transactions repeated because LastSPIData disagreed
        self.recovered = 0  # read-to-clear values taken from LastSPIData

    def _xfer(self, word, data):
        tx = self._tx
        tx[0] = word >> 8
        tx[1] = word & 0xFF
        tx[2] = data >> 8
        tx[3] = data & 0xFF
        self.cs.value(0)
        if self.sleep_us:
            self.sleep_us(F.CS_GUARD_US)
        self.spi.write_readinto(tx, self._rx)
        if self.sleep_us:
            self.sleep_us(F.CS_GUARD_US)
        self.cs.value(1)
        return (self._rx[2] << 8) | self._rx[3]

    def raw_read(self, addr):
        return self._xfer(F.READ_FLAG | (addr & F.ADDR_MASK), 0)

    def raw_write(self, addr, value):
        self._xfer(addr & F.ADDR_MASK, value & 0xFFFF)

    def read(self, addr, tries=3):
        """A register whose reading has no side effect, confirmed by LastSPIData."""
        for _ in range(tries):
            v = self.raw_read(addr)
            if self.raw_read(F.LASTSPIDATA) == v:
                return v
            self.retries += 1
        raise ChipError("read %02XH: LastSPIData disagrees" % addr)

    def read_rc(self, addr):
        """A read-to-clear register: read once; a garbled reply is recovered from LastSPIData."""
        v = self.raw_read(addr)
        last = self.raw_read(F.LASTSPIDATA)
        if last == v:
            return v
        again = self.raw_read(F.LASTSPIDATA)
        if again == last:
            self.recovered += 1
            return last
        raise ChipError("read-clear %02XH: reply and LastSPIData disagree" % addr)

    def write(self, addr, value, tries=3):
        value &= 0xFFFF
        for _ in range(tries):
            self.raw_write(addr, value)
            if self.raw_read(F.LASTSPIDATA) == value:
                return
            self.retries += 1
        raise ChipError("write %02XH=%04XH not acknowledged" % (addr, value))

    def read32(self, hi, lo):
        """A 32-bit measurement (high word, low word); re-read if the chip updated between."""
        for _ in range(3):
            h = self.read(hi)
            low = self.read(lo)
            if self.read(hi) == h:
                return (h << 16) | low
        raise ChipError("32-bit read %02XH/%02XH unstable" % (hi, lo))

    def soft_reset(self):
        self.raw_write(F.SOFTRESET, F.SOFTRESET_KEY)
        self.sleep_ms(F.RESET_WAIT_MS)


# --- configuration -----------------------------------------------------------------------------

# What a channel's calibration holds (config.json "chip" -> "channels"): register values.
CAL_KEYS = ("ugain", "igain", "pqgain", "phi", "poffset", "qoffset", "uoffset", "ioffset")
CAL_REG = {"ugain": "Ugain", "igain": "Igain", "pqgain": "PQGain", "phi": "Phi",
           "poffset": "Poffset", "qoffset": "Qoffset", "uoffset": "Uoffset", "ioffset": "Ioffset"}
CAL_DEFAULT = {"ugain": F.GAIN_UNITY, "igain": F.GAIN_UNITY, "pqgain": 0, "phi": 0,
               "poffset": 0, "qoffset": 0, "uoffset": 0, "ioffset": 0}

DEFAULTS = {
    "mains_hz": 50,
    "meter_constant": F.METER_CONSTANT,
    "pga": 1,  # current channels; 1x keeps 100 A x crest 2 on 6.6 ohm inside 720 mV rms
    "noload_w": 2.0,  # |P|+|Q| below which a channel accumulates nothing (real watts)
    "poll_ms": 1000,  # energy registers hold 65535 counts: >= 49 s even at 30 kW on k = 2
    "max_w": 40000.0,  # plausibility bound per channel: 120 A x 253 V with margin
    "channels": [
        # phase: chip phase A/B/C; k: the Irms/power registers are calibrated to 1/k of the
        # real value (100 A does not fit the 65.535 A register [DS Table-17 note 1]);
        # sign: +1 when the chip's forward direction is export (contract: P > 0 export)
        {"name": "solar", "phase": 0, "k": 2, "sign": -1},
        {"name": "grid", "phase": 1, "k": 2, "sign": -1},
    ],
    # CT type profile programmed into the current-segment compensation (cal.py explains it)
    "segments": None,
}


def merged(cfg):
    out = {}
    for k in DEFAULTS:
        out[k] = cfg.get(k, DEFAULTS[k]) if cfg else DEFAULTS[k]
    chans = []
    for ch in out["channels"]:
        c = {}
        for k in ch:
            c[k] = ch[k]
        for k in CAL_DEFAULT:
            if k not in c:
                c[k] = CAL_DEFAULT[k]
        chans.append(c)
    out["channels"] = chans
    return out


def mmode0(cfg):
    m = F.MM0_CF2VARH
    if cfg["mains_hz"] == 60:
        m |= F.MM0_FREQ60
    enp = (F.MM0_ENPA, F.MM0_ENPB, F.MM0_ENPC)
    for ch in cfg["channels"]:
        m |= enp[ch["phase"]]
    return m


def threshold_reg(watts, k):
    v = int(watts / k / F.THRESHOLD_LSB_W + 0.5)
    return 0xFFFF if v > 0xFFFF else v


def config_writes(cfg):
    """[(register, value)] of the start-up configuration, in write order."""
    hz = cfg["mains_hz"]
    pl = F.pl_constant(cfg["meter_constant"])
    kmax = max(ch["k"] for ch in cfg["channels"])
    pga = 0
    for ch in cfg["channels"]:
        pga |= F.PGA_CODES[cfg["pga"]] << (2 * ch["phase"])
    w = [
        (F.METEREN, F.METER_ON),
        (F.CHANNELMAPI, F.RESET_VALUES[F.CHANNELMAPI]),  # I1/I2/I3 pins -> phases A/B/C
        (F.CHANNELMAPU, F.RESET_VALUES[F.CHANNELMAPU]),  # V1/V2/V3 pins, tied on the board
        (F.PLCONSTH, pl >> 16),
        (F.PLCONSTL, pl & 0xFFFF),
        (F.MMODE0, mmode0(cfg)),
        (F.MMODE1, pga),
        (F.FREQLOTH, (hz - 3) * 100),
        (F.FREQHITH, (hz + 3) * 100),
        (F.F0, hz * 100),
        (F.IRQ0MERGECFG, F.IRQ0_WARN_OR | F.IRQ0_IRQ1_OR),  # one IRQ line carries all events
        (F.PSTARTTH, threshold_reg(cfg["noload_w"], kmax)),
        (F.QSTARTTH, threshold_reg(cfg["noload_w"], kmax)),
        (F.PPHASETH, threshold_reg(cfg["noload_w"], kmax)),
        (F.QPHASETH, threshold_reg(cfg["noload_w"], kmax)),
    ]
    seg = cfg.get("segments")
    if seg:
        w.append((F.LOGIRMS0, seg["log0"]))
        w.append((F.LOGIRMS1, seg["log1"]))
    for ch in cfg["channels"]:
        p = ch["phase"]
        for key in CAL_KEYS:
            w.append((F.PHASE_REGS[CAL_REG[key]][p], ch[key] & 0xFFFF))
        if seg:
            for name in ("GainIrms01", "GainIrms2", "PhiIrms01", "PhiIrms2"):
                w.append((F.PHASE_REGS[name][p], seg[name] & 0xFFFF))
    # sag at 78 % and over-voltage at 122 % of nominal, from phase A's Ugain [DS 3.7.2, AN 5.2]
    ug = cfg["channels"][0]["ugain"] or F.GAIN_UNITY
    nominal = 230.0 if hz == 50 else 120.0
    for reg, frac in ((F.SAGTH, 0.78), (F.OVTH, 1.22)):
        rms_reg = nominal * frac / F.URMS_LSB_V
        th = int(rms_reg * 1.41421356 * (1 << F.THRESHOLD_GAIN_SHIFT) / ug)
        w.append((reg, 0xFFFF if th > 0xFFFF else th))
    return w


class Reading:
    """One channel's instantaneous values, real units, contract signs (P > 0 export)."""

    def __init__(self, name, vrms, irms, p, q, s, pf, angle):
        self.name = name
        self.vrms = vrms
        self.irms = irms
        self.p = p
        self.q = q
        self.s = s
        self.pf = pf
        self.angle = angle

    def __repr__(self):
        return "Reading(%s V=%.2f I=%.3f P=%.1f Q=%.1f PF=%.3f)" % (
            self.name, self.vrms, self.irms, self.p, self.q, self.pf)


class Ledger:
    """Import/export energy per channel in integer mJ plus the reading seq, crash-safe."""

    def __init__(self, prefix, n, slots=8):
        self.n = n
        self.fmt = "<" + "Q" * (2 * n) + "I"
        self.rec = store.RotatingRecord(prefix, slots)
        self.mj = [0] * (2 * n)  # [ch0 import, ch0 export, ch1 import, ...]
        self.seq = 0
        b = self.rec.load()
        if b is not None and len(b) == struct.calcsize(self.fmt):
            vals = struct.unpack(self.fmt, b)
            self.mj = list(vals[:-1])
            self.seq = vals[-1]

    def book(self, ch, export, mj):
        if mj < 0:
            raise ValueError("energy only grows")
        self.mj[2 * ch + (1 if export else 0)] += mj

    def import_mj(self, ch):
        return self.mj[2 * ch]

    def export_mj(self, ch):
        return self.mj[2 * ch + 1]

    def next_seq(self):
        self.seq += 1
        return self.seq

    def persist(self):
        self.rec.save(struct.pack(self.fmt, *(self.mj + [self.seq])))


class ChipMeter:
    """What the App meters with: poll() often, readings() for the live values, ledger for
    energy, close_interval() for the report's power."""

    Error = ChipError  # what readings() and frequency() raise on a bus fault

    def __init__(self, chip, cfg, ticks, data_dir, log=print):
        self.chip = chip
        self.cfg = merged(cfg)
        self.ticks = ticks
        self.log = log
        self.chans = self.cfg["channels"]
        self.ledger = Ledger(data_dir + "/chip-energy", len(self.chans))
        self.mj_per_count = F.energy_mj_per_count(self.cfg["meter_constant"])
        self.expected_mm0 = mmode0(self.cfg)
        self.golden = None
        self.ready = False
        self.inits = 0
        self.faults = 0
        self.rejected = 0  # energy reads discarded as implausible
        self.t_poll = None
        self.t_energy = None
        self.interval_mj = [0] * len(self.chans)  # signed (export +) since the interval began
        self.t_interval = ticks.ticks_ms()

    # -- start-up -----------------------------------------------------------------------------
    def init(self):
        """Reset, configure under CfgRegAccEn, verify every register, lock, latch the CRC."""
        c = self.chip
        self.ready = False
        c.soft_reset()
        c.write(F.CFGREGACCEN, F.CFG_UNLOCK)
        writes = config_writes(self.cfg)
        for reg, val in writes:
            c.write(reg, val)
        for reg, val in writes:
            got = c.read(reg)
            if got != val:
                raise ChipError("config %02XH reads %04XH, wrote %04XH" % (reg, got, val))
        c.write(F.CFGREGACCEN, F.CFG_LOCK)
        # the golden CRC latches after one full pass over 00H..6FH [DS 5.2.1]
        self.chip.sleep_ms(((F.CRC_LAST + 1) * F.CRC_WORD_US) // 1000 * 2 + 1)
        self.golden = c.read(F.CRCDIGEST)
        if c.read(F.CRCERRSTATUS) & (F.CRC_ERR_CFG | F.CRC_ERR_INT):
            raise ChipError("CRC error right after configuration")
        for ch in self.chans:  # energy since MeterEn was set belongs to no calibrated period
            c.read_rc(F.PHASE_REGS["APenergy"][ch["phase"]])
            c.read_rc(F.PHASE_REGS["ANenergy"][ch["phase"]])
        self.inits += 1
        self.ready = True
        self.t_energy = self.ticks.ticks_ms()

    def wake(self):
        """The chip raised its IRQ line: poll (and health-check) on the next call."""
        self.t_poll = None

    def healthy(self):
        c = self.chip
        try:
            return (c.read(F.METEREN) == F.METER_ON and c.read(F.MMODE0) == self.expected_mm0
                    and c.read(F.CRCERRSTATUS) == 0 and c.read(F.CRCDIGEST) == self.golden)
        except ChipError:
            return False

    # -- the periodic work ---------------------------------------------------------------------------
    def poll(self, now=None):
        """Read energy if a poll is due. Returns True when energy was booked."""
        t = self.ticks
        now = t.ticks_ms() if now is None else now
        # a negative difference is a gap past PERIOD/2 (a stall of days): long over, poll now
        if self.t_poll is not None and 0 <= t.ticks_diff(now, self.t_poll) < self.cfg["poll_ms"]:
            return False
        self.t_poll = now
        try:
            if not self.ready:
                self.init()
                return False
            if not self.healthy():
                raise ChipError("chip reset or configuration lost")
            counts = self._read_energy()
            if not self.healthy():
                raise ChipError("chip reset during the energy read")
        except ChipError as e:
            self.faults += 1
            self.ready = False
            self.log("meter: %s; nothing booked, re-initialising" % e)
            return False
        dt = t.ticks_diff(now, self.t_energy)
        self.t_energy = now
        self._book(counts, dt)
        return True

    def _read_energy(self):
        c = self.chip
        out = []
        for ch in self.chans:
            p = ch["phase"]
            fwd = c.read_rc(F.PHASE_REGS["APenergy"][p])
            rev = c.read_rc(F.PHASE_REGS["ANenergy"][p])
            out.append((fwd, rev))
        return out

    def _book(self, counts, dt_ms):
        # a count is worth mj_per_count * k; more counts than max_w could make in dt is garbage
        if dt_ms < 0:
            dt_ms = 0
        for i, ch in enumerate(self.chans):
            fwd, rev = counts[i]
            unit = self.mj_per_count * ch["k"]
            limit = int(self.cfg["max_w"] * (dt_ms + self.cfg["poll_ms"]) / unit) + 2
            if fwd > limit or rev > limit:
                self.rejected += 1
                self.log("meter: %s energy %d/%d counts exceeds %d, discarded" % (
                    ch["name"], fwd, rev, limit))
                continue
            exp_fwd = ch["sign"] > 0  # chip forward is export on this channel
            self.ledger.book(i, exp_fwd, fwd * unit)
            self.ledger.book(i, not exp_fwd, rev * unit)
            signed = (fwd - rev) * unit
            self.interval_mj[i] += signed if exp_fwd else -signed

    # -- values ---------------------------------------------------------------------------------
    def readings(self):
        """Live values per channel (the chip's 16-cycle averages), real units, contract signs."""
        c = self.chip
        g = F.PHASE_REGS
        out = []
        for ch in self.chans:
            p = ch["phase"]
            k = ch["k"]
            s = ch["sign"]
            # the chip's forward direction is positive; contract wants export positive
            sgn = 1 if s > 0 else -1
            v = (c.read(g["Urms"][p]) + (c.read(g["UrmsLSB"][p]) >> F.RMS_LSB_SHIFT) / 256) * F.URMS_LSB_V
            i = (c.read(g["Irms"][p]) + (c.read(g["IrmsLSB"][p]) >> F.RMS_LSB_SHIFT) / 256) * F.IRMS_LSB_A * k
            pw = _s32(c.read32(g["Pmean"][p], g["PmeanLSB"][p])) * F.POWER_LSB_W * k * sgn
            q = _s32(c.read32(g["Qmean"][p], g["QmeanLSB"][p])) * F.POWER_LSB_W * k * sgn
            sv = _s32(c.read32(g["Smean"][p], g["SmeanLSB"][p])) * F.POWER_LSB_W * k
            pf = _s16(c.read(g["PFmean"][p])) * F.PF_LSB * sgn
            ang = c.read(g["PAngle"][p]) * F.ANGLE_LSB_DEG
            out.append(Reading(ch["name"], v, i, pw, q, sv, pf, ang))
        return out

    def frequency(self):
        return self.chip.read(F.FREQ) * F.FREQ_LSB_HZ

    def close_interval(self, now=None):
        """Average power per channel (W, export +) over the interval, from booked energy."""
        t = self.ticks
        now = t.ticks_ms() if now is None else now
        ms = t.ticks_diff(now, self.t_interval)
        self.t_interval = now
        out = [(e / ms if ms > 0 else 0.0) for e in self.interval_mj]
        self.interval_mj = [0] * len(self.chans)
        return out

    def consumption_mj(self):
        """House consumption derived from the two channels: production + import - export.

        Channel 0 (solar) books its production as export, channel 1 (grid) both directions."""
        led = self.ledger
        return led.export_mj(0) - led.import_mj(0) + led.import_mj(1) - led.export_mj(1)
