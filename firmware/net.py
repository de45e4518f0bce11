# Wi-Fi with exponential backoff, HTTP POST over a plain socket, clock from NTP.
#
# No urequests: a 60-line POST we can test against a real HTTP server on the host, and that
# never raises out of the main loop (every failure is a status code < 0). HTTPS works when
# the port has the ssl module (ESP32 does).
import socket
import time

import ticks


class Backoff:
    """Delay before the next attempt: 1 s doubling up to cap_s, reset on success.

    It keeps the time of the failure, not a deadline: due() may not be asked for days (the
    MQTT and upload backoffs are only asked while Wi-Fi is up). Time since a past moment
    reads as 'long over' once it passes PERIOD/2 (ticks.elapsed), at worst as a few seconds
    at k * PERIOD + x (one more delay, at most cap_s); a deadline left behind by more than
    PERIOD/2 would read as still 6 days ahead.
    """

    def __init__(self, first_s=1, cap_s=300):
        self.first = first_s * 1000
        self.cap = cap_s * 1000
        self.delay = 0
        self.failed_at = None

    def due(self, now):
        return self.failed_at is None or ticks.elapsed(now, self.failed_at) >= self.delay

    def failed(self, now):
        self.delay = self.first if not self.delay else min(self.cap, self.delay * 2)
        self.failed_at = now

    def ok(self):
        self.delay = 0
        self.failed_at = None


class Wifi:
    """Keeps a STA connection up without blocking the metering loop.

    wlan: network.WLAN(network.STA_IF) on the device, a fake in tests.
    """

    def __init__(self, wlan, networks, clock=ticks.ticks_ms, timeout_ms=15000):
        self.wlan = wlan
        self.nets = networks
        self.clock = clock
        self.backoff = Backoff()
        self.timeout = timeout_ms
        self.started = None
        self.which = 0
        self.attempts = 0

    def poll(self):
        """Call often; returns True while connected."""
        now = self.clock()
        if self.wlan.isconnected():
            if self.started is not None:
                self.backoff.ok()
                self.started = None
            return True
        if self.started is not None:
            if ticks.elapsed(now, self.started) < self.timeout:
                return False
            self.started = None
            self.backoff.failed(now)
            self.which = (self.which + 1) % max(1, len(self.nets))
            return False
        if not self.nets or not self.backoff.due(now):
            return False
        n = self.nets[self.which]
        self.attempts += 1
        try:
            self.wlan.active(True)
            self.wlan.connect(n["ssid"], n.get("password", ""))
            self.started = now
        except OSError:
            self.backoff.failed(now)
        return False


def parse_url(url):
    proto, _, rest = url.partition("://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    tls = proto == "https"
    return host, int(port) if port else (443 if tls else 80), "/" + path, tls


def _send(s, b):
    # CPython and MicroPython sockets have sendall; MicroPython's TLS stream only has write
    if hasattr(s, "sendall"):
        s.sendall(b)
    else:
        s.write(b)


def http_post(url, body, ctype="application/json", headers=None, timeout=10):
    """POST body (bytes); returns the HTTP status, or -1 on any network error."""
    host, port, path, tls = parse_url(url)
    s = None
    try:
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        s = socket.socket(ai[0], socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(ai[-1])
        if tls:
            import ssl

            s = ssl.wrap_socket(s, server_hostname=host)
        head = "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
            path, host, ctype, len(body))
        if headers:
            for k in headers:
                head += "%s: %s\r\n" % (k, headers[k])
        _send(s, head.encode() + b"\r\n")
        _send(s, body)
        rd = s.recv if hasattr(s, "recv") else s.read
        line = b""
        while not line.endswith(b"\n"):
            c = rd(1)
            if not c:
                break
            line += c
        parts = line.split(None, 2)
        return int(parts[1]) if len(parts) >= 2 else -1
    except (OSError, ValueError, IndexError):
        return -1
    finally:
        if s is not None:
            try:
                s.close()
            except OSError:
                pass


UNIX_2000 = 946684800


def unix_time():
    """Seconds since 1970 whatever the port's epoch (ESP32 builds may count from 2000)."""
    t = time.time()
    try:
        if time.gmtime(0)[0] == 2000:
            t += UNIX_2000
    except (AttributeError, OverflowError):
        pass
    return int(t)


def ntp_sync(host="pool.ntp.org"):
    """Set the RTC from NTP (device). Returns True on success; False keeps the old clock."""
    try:
        import ntptime

        ntptime.host = host
        ntptime.settime()
        return True
    except (ImportError, OSError, OverflowError):
        return False


def clock_valid():
    """Before the first NTP sync the RTC starts at its epoch; don't stamp readings with it."""
    return unix_time() > 1700000000
