# Reading contract (contract/reading.schema.json): canonical encoding, HMAC-SHA256 signature.
#
# Runs unchanged under CPython and MicroPython. The facts (which fields are numbers and with
# how many decimals) are read from the bundled schema file, never re-typed here, so a change
# in the contract reaches the firmware through tools/bundle.py or breaks a test.
#
# ESP32 floats are 32-bit: 123456.789 Wh cannot be held in a float to the last decimal. Values
# whose precision matters are therefore carried as Fx (an integer mantissa with a fixed number
# of decimals) and formatted with integer arithmetic only.
import hashlib
import json

try:
    from binascii import hexlify, unhexlify
except ImportError:  # pragma: no cover - every port has binascii, belt and braces
    from ubinascii import hexlify, unhexlify


INF = float("inf")


class Fx:
    """Fixed-point number: value = m / 10**d, m an int (exact on a 32-bit-float MCU)."""

    def __init__(self, m, d):
        self.m = int(m)
        self.d = d

    def text(self, d=None):
        m, sd = self.m, self.d
        if d is None:
            d = sd
        if d > sd:
            m = m * 10 ** (d - sd)
        elif d < sd:
            # round half away from zero, like a meter display
            q = 10 ** (sd - d)
            m = (abs(m) + q // 2) // q * (1 if m >= 0 else -1)
        return fmt_int(m, d)

    def __float__(self):
        return self.m / 10 ** self.d

    def __repr__(self):
        return "Fx(" + self.text() + ")"


def fmt_int(m, d):
    """Format the int m as m / 10**d with exactly d decimals, no float involved."""
    neg = m < 0
    s = str(-m if neg else m)
    if d:
        if len(s) <= d:
            s = "0" * (d + 1 - len(s)) + s
        s = s[:-d] + "." + s[-d:]
    return "-" + s if neg else s


def fx(value, d):
    """Fx with d decimals from a float/int measurement (rounded once, at the source)."""
    if isinstance(value, Fx):
        return Fx(value.m, value.d)
    if isinstance(value, int):
        return Fx(value * 10**d, d)
    return Fx(int(round(value * 10**d)), d)


class Contract:
    """Facts of the reading contract, loaded from the JSON files (bundled on the device)."""

    def __init__(self, schema, ha=None, transport=None):
        self.schema = schema
        self.ha = ha
        self.transport = transport
        props = schema["properties"]
        self.decimals = {}
        self.integers = []
        self.bounds = {}
        self.strings = []
        for k in props:
            p = props[k]
            if "x-decimals" in p:
                self.decimals[k] = p["x-decimals"]
            elif p.get("type") == "integer":
                self.integers.append(k)
            elif p.get("type") == "string":
                self.strings.append(k)
            if "minimum" in p and "maximum" in p:
                self.bounds[k] = (p["minimum"], p["maximum"])
        self.fields = list(props)
        self.required = schema.get("required", [])

    def number(self, key, value):
        d = self.decimals[key]
        if isinstance(value, Fx):
            return value.text(d)
        if isinstance(value, int):
            return fmt_int(value * 10**d, d)
        # plain float (server-side vectors, CPython tests): '%.Nf' exactly as the contract says
        s = ("%." + str(d) + "f") % value
        if s[0] == "-" and not s.strip("-0."):
            s = s[1:]  # x-canonical zero: no sign
        return s

    def check(self, reading):
        """[(field, rule)] of the contract's edge rules (x-canonical integers, decimals,
        strings, bounds) this reading breaks; [] if none. The server refuses such a reading
        (422); the vectors' "refused" cases hold both sides to the same answer."""
        out = []
        for k in reading:
            v = reading[k]
            if k in self.strings:
                if not isinstance(v, str) or any(c < " " or c > "~" for c in v):
                    out.append((k, "strings"))
                continue
            if isinstance(v, Fx) or v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                out.append((k, "type"))
                continue
            if k in self.integers and isinstance(v, float) and (v != v or v in (INF, -INF)
                                                               or v != int(v)):
                out.append((k, "integers"))
            elif k in self.decimals and isinstance(v, float) and v == v and v not in (INF, -INF) \
                    and float(self.number(k, v)) != v:
                out.append((k, "decimals"))
            if k in self.bounds:
                lo, hi = self.bounds[k]
                if not lo <= v <= hi:
                    out.append((k, "bounds"))
        return out

    def canonical(self, reading):
        """Canonical JSON text (str) of reading; 'sig' is included if present in the dict."""
        parts = []
        for k in sorted(reading):
            v = reading[k]
            if v is None:
                continue
            if k not in self.fields:
                raise ValueError("field not in contract: " + k)
            if k in self.decimals:
                s = self.number(k, v)
            elif k in self.integers:
                if v != int(v):
                    raise ValueError("not an integer: " + k)
                s = str(int(v))
            else:
                s = json.dumps(v)
            parts.append(json.dumps(k) + ":" + s)
        return "{" + ",".join(parts) + "}"

    def signed_body(self, reading, key):
        """(body bytes, sig hex): body is the canonical text with 'sig' added."""
        r = {}
        for k in reading:
            if k != "sig":
                r[k] = reading[k]
        sig = hmac_sha256_hex(key, self.canonical(r).encode())
        r["sig"] = sig
        return self.canonical(r).encode(), sig


def load(directory="contract"):
    """Load the bundled contract files from directory (device: /contract)."""
    with open(directory + "/reading.schema.json") as f:
        schema = json.load(f)
    opt = []
    for name in ("homeassistant.json", "transport.json"):
        try:
            with open(directory + "/" + name) as f:
                opt.append(json.load(f))
        except OSError:
            opt.append(None)
    return Contract(schema, opt[0], opt[1])


def key_from_hex(key_hex):
    return unhexlify(key_hex)


def hmac_sha256(key, msg):
    """RFC 2104 HMAC: MicroPython has hashlib.sha256 but no hmac module."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (block - len(key))
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = hashlib.sha256(ipad)
    inner.update(msg)
    outer = hashlib.sha256(opad)
    outer.update(inner.digest())
    return outer.digest()


def hmac_sha256_hex(key, msg):
    return hexlify(hmac_sha256(key, msg)).decode()


def sha256_hex(data):
    return hexlify(hashlib.sha256(data).digest()).decode()


def iso_utc(t):
    """ISO 8601 UTC with Z from a time tuple (year, month, mday, hour, minute, second, ...)."""
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5])
