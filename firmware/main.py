# ruff: noqa: UP031  (%-formatting: smallest code path in MicroPython, same text on CPython)
# Open Metering Device application: measure continuously, report every interval, never stop.
#
# App holds the logic with its I/O injected (sampler, clocks, HTTP, MQTT, camera), so the
# same code runs in the CPython tests with the simulated front end; run() wires the real
# hardware. Nothing the network does can stop measuring: failures only grow the spool.
import config
import metering
import spool
import store

import contract

FW = "0.1.0"
ACCEPT_DUPLICATE = (200, 201, 202, 204, 208)
REJECTED = (400, 401, 403, 409, 422)  # the server will never take it: drop, count, go on


class App:
    def __init__(self, cfg, ct, sampler, data_dir, clock_ms, unix_time, http,
                 mqtt=None, evidence=None):
        self.cfg = cfg
        self.ct = ct
        self.sampler = sampler
        self.clock = clock_ms
        self.unix = unix_time
        self.http = http  # http(url, body, headers) -> status
        self.mqtt = mqtt  # object with publish(topic, payload, retain) or None
        self.evidence = evidence
        self.key = contract.key_from_hex(cfg["key_hex"]) if cfg["key_hex"] else b""
        self.cal = config.cal_of(cfg)
        store.mkdirs(data_dir)
        self.energy = store.Energy(data_dir + "/energy")
        sp = cfg["spool"]
        self.spool = spool.Spool(data_dir + "/spool", sp["segment_records"], sp["max_segments"])
        self.avg = metering.Averager()
        self.interval = cfg["interval_s"] * 1000
        self.t_last = None
        self.t_interval = clock_ms()
        self.rejected = 0
        self.sent = 0
        self.last = None

    def measure(self):
        r = self.sampler.measure(self.cal)
        now = self.clock()
        if self.t_last is not None:
            dt = now - self.t_last
            # a long stall (flash erase, TLS handshake) is bridged with this burst's power,
            # but never more than two intervals: beyond that the device was not measuring
            if dt > 2 * self.interval:
                dt = 2 * self.interval
            self.energy.add(r.p, dt)
        self.t_last = now
        self.avg.add(r)
        return r

    def reading(self, t):
        vals = self.avg.values()
        if vals is None:
            return None
        v, i, p, pf, f = vals
        d = self.ct.decimals
        r = {
            "meter_id": self.cfg["meter_id"],
            "seq": self.energy.next_seq(),
            "timestamp": contract.iso_utc(spool.civil(t)),
            "voltage": contract.fx(min(v, 500.0), d["voltage"]),
            "current": contract.fx(min(i, 100.0), d["current"]),
            "watts": contract.fx(max(-50000.0, min(50000.0, p)), d["watts"]),
            "pf": contract.fx(pf, d["pf"]),
            "energy_import_wh": contract.Fx(self.energy.import_mwh(), 3),
            "energy_export_wh": contract.Fx(self.energy.export_mwh(), 3),
            "fw": FW,
        }
        if f is not None and 40.0 <= f <= 70.0:
            r["frequency"] = contract.fx(f, d["frequency"])
        if self.evidence is not None:
            sha = self.evidence.take_sha()
            if sha:
                r["image_sha256"] = sha
        return r

    def close_interval(self):
        """End of interval: seq + counters persisted first, then the reading is spooled."""
        t = self.unix()
        r = None
        if t is not None:
            r = self.reading(t)
        if r is not None:
            # seq is on flash before the reading exists anywhere: never reused after a crash
            self.energy.persist()
            self.spool.append(spool.pack(self.ct, r, t))
            self.last = r
            if self.mqtt is not None:
                try:
                    body, _ = self.ct.signed_body(r, self.key)
                    self.mqtt.publish_state(body)
                except OSError:
                    self.mqtt = None  # reconnect logic lives in run()
        else:
            self.energy.persist()  # no clock yet: still keep the counters
        self.avg.reset()
        return r

    def flush(self, budget=30):
        """Send queued readings in seq order. Returns number acknowledged this call."""
        recs = self.spool.peek(budget)
        done = 0
        for rec in recs:
            r = spool.unpack(self.ct, rec, self.cfg["meter_id"], FW)
            body, _ = self.ct.signed_body(r, self.key)
            code = self.http(self.cfg["server_url"], body, {"X-Meter-Id": self.cfg["meter_id"]})
            if code in ACCEPT_DUPLICATE:
                self.sent += 1
            elif code in REJECTED:
                self.rejected += 1
            else:
                break  # server down / 5xx: keep it, try again later
            done += 1
        if done:
            self.spool.ack(done)
        return done

    def step(self):
        """One pass of the main loop: a burst, and the interval's end if due."""
        self.measure()
        now = self.clock()
        if now - self.t_interval >= self.interval:
            self.t_interval += self.interval
            if now - self.t_interval >= self.interval:
                self.t_interval = now  # we fell behind (stall): realign, don't burst-report
            return self.close_interval()
        return None


def run(cfg_path="config.json", data_dir="data"):  # pragma: no cover - device wiring
    import time

    import evidence
    import mqtt
    import net
    import network
    import pinmap
    import sampler
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
                                               cfg["camera"]["jpeg_quality"])
    print(cam_status)
    key = contract.key_from_hex(cfg["key_hex"])
    img_url = config.image_url(cfg)

    def upload(img, sha):
        sig = contract.hmac_sha256_hex(key, sha.encode())
        return net.http_post(img_url, img, "image/jpeg",
                             {"X-Meter-Id": cfg["meter_id"], "X-Image-Sha256": sha,
                              "X-Signature": sig})

    ev = evidence.Evidence(cam, upload, cfg["camera"]["every_s"], time.ticks_ms, cam_status)

    def http(url, body, headers):
        return net.http_post(url, body, "application/json", headers)

    def unix():
        return net.unix_time() if net.clock_valid() else None

    smp = sampler.Sampler(cfg)
    print("sampler: %.0f pairs/s, I delay %.3f samples" % (smp.fs, smp.delay))
    app = App(cfg, ct, smp, data_dir, time.ticks_ms, unix, http, None, ev)
    wdt = WDT(timeout=120000)  # a hung driver reboots; a dead server never does
    mq_backoff = net.Backoff(2, 300)
    http_backoff = net.Backoff(2, 120)
    synced = False
    last_ping = time.ticks_ms()
    state_topic, avail_topic = mqtt.topics(ct.ha, cfg["meter_id"])
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
        now = time.ticks_ms()
        if not synced:
            synced = net.ntp_sync(cfg["ntp_host"])
        if cfg["mqtt"]["host"] and app.mqtt is None and mq_backoff.due(now):
            m = cfg["mqtt"]
            c = mqtt.MQTT("omd-" + cfg["meter_id"], m["host"], m["port"], m["user"],
                          m["password"], m["keepalive"])
            c.set_last_will(avail_topic, ct.ha["payload_not_available"], True)
            try:
                c.connect()
                mqtt.announce(c, ct.ha, cfg["meter_id"], FW)
                c.publish_state = lambda body, c=c: c.publish(state_topic, body, False)
                app.mqtt = c
                mq_backoff.ok()
            except OSError as e:
                print("mqtt:", e)
                mq_backoff.failed(now)
        if app.mqtt is not None and time.ticks_diff(now, last_ping) > cfg["mqtt"]["keepalive"] * 500:
            last_ping = now
            try:
                app.mqtt.ping()
            except OSError:
                app.mqtt = None
        if http_backoff.due(now) and app.spool.pending():
            if app.flush(10):
                http_backoff.ok()
            elif app.spool.pending():
                http_backoff.failed(now)
        ev.poll()


if __name__ == "__main__":  # pragma: no cover
    run()
