# ruff: noqa: UP031
# A plain-Python ATM90E32AS at its SPI frames, for runs too long or too constrained for the
# register-level simulator (sim/m90e32as.py: numpy, about a tenth of real time): the wrap
# tests on the MicroPython unix port, the store-and-forward days, the chain and oracle runs.
# The firmware's real driver (meter.ATM90E32) and ChipMeter talk to it as to the chip.
# Plain MicroPython-compatible Python: no typing, no f-strings, no dataclasses.
import m90e32as as F
import meter
import ticks


class MiniChip:
    """The ATM90E32AS at its SPI frames, reduced to what the wrap runs need, in plain Python
    (the numpy simulator, firmware/sim/m90e32as.py, cannot run on the unix port): registers
    that keep what is written, LastSPIData, constant power per channel integrated into the
    read-to-clear energy registers over the chip's own time (the clock's true ms, clock.t, which
    never wraps), and the live values of that power. Facts come from m90e32as.py, like the driver's."""

    def __init__(self, clock, watts=None, v=230.0):
        self.F = F
        self.clock = clock
        self.watts = watts or {}  # chip phase -> W in the chip's forward direction
        self.v = v
        self.regs = {}
        self.last = 0
        self.t = clock.t
        self.acc = [0, 0, 0, 0, 0, 0]  # (forward, reverse) mJ not yet counted, per phase

    def _run(self):
        F = self.F
        dt = self.clock.t - self.t
        self.t = self.clock.t
        mmode0 = self.regs.get(F.MMODE0, 0)
        for p in range(3):
            w = self.watts.get(p, 0.0)
            if not mmode0 & (F.MM0_ENPA, F.MM0_ENPB, F.MM0_ENPC)[p]:
                continue
            k = 0 if w >= 0 else 1
            # the registers count real energy / k (the channel's current register scale, 2)
            self.acc[2 * p + k] += int(abs(w) * dt) // 2

    def _read(self, addr):
        F = self.F
        if addr == F.LASTSPIDATA:
            return self.last
        g = F.PHASE_REGS
        self._run()
        for p in range(3):
            for d, name in ((0, "APenergy"), (1, "ANenergy")):
                if addr == g[name][p]:
                    unit = F.energy_mj_per_count(F.METER_CONSTANT)
                    n = self.acc[2 * p + d] // unit
                    self.acc[2 * p + d] -= n * unit
                    # a 16-bit register: what a stall longer than it holds would have
                    # counted is gone (bounded, never booked twice or in the other register)
                    return n if n < 0xFFFF else 0xFFFF
            w = self.watts.get(p, 0.0)
            i = abs(w) / self.v
            p32 = int(w / 2 / F.POWER_LSB_W) & 0xFFFFFFFF
            s32 = int(abs(w) / 2 / F.POWER_LSB_W)
            live = {"Urms": int(self.v / F.URMS_LSB_V), "UrmsLSB": 0,
                    "Irms": int(i / 2 / F.IRMS_LSB_A), "IrmsLSB": 0,
                    "Pmean": p32 >> 16, "PmeanLSB": p32 & 0xFFFF, "Qmean": 0, "QmeanLSB": 0,
                    "Smean": s32 >> 16, "SmeanLSB": s32 & 0xFFFF,
                    "PFmean": int(1 / F.PF_LSB) if w >= 0 else (0x10000 - int(1 / F.PF_LSB)),
                    "PAngle": 0 if w >= 0 else 1800}
            for name in live:
                if addr == g[name][p]:
                    return live[name]
        if addr == F.FREQ:
            return int(50 / F.FREQ_LSB_HZ)
        if addr == F.CRCDIGEST:
            return 0x1D0F
        if addr == F.CRCERRSTATUS:
            return 0
        return self.regs.get(addr, 0)

    def write_readinto(self, tx, rx):
        F = self.F
        word = (tx[0] << 8) | tx[1]
        addr = word & F.ADDR_MASK
        if word & F.READ_FLAG:
            v = self._read(addr)
        else:
            v = (tx[2] << 8) | tx[3]
            if addr == F.SOFTRESET:
                self.regs = {}
            else:
                self.regs[addr] = v
        self.last = v
        rx[0] = rx[1] = 0
        rx[2] = v >> 8
        rx[3] = v & 0xFF


class Pin:
    def value(self, v=None):
        return 1


class Ticks:
    """The driver's ticks module on a test clock: clock() is ticks_ms(), clock.advance(ms)."""

    def __init__(self, clock):
        self.ticks_ms = clock

    @staticmethod
    def ticks_diff(a, b):
        return ticks.ticks_diff(a, b)

    @staticmethod
    def ticks_add(t, d):
        return ticks.ticks_add(t, d)


def chip_meter(chip_cfg, clock, data_dir, log=None):
    """(meter.ChipMeter, MiniChip) on clock (callable ticks, .advance(ms), .t true ms)."""
    import store

    chip = MiniChip(clock)
    drv = meter.ATM90E32(chip, Pin(), clock.advance)
    store.mkdirs(data_dir)
    m = meter.ChipMeter(drv, chip_cfg, Ticks(clock), data_dir, log=log or (lambda *a: None))
    return m, chip


def set_power(m, chip, solar_w, grid_w):
    """W (export positive, as the contract counts) through the solar and grid channels."""
    for ch in m.chans:
        w = solar_w if ch["name"] == "solar" else grid_w
        chip.watts[ch["phase"]] = w * ch["sign"]  # the chip's forward direction
