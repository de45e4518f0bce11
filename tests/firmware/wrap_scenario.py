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


def _minichip():
    try:  # the unix port's runner puts firmware/tools on the path
        import minichip
    except ImportError:
        from firmware.tools import minichip
    return minichip


def make_app(main, config, data_dir, clock, server, p, cfg=None, **kw):
    """The App on the real driver and ChipMeter against minichip.MiniChip: p W through the
    grid channel and through the solar channel (export positive, as the contract counts).
    cfg: a config to use instead of the defaults; kw: App's optional arguments."""
    minichip = _minichip()
    if cfg is None:
        cfg, _ = config.load(data_dir + "/none.json")
        cfg["key_hex"] = KEY_HEX
    ct = kw.pop("ct", None) or server.ct
    m, chip = minichip.chip_meter(config.chip_of(cfg), clock, data_dir)
    minichip.set_power(m, chip, p, p)
    app = main.App(cfg, ct, m, clock, kw.pop("unix", clock.unix), server, data_dir, **kw)
    app.fake_chip = chip
    return app


def set_power(app, p):
    """p W (export positive) through both channels from now on."""
    _minichip().set_power(app.meter, app.fake_chip, p, p)


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
