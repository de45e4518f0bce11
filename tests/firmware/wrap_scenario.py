# Runs across a ticks wrap on CPython (test_wrap.py) and on the MicroPython unix port
# (test_micropython.py): the device's clock, a meter day with the network dead, energy
# integration at a jittery loop rate, the backoff, and ticks.py against the port's C ticks.
# Plain MicroPython-compatible Python: no typing, no f-strings, no dataclasses.
import json

# The ESP32-S3 port's ticks period: MP_SMALL_INT_POSITIVE_MASK + 1 with 31-bit small ints
# (py/mpconfig.h MICROPY_PY_TIME_TICKS_PERIOD). Written here from MicroPython's source, not
# taken from firmware/ticks.py, so that the fake can disagree with the firmware.
DEVICE_PERIOD = 1 << 30
# the starts the wrap tests use: seconds before the wrap, the half period (where a signed
# 30-bit reading of the counter flips), and the last tick before the wrap
STARTS = (DEVICE_PERIOD - 5000, DEVICE_PERIOD // 2, DEVICE_PERIOD - 1)
UNIX_BOOT = 1722000000
KEY_HEX = "11" * 32


class WrapClock:
    """ticks_ms() of the device: true milliseconds since boot (t), read modulo the period."""

    def __init__(self, start, period=DEVICE_PERIOD):
        self.t = start
        self.period = period

    def __call__(self):
        return self.t % self.period

    def advance(self, ms):
        self.t += ms

    def unix(self):
        return UNIX_BOOT + self.t // 1000


class Lcg:
    """Deterministic jitter, identical on both interpreters."""

    def __init__(self, seed=12345):
        self.x = seed

    def next(self, n):
        self.x = (1103515245 * self.x + 12345) % 2147483648
        return self.x % n


class MiniChip:
    """The ATM90E32AS at its SPI frames, reduced to what the wrap runs need, in plain Python
    (the numpy simulator, firmware/sim/m90e32as.py, cannot run on the unix port): registers
    that keep what is written, LastSPIData, constant power per channel integrated into the
    read-to-clear energy registers over the chip's own time (the clock's true ms, which never
    wraps), and the live values of that power. Facts come from m90e32as.py, like the driver's."""

    def __init__(self, F, clock, watts, v=230.0):  # noqa: N803 (F: the facts module)
        self.F = F
        self.clock = clock
        self.watts = watts  # chip phase -> W in the chip's forward direction
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


class LanServer:
    """Enough of the server for the unix port: up/down, seq order, batch or single, sig."""

    def __init__(self, ct, contract, key):
        self.ct = ct
        self.contract = contract
        self.key = key
        self.up = True
        self.order = []
        self.calls = 0
        self.bad = 0

    def __call__(self, url, body, ctype="application/json", headers=None):
        self.calls += 1
        if not self.up:
            return -1
        doc = json.loads(body)
        docs = doc["readings"] if "readings" in doc else [doc]
        for r in docs:
            sig = r.pop("sig")
            canon = self.ct.canonical(r)
            if self.contract.hmac_sha256_hex(self.key, canon.encode()) != sig:
                self.bad += 1
            if self.order and r["seq"] <= self.order[-1]:
                return 409
            self.order.append(r["seq"])
        return 200 if len(docs) > 1 else 201


def make_app(main, config, data_dir, clock, server, p, cfg=None, **kw):
    """The App on the real driver and ChipMeter against MiniChip: p W through the grid
    channel and through the solar channel (export positive, as the contract counts).
    cfg: a config to use instead of the defaults; kw: App's optional arguments."""
    import m90e32as as F
    import meter
    import store
    import ticks

    if cfg is None:
        cfg, _ = config.load(data_dir + "/none.json")
        cfg["key_hex"] = KEY_HEX
    ct = kw.pop("ct", None) or server.ct
    chip_cfg = meter.merged(config.chip_of(cfg))
    watts = {}
    for ch in chip_cfg["channels"]:
        watts[ch["phase"]] = p * ch["sign"]  # the chip's forward direction
    chip = MiniChip(F, clock, watts)
    drv = meter.ATM90E32(chip, Pin(), clock.advance)
    store.mkdirs(data_dir)

    class Ticks:  # the driver's ticks module, on the wrapping clock
        ticks_ms = clock
        ticks_diff = staticmethod(ticks.ticks_diff)
        ticks_add = staticmethod(ticks.ticks_add)

    m = meter.ChipMeter(drv, chip_cfg, Ticks, data_dir, log=lambda *a: None)
    app = main.App(cfg, ct, m, clock, kw.pop("unix", clock.unix), server, data_dir, **kw)
    app.fake_chip = chip
    return app


def set_power(app, p):
    """p W (export positive) through both channels from now on."""
    for ch in app.meter.chans:
        app.fake_chip.watts[ch["phase"]] = p * ch["sign"]


# one energy-register count at k = 2 (m90e32as.energy_mj_per_count() x 2)
COUNT_MJ = 22500


def lag_ok(p, ms, booked):
    """The ledger against the true energy p W x ms: behind by at most the energy since the
    last poll (loop passes are <= 1300 ms apart) and a count per register, ahead by at most
    the count the start-up clear left in each register."""
    d = int(abs(p) * ms) - booked
    return -2 * COUNT_MJ <= d <= int(abs(p) * 1300) + 2 * COUNT_MJ


def day(main, config, data_dir, clock, server, offline, p=-1500.0):
    """10 intervals online, `offline` intervals with the server unreachable (one loop pass
    each, as the tests before), then 1 s loop passes until the queue is empty."""
    app = make_app(main, config, data_dir, clock, server, p)
    interval = app.interval
    missed = 0
    t_first = clock.t  # the App configured the chip: it counts from here
    for k in range(10 + offline):
        if k == 10:
            server.up = False
        clock.advance(interval)
        if app.step() is None:
            missed += 1
        app.pump()
    calls_offline = server.calls
    pending = app.spool.pending()
    server.up = True
    passes = 0
    while app.spool.pending() and passes < 2000:
        clock.advance(1000)
        app.step()
        app.pump()
        passes += 1
    return {"missed": missed, "pending": pending, "calls_offline": calls_offline,
            "passes": passes, "left": app.spool.pending(), "seq": app.ledger.seq,
            "import_mj": app.ledger.import_mj(app.grid), "export_mj": app.ledger.export_mj(app.grid),
            "measured_ms": clock.t - t_first}


def energy(main, config, data_dir, clock, server, seconds, p=-575.0):
    """Loop passes 700..1299 ms apart for `seconds`; energy, interval closes (true times)."""
    app = make_app(main, config, data_dir, clock, server, p)
    rnd = Lcg()
    t_first = clock.t
    app.measure()
    closes = []
    while clock.t - t_first < seconds * 1000:
        clock.advance(700 + rnd.next(600))
        if app.step() is not None:
            closes.append(clock.t - t_first)
    return {"import_mj": app.ledger.import_mj(app.grid), "export_mj": app.ledger.export_mj(app.grid),
            "measured_ms": clock.t - t_first, "closes": closes}


def backoff(net, clock, rounds=9):
    """Failures back to back: ms from each failure to the first poll that finds the backoff
    due (asked every 1 ms from just before the expected moment; None: not due within twice
    the delay)."""
    b = net.Backoff(2, 120)
    got = []
    for _ in range(rounds):
        b.failed(clock())
        t0 = clock.t
        clock.advance(b.delay - 2)
        while not b.due(clock()) and clock.t - t0 < 2 * b.delay:
            clock.advance(1)
        got.append(clock.t - t0 if b.due(clock()) else None)
    return got


def ticks_vs_port():
    """ticks.py's formulas against the running port's own ticks_diff/ticks_add, at the
    port's period. -> (number of checks, mismatches); None when the port has no ticks."""
    import time

    import ticks

    if not hasattr(time, "ticks_add"):
        return None
    mask = time.ticks_add(0, -1)
    half = (mask >> 1) + 1
    edge = [0, 1, 2, half - 2, half - 1, half, half + 1, mask - 1, mask]
    vals = list(edge)
    rnd = Lcg(7)
    for _ in range(200):
        vals.append((rnd.next(1 << 30) * (1 << 30) + rnd.next(1 << 30)) & mask)
    n = bad = 0
    for a in vals:
        for b in edge + vals[-20:]:
            n += 1
            if ticks._diff(a, b, half, mask) != time.ticks_diff(a, b):
                bad += 1
        for d in (0, 1, -1, half - 1, -(half - 1), half, -half, 12345, -12345):
            n += 1
            try:
                want = time.ticks_add(a, d)
            except OverflowError:
                want = "overflow"
            try:
                got = ticks._add(a, d, half, mask)
            except OverflowError:
                got = "overflow"
            if got != want:
                bad += 1
    return n, bad
