# Open Metering Device application: measure continuously, report every interval, never stop.
#
# App holds the logic with its I/O injected (the chip meter, clocks, HTTP, MQTT, camera), so
# the same code runs in the CPython tests against the chip simulator; run() wires the real
# hardware. Nothing the network does can stop measuring: failures only grow the spool.
#
# Board rev B: the ATM90E32AS integrates energy itself (meter.ChipMeter). Energy is booked
# from its read-to-clear registers into the ledger (integer mJ per channel and direction);
# the reading's watts are that energy over the interval, so power and counters always agree.
import config
import net
import spool
import ticks
import transport

import contract

FW = "0.1.0"
# An interval and the stall bridged after it (two intervals) must stay well inside the
# PERIOD/2 that ticks_diff can measure
MAX_INTERVAL_MS = ticks.HALF // 4
SCHEMA_VERSION = 2


class Rms:
    """One channel's live values over an interval: mean squares of V and I, mean S."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.n = 0
        self.v2 = 0.0
        self.i2 = 0.0

    def add(self, r):
        self.n += 1
        self.v2 += r.vrms * r.vrms
        self.i2 += r.irms * r.irms

    def values(self):
        if not self.n:
            return None
        return (self.v2 / self.n) ** 0.5, (self.i2 / self.n) ** 0.5


class App:
    def __init__(self, cfg, ct, meter, clock_ms, unix_time, http, data_dir,
                 mqtt=None, evidence=None, log=print, attestor=None):
        self.cfg = cfg
        self.ct = ct
        self.meter = meter  # meter.ChipMeter: poll(), readings(), ledger, close_interval()
        self.clock = clock_ms
        self.unix = unix_time
        self.http = http  # net.http_post(url, body, ctype, headers) -> status, -1 network error
        self.mqtt = mqtt  # object with publish_state(body) or None
        self.evidence = evidence
        self.log = log
        self.attestor = attestor  # attest.Attestor: device-signed interval attestations, or None
        self.key = contract.key_from_hex(cfg["key_hex"]) if cfg["key_hex"] else b""
        self.tp = transport.Transport(ct.transport, cfg["server_url"], cfg["meter_id"])
        if evidence is not None and evidence.upload is None:
            evidence.upload = self.upload_image
        self.batch = max(1, cfg.get("upload_batch", 50))
        self.backoff = net.Backoff(2, 120)
        self.last_action = None
        names = [ch["name"] for ch in meter.chans]
        # the contract's two points; a channel set without them is a configuration error
        self.solar = names.index("solar")
        self.grid = names.index("grid")
        self.ledger = meter.ledger
        sp = cfg["spool"]
        self.spool = spool.Spool(data_dir + "/spool", sp["segment_records"], sp["max_segments"])
        self.rms = [Rms() for _ in names]
        self.freq = 0.0
        self.nfreq = 0
        self.interval = cfg["interval_s"] * 1000
        if not 0 < self.interval <= MAX_INTERVAL_MS:
            self.interval = min(max(self.interval, 1000), MAX_INTERVAL_MS)
            log("config: interval_s out of range, using %d s" % (self.interval // 1000))
        self.t_interval = clock_ms()
        meter.poll(self.t_interval)  # configure the chip now: the first interval is metered
        meter.close_interval(self.t_interval)
        self.irq = False
        self.rejected = 0
        self.sent = 0
        self.last = None

    def on_irq(self, _pin=None):
        """MTR_IRQ handler: the chip flagged a CRC error, reset or warning. Only a flag here
        (an interrupt must not do SPI); the next step polls and health-checks at once."""
        self.irq = True

    def measure(self):
        now = self.clock()
        if self.irq:
            self.irq = False
            self.meter.wake()
        if not self.meter.poll(now):
            return None
        # energy is booked; the live values only feed V, I and PF of the reading. A bus fault
        # here loses those samples, never energy (the next poll health-checks the chip)
        try:
            rs = self.meter.readings()
            f = self.meter.frequency()
        except self.meter.Error as e:
            self.log("meter: live values: %s" % e)
            return None
        for k, r in enumerate(rs):
            self.rms[k].add(r)
        if 40.0 <= f <= 70.0:
            self.freq += f
            self.nfreq += 1
        return rs

    def _channel(self, k, p, d):
        """(voltage, current, watts, pf) of channel k, fixed-point, bounded by the contract."""
        v, i = self.rms[k].values()
        s = v * i
        pf = abs(p) / s if s > 0 else 0.0
        return (contract.fx(min(v, 500.0), d["voltage"]), contract.fx(min(i, 100.0), d["current"]),
                contract.fx(max(-50000.0, min(50000.0, p)), d["watts"]),
                contract.fx(pf if pf < 1.0 else 1.0, d["pf"]))

    def reading(self, t, power):
        """The v2 reading: top-level fields are the grid connection (v1's meaning), solar_*
        the inverter's output; consumption is derived by whoever needs it (solar - grid)."""
        if self.rms[self.grid].values() is None or self.rms[self.solar].values() is None:
            return None
        d = self.ct.decimals
        led = self.ledger
        v, i, w, pf = self._channel(self.grid, power[self.grid], d)
        _, si, sw, spf = self._channel(self.solar, power[self.solar], d)
        r = {
            "schema_version": SCHEMA_VERSION,
            "meter_id": self.cfg["meter_id"],
            "seq": led.next_seq(),
            "timestamp": contract.iso_utc(spool.civil(t)),
            "voltage": v,
            "current": i,
            "watts": w,
            "pf": pf,
            # floor: a displayed counter never has to go back
            "energy_import_wh": contract.Fx(led.import_mj(self.grid) // 3600, 3),
            "energy_export_wh": contract.Fx(led.export_mj(self.grid) // 3600, 3),
            "solar_current": si,
            "solar_watts": sw,
            "solar_pf": spf,
            "solar_energy_export_wh": contract.Fx(led.export_mj(self.solar) // 3600, 3),
            "solar_energy_import_wh": contract.Fx(led.import_mj(self.solar) // 3600, 3),
            "fw": FW,
        }
        if self.nfreq:
            r["frequency"] = contract.fx(self.freq / self.nfreq, d["frequency"])
        if self.evidence is not None:
            sha = self.evidence.take_sha()
            if sha:
                r["image_sha256"] = sha
        return r

    def close_interval(self, now):
        """End of interval: seq + counters persisted first, then the reading is spooled.

        The chip's registers were read-to-clear into the ledger: persisting it with the seq
        before the reading exists means a power cut loses at most this interval's energy
        (read since the last persist) and a reading is never counted twice."""
        power = self.meter.close_interval(now)
        t = self.unix()
        r = self.reading(t, power) if t is not None else None
        self.ledger.persist()  # without a clock (no reading) the counters are still kept
        if r is not None:
            rec = spool.pack(self.ct, r, t)
            self.spool.append(rec)
            self.last = r
            if self.attestor is not None:
                # the leaf is the text the server will store: the spooled record, as sent;
                # the attested energy is the solar production (the energy token's base)
                text = self.ct.canonical(spool.unpack(self.ct, rec, self.cfg["meter_id"], FW))
                led = self.ledger
                self.attestor.add(text.encode(), r["seq"], int(t), led.export_mj(self.solar),
                                  led.import_mj(self.solar))
            if self.mqtt is not None:
                try:
                    body, _ = self.ct.signed_body(r, self.key)
                    self.mqtt.publish_state(body)
                except OSError:
                    self.mqtt = None  # reconnect logic lives in run()
        for x in self.rms:
            x.reset()
        self.freq = 0.0
        self.nfreq = 0
        return r

    def upload_image(self, img, sha):
        """Evidence upload: raw JPEG, signed as contract/transport.json says. -> HTTP status."""
        return self.http(self.tp.image_url, img, self.tp.image_type,
                         self.tp.image_headers(self.ct, self.key, sha))

    def _body(self, rec):
        r = spool.unpack(self.ct, rec, self.cfg["meter_id"], FW)
        return self.ct.signed_body(r, self.key)[0]

    def _post_one(self, rec, body):
        act = self.tp.action(self.http(self.tp.reading_url, body, self.tp.json_type, None))
        if act == transport.DELIVERED:
            self.sent += 1
        elif act == transport.REJECTED:
            # e.g. 409: the server holds this seq with other content. Retrying can never
            # succeed, and keeping it would block everything behind it: log it and drop it
            self.rejected += 1
            self.log("queue: reading seq %d rejected by the server, dropped" % rec[0])
        return act

    def flush(self, budget=None):
        """Send queued readings in seq order: one reading alone, a backlog as batches.

        Returns how many left the queue (delivered or rejected); 0 with readings still
        queued means 'back off' (see last_action). Nothing is removed before the server
        answered for it, so a reboot mid-way re-sends identical bodies (-> duplicates)."""
        recs = self.spool.peek(budget or self.batch)
        if not recs:
            return 0
        bodies = [self._body(rec) for rec in recs]
        if len(recs) == 1:
            act = self._post_one(recs[0], bodies[0])
            done = 0 if act in (transport.RETRY, transport.SPLIT) else 1
        else:
            code = self.http(self.tp.batch_url, self.tp.batch_body(bodies), self.tp.json_type,
                             None)
            act = self.tp.action(code)
            done = 0
            if act == transport.DELIVERED:
                done = len(recs)  # 200: each one stored or duplicate
                self.sent += done
            elif act == transport.SPLIT:
                self.batch = max(1, len(recs) // 2)
            elif act == transport.REJECTED:
                # the batch is atomic: nothing was stored. Send one by one up to the first
                # culprit and drop it; the rest goes as a batch again next time. Every pass
                # removes at least one reading or backs off, so this cannot loop
                for k in range(len(recs)):
                    a = self._post_one(recs[k], bodies[k])
                    if a in (transport.RETRY, transport.SPLIT):
                        act = a
                        break
                    done += 1
                    if a == transport.REJECTED:
                        break
        self.last_action = act
        if done:
            self.spool.ack(done)
        return done

    def pump(self, now=None):
        """The network half of a main-loop pass (Wi-Fi up): evidence, then the queue."""
        if self.evidence is not None:
            self.evidence.poll()
        now = self.clock() if now is None else now
        attest = self.attestor is not None and self.attestor.spool.pending()
        if not self.backoff.due(now) or not (attest or self.spool.pending()):
            return 0
        done = self.flush() if self.spool.pending() else 0
        if not self.spool.pending():
            done += self.flush_attestations()  # after the readings they cover
        if done:
            self.backoff.ok()
        elif self.last_action != transport.SPLIT:
            self.backoff.failed(now)  # server down, 5xx, 401: keep everything, retry later
        return done

    def flush_attestations(self):
        """Send queued attestations oldest first, one per request; same status rules."""
        a = self.attestor
        done = 0
        while a is not None and self.tp.attestation_url:
            recs = a.spool.peek(1)
            if not recs:
                break
            act = self.tp.action(self.http(self.tp.attestation_url, a.body(recs[0]),
                                           self.tp.json_type, None))
            self.last_action = act
            if act == transport.DELIVERED:
                self.sent += 1
            elif act == transport.REJECTED:
                # a later attestation's cumulative counters cover this one's energy
                self.rejected += 1
                self.log("queue: attestation seq %d rejected by the server, dropped" % recs[0][0])
            else:
                break
            a.spool.ack(1)
            done += 1
        return done

    def step(self):
        """One pass of the main loop: a poll of the chip if due, and the interval's end."""
        self.measure()
        now = self.clock()
        late = ticks.elapsed(now, self.t_interval)
        if late >= self.interval:
            if late >= 2 * self.interval:
                self.t_interval = now  # we fell behind (stall): realign, don't burst-report
            else:
                self.t_interval = ticks.ticks_add(self.t_interval, self.interval)
            return self.close_interval(now)
        return None


def attestor_of(cfg, contract_dir, data_dir, key_path=None):
    """attest.Attestor for the configured chain, or None while no chain is configured."""
    import json

    import attest

    a = cfg["attest"]
    if not a["chain_id"] or not a["verifier"]:
        print("attestations: off (no chain_id / verifier in config.json attest)")
        return None
    key_path = key_path or attest.KEY_FILE
    if attest.load_key(key_path) is None:
        import provision

        provision.device_key(key_path)  # a meter configured before attestations existed
    key = attest.load_key(key_path)
    with open(contract_dir + "/attestation.json") as f:
        spec = json.load(f)
    att = attest.Attestor(spec, {"chainId": a["chain_id"], "verifyingContract": a["verifier"]},
                          cfg["meter_id"], key, data_dir, a["interval_s"])
    print("attestations: every %d s, device address %s" % (a["interval_s"], att.address))
    return att


def chip_meter(cfg, data_dir):  # pragma: no cover - device wiring
    """meter.ChipMeter on the board's SPI bus (pin map MTR_*), and the MTR_IRQ pin."""
    import time

    import m90e32as as F
    import meter
    import pinmap
    from machine import SPI, Pin

    g = pinmap.gpio
    cs = Pin(g("MTR_CS"), Pin.OUT, value=1)
    spi = SPI(1, baudrate=F.SPI_BAUD, polarity=F.SPI_POLARITY, phase=F.SPI_PHASE,
              sck=Pin(g("MTR_SCLK")), mosi=Pin(g("MTR_MOSI")), miso=Pin(g("MTR_MISO")))
    drv = meter.ATM90E32(spi, cs, time.sleep_ms, time.sleep_us)
    store_dir = data_dir + "/meter"
    import store

    store.mkdirs(store_dir)
    return meter.ChipMeter(drv, config.chip_of(cfg), ticks, store_dir), Pin(g("MTR_IRQ"), Pin.IN)


def calibrate(cfg_path="config.json", data_dir="data"):  # pragma: no cover - REPL, on the device
    """import main; main.calibrate(): the reference-meter calibration of chipcal.run()."""
    import chipcal

    cfg, _ = config.load(cfg_path)
    chipcal.run(cfg_path, chip_meter(cfg, data_dir)[0])


def run(cfg_path="config.json", data_dir="data"):  # pragma: no cover - device wiring
    import evidence
    import mqtt
    import network
    import pinmap
    from machine import WDT, Pin

    cfg, exists = config.load(cfg_path)
    if not exists or not cfg["key_hex"]:
        import provision

        cfg = provision.run(cfg_path)
    ct = contract.load("contract")
    led = Pin(pinmap.gpio("LED_STATUS"), Pin.OUT)
    led_net = Pin(pinmap.gpio("LED_NET"), Pin.OUT)
    button = Pin(pinmap.gpio("BUTTON_USER"), Pin.IN)
    wlan = network.WLAN(network.STA_IF)
    wifi = net.Wifi(wlan, cfg["wifi"])
    cam, cam_status = (None, "camera: disabled")
    if cfg["camera"]["enabled"]:
        cam, cam_status = evidence.open_camera(cfg["camera"]["frame_size"],
                                               cfg["camera"]["jpeg_quality_pct"])
    print(cam_status)
    # upload=None: App fills in its signed upload from contract/transport.json
    ev = evidence.Evidence(cam, None, cfg["camera"]["every_s"], ticks.ticks_ms, cam_status)

    def unix():
        return net.unix_time() if net.clock_valid() else None

    mtr, irq = chip_meter(cfg, data_dir)
    att = attestor_of(cfg, "contract", data_dir)
    app = App(cfg, ct, mtr, ticks.ticks_ms, unix, net.http_post, data_dir, None, ev, print, att)
    irq.irq(app.on_irq, Pin.IRQ_RISING)
    wdt = WDT(timeout=120000)  # a hung driver reboots; a dead server never does
    mq_backoff = net.Backoff(2, 300)
    synced = False
    last_ping = ticks.ticks_ms()
    while True:
        wdt.feed()
        led.value(not led.value())
        app.step()
        if not button.value():
            ev.request()
        online = wifi.poll()
        led_net.value(1 if online else 0)
        if not online:
            continue
        now = ticks.ticks_ms()
        if not synced:
            synced = net.ntp_sync(cfg["ntp_host"])
        if cfg["mqtt"]["host"] and app.mqtt is None and mq_backoff.due(now):
            try:
                app.mqtt = mqtt.connect(ct, cfg["mqtt"], cfg["meter_id"], FW)
                mq_backoff.ok()
            except OSError as e:
                print("mqtt:", e)
                mq_backoff.failed(now)
        if app.mqtt is not None and ticks.elapsed(now, last_ping) > cfg["mqtt"]["keepalive"] * 500:
            last_ping = now
            try:
                app.mqtt.ping()
            except OSError:
                app.mqtt = None
        app.pump(now)


if __name__ == "__main__":  # pragma: no cover
    run()
