"""Store-and-forward and energy persistence: a simulated day with the network dead (the App
on the real chip driver, against wrap_scenario.MiniChip)."""

import json
import sys
from pathlib import Path

import config
import jsonschema
import main
import meter
import pytest
import spool

import contract

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrap_scenario as ws  # noqa: E402

KEY_HEX = "11" * 32
DAY = 24 * 3600 // 10  # readings at a 10 s interval


class Server:
    """The server's contract in miniature (contract/transport.json + x-canonical replay rule):
    single POST -> 201 stored / 200 duplicate / 409 replay; batch POST -> atomic, 200 or the
    first problem's status with nothing stored."""

    def __init__(self, ct, schema):
        self.ct = ct
        self.t = ct.transport
        self.validator = jsonschema.Draft202012Validator(schema)
        self.up = True
        self.stored = {}
        self.order = []
        self.duplicates = 0
        self.calls = 0
        self.batches = 0
        self.status = None  # force this status (e.g. 503, 401) while set

    def _check(self, r, staged):
        self.validator.validate(r)
        r = dict(r)
        sig = r.pop("sig")
        canon = self.ct.canonical(r)
        assert contract.hmac_sha256_hex(bytes.fromhex(KEY_HEX), canon.encode()) == sig
        seq = r["seq"]
        known = staged.get(seq, self.stored.get(seq))
        if known is not None:
            return ("duplicate", seq, canon) if known == canon else (409, seq, canon)
        last = max(list(staged) + self.order[-1:], default=0)
        if seq <= last:
            return (409, seq, canon)
        return ("stored", seq, canon)

    def __call__(self, url, body, ctype="application/json", headers=None):
        self.calls += 1
        if not self.up:
            return -1
        if self.status is not None:
            return self.status
        doc = json.loads(body)
        batch = url.endswith(self.t["batch"]["path"])
        if batch:
            self.batches += 1
            docs = doc[self.t["batch"]["field"]]
        else:
            assert url.endswith(self.t["reading"]["path"])
            docs = [doc]
        staged, results = {}, []
        for r in docs:
            what, seq, canon = self._check(r, staged)
            if what == 409:
                return 409  # atomic: nothing of this request is stored
            if what == "stored":
                staged[seq] = canon
            results.append(what)
        for seq in sorted(staged):
            self.stored[seq] = staged[seq]
            self.order.append(seq)
        self.duplicates += results.count("duplicate")
        if batch:
            return 200
        return 201 if results == ["stored"] else 200


def make_app(tmp_path, ct, server, clock, p=-1500.0):
    return ws.make_app(main, config, str(tmp_path / "data"), clock, server, p)


def run_interval(app, clock):
    clock.advance(10000)
    return app.step()


def test_a_day_offline_nothing_lost_or_duplicated(tmp_path, ct, schema):
    server = Server(ct, schema)
    clock = ws.WrapClock(0)
    app = make_app(tmp_path, ct, server, clock)
    for _ in range(10):  # online for a while
        run_interval(app, clock)
        app.flush()
    server.up = False
    for _ in range(DAY):
        r = run_interval(app, clock)
        assert r is not None
        app.flush(budget=1)  # every attempt fails, the app just carries on
    assert app.spool.pending() == DAY
    assert len(server.stored) == 10
    server.up = True
    while app.spool.pending():
        assert app.flush(budget=50) > 0
    want = list(range(1, DAY + 11))
    assert server.order == want  # in order, none missing
    assert len(server.stored) == len(want) and server.duplicates == 0
    assert app.spool.segments() in ([], [app.spool.wseg])
    # 1500 W imported for 8650 x 10 s, counted by the chip since the App configured it
    last = json.loads(server.stored[want[-1]])
    assert last["energy_import_wh"] == pytest.approx(1500 * (DAY + 10) * 10 / 3600, abs=0.02)
    assert last["energy_export_wh"] == 0


def test_reboot_during_replay_resends_only_identical(tmp_path, ct, schema):
    server = Server(ct, schema)
    clock = ws.WrapClock(0)
    app = make_app(tmp_path, ct, server, clock)
    server.up = False
    for _ in range(1000):
        run_interval(app, clock)
    server.up = True
    app.flush(budget=100)
    # power cut after sending 30 more, before their ack reached flash
    recs = app.spool.peek(30)
    for rec in recs:
        body, _ = ct.signed_body(spool.unpack(ct, rec, app.cfg["meter_id"], main.FW), app.key)
        server(app.tp.reading_url, body)
    app2 = make_app(tmp_path, ct, server, clock)  # reboot: state from flash only
    assert app2.ledger.seq == 1000
    while app2.spool.pending():
        app2.flush(budget=100)
    for _ in range(5):
        run_interval(app2, clock)
        app2.flush()
    assert server.order == list(range(1, 1006))
    assert server.duplicates == 30  # acknowledged as duplicates, stored once


def test_spool_capacity_and_overflow(tmp_path, ct):
    cfg = config.DEFAULTS["spool"]
    assert cfg["segment_records"] * cfg["max_segments"] >= DAY  # >= 24 h at 10 s
    assert cfg["segment_records"] * cfg["max_segments"] * spool.SIZE < 2_000_000  # fits flash
    sp = spool.Spool(str(tmp_path / "q"), 10, 3)
    for k in range(1, 46):
        sp.append((k,) + (0,) * 14 + (b"\0" * 32,))
    got = [r[0] for r in sp.peek(100)]
    assert got == list(range(21, 46)) and sp.dropped == 20  # oldest dropped, counted


def test_torn_records_are_skipped(tmp_path, ct):
    sp = spool.Spool(str(tmp_path / "q"), 100, 3)
    for k in range(1, 4):
        sp.append((k,) + (0,) * 14 + (b"\0" * 32,))
    name = sp._name(sp.wseg)
    with open(name, "r+b") as f:
        f.seek(spool.SIZE + 5)
        f.write(b"\xff\xff")  # flash corruption in record 2
    with open(name, "ab") as f:
        f.write(b"\x01\x02\x03")  # torn append at power loss
    assert [r[0] for r in sp.peek(10)] == [1, 3]


def test_energy_survives_torn_write_losing_one_interval(tmp_path):
    led = meter.Ledger(str(tmp_path / "energy"), 2)
    for _ in range(20):
        led.book(0, True, 3600000)  # 1 Wh export
        led.book(1, False, 1800000)
        led.next_seq()
        led.persist()
    before = (list(led.mj), led.seq)
    led.book(0, True, 3600000)
    led.next_seq()
    led.persist()
    # power cut in the middle of that last write: the newest slot is torn
    newest = led.rec._name(led.rec.gen % led.rec.slots)
    with open(newest, "r+b") as f:
        f.truncate(10)
    led2 = meter.Ledger(str(tmp_path / "energy"), 2)
    assert (led2.mj, led2.seq) == before
    assert led2.export_mj(0) // 3600 == 20000 and led2.import_mj(1) // 3600 == 10000


@pytest.mark.parametrize("p", [-2500.0, 0.0, 2500.0])
def test_counters_monotonic_and_signed(tmp_path, ct, schema, p):
    clock = ws.WrapClock(0)
    app = make_app(tmp_path, ct, Server(ct, schema), clock, p)
    g = app.grid
    imp0, exp0 = 0, 0
    for k in range(30):
        ws.set_power(app, p * (1 if k % 3 else 0.3))
        clock.advance(1000 + 37 * k)
        app.step()
        led = app.ledger
        assert led.import_mj(g) >= imp0 and led.export_mj(g) >= exp0
        imp0, exp0 = led.import_mj(g), led.export_mj(g)
    assert (exp0 > 0) == (p > 0) and (imp0 > 0) == (p < 0)


def test_app_readings_validate_against_schema(tmp_path, ct, schema):
    server = Server(ct, schema)
    clock = ws.WrapClock(0)
    app = make_app(tmp_path, ct, server, clock)

    class Ev:
        def take_sha(self):
            return contract.sha256_hex(b"\xff\xd8jpeg")

    app.evidence = Ev()
    ws.set_power(app, 987.65)
    for _ in range(3):
        r = run_interval(app, clock)
    body, _ = ct.signed_body(r, app.key)
    doc = json.loads(body)
    jsonschema.validate(doc, schema)
    # the interval's energy over its length: the chip's counts, 22.5 J each
    assert doc["timestamp"].endswith("Z") and doc["watts"] == pytest.approx(987.65, abs=3)
    assert doc["schema_version"] == 2 and doc["solar_watts"] == pytest.approx(987.65, abs=3)
    assert doc["image_sha256"] == contract.sha256_hex(b"\xff\xd8jpeg")
    for k in ("voltage", "current", "watts", "timestamp", "meter_id", "seq", "pf", "frequency",
              "energy_import_wh", "energy_export_wh", "solar_current", "solar_pf",
              "solar_energy_export_wh", "solar_energy_import_wh"):
        assert k in doc


def test_power_cut_loses_at_most_one_interval_and_never_double_counts(tmp_path, ct, schema):
    """A power cut mid-interval: the rebooted meter starts from the ledger persisted with the
    last reading, so the energy read from the chip since then (< one interval) is lost, and
    nothing is booked twice: the counters go on from the persisted value."""
    server = Server(ct, schema)
    clock = ws.WrapClock(0)
    app = make_app(tmp_path, ct, server, clock)
    for _ in range(5):
        r = run_interval(app, clock)
    persisted = app.ledger.import_mj(app.grid)
    assert float(r["energy_import_wh"]) == persisted // 3600 / 1000
    for _ in range(7):  # 7 s into the next interval, polled: booked in RAM only
        clock.advance(1000)
        app.step()
    assert app.ledger.import_mj(app.grid) > persisted
    app2 = make_app(tmp_path, ct, server, clock)  # power back: state from flash only
    assert app2.ledger.import_mj(app2.grid) == persisted and app2.ledger.seq == 5
    r2 = run_interval(app2, clock)
    assert r2["seq"] == 6
    gained = app2.ledger.import_mj(app2.grid) - persisted
    assert 0 < gained <= 1500 * 10_000 + 2 * ws.COUNT_MJ  # this interval's, once


def test_chip_irq_polls_at_once(tmp_path, ct, schema):
    clock = ws.WrapClock(0)
    app = make_app(tmp_path, ct, Server(ct, schema), clock)
    clock.advance(1000)
    app.step()
    clock.advance(100)  # well inside the poll period: nothing read
    assert app.measure() is None
    app.on_irq()  # the chip raised MTR_IRQ (e.g. a CRC error): health check and read now
    assert app.measure() is not None and not app.irq
