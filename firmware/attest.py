# Interval attestations signed with the meter's own secp256k1 key (contract/attestation.json).
#
# Every reading that goes into the store-and-forward spool is also a leaf of the open
# interval's Merkle tree. When a reading falls past the interval's end, the interval is closed:
# the attestation (cumulative mJ counters, the readings' seq range and Merkle root) is hashed
# as EIP-712 typed data, signed, and appended to its own spool, which the App sends like the
# readings. The tree is kept as O(log n) subtree roots and persisted with every leaf, so a
# reboot mid-interval loses nothing; the cumulative counters make a lost attestation harmless
# (the next one's delta covers it).
import hashlib
import json
import struct

import eip712
import secp256k1
import spool
import store

try:
    import os
except ImportError:  # pragma: no cover
    import uos as os

try:
    from binascii import hexlify
except ImportError:  # pragma: no cover
    from ubinascii import hexlify

# seq, intervalStart, intervalEnd, exportMj, importMj, firstReadingSeq, readingCount,
# readingsRoot, r, s, v: the whole signed attestation, so it is signed once, never again
FMT = "<QQQQQQI32s32s32sB"
# last seq, open start, open end, first reading seq, leaves, export, import, last end, depth
_STATE = "<QQQQIQQQB"
KEY_FILE = "device.key"


def leaf(text):
    """Merkle leaf of one reading: SHA-256(0x00 || canonical text without sig)."""
    return hashlib.sha256(b"\x00" + text).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


class Merkle:
    """RFC 6962 Merkle Tree Hash, built leaf by leaf from a stack of perfect subtrees."""

    def __init__(self, stack=None):
        self.stack = stack if stack is not None else []  # [(height, hash)], heights decreasing

    def add(self, h):
        st = self.stack
        st.append((0, h))
        while len(st) > 1 and st[-1][0] == st[-2][0]:
            right = st.pop()
            left = st.pop()
            st.append((left[0] + 1, node(left[1], right[1])))

    def root(self):
        st = self.stack
        if not st:
            return hashlib.sha256(b"").digest()
        r = st[-1][1]
        for i in range(len(st) - 2, -1, -1):
            r = node(st[i][1], r)
        return r


def load_key(path=KEY_FILE):
    """The device's private key (int) from its file, or None if the meter has none yet."""
    try:
        with open(path, "rb") as f:
            b = f.read()
    except OSError:
        return None
    d = int.from_bytes(b, "big") if len(b) == 32 else 0
    if not 0 < d < secp256k1.N:
        raise ValueError("device key file %s is damaged" % path)
    return d


def create_key(path=KEY_FILE, read=None):
    """New key from the hardware RNG (os.urandom is the ESP32's TRNG), written via a temp file.

    Returns the key; callers show only its address."""
    if read is None:
        read = os.urandom
    d = secp256k1.key_from_entropy(read)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(d.to_bytes(32, "big"))
    os.rename(tmp, path)
    return d


def hex0x(b):
    return "0x" + hexlify(b).decode()


class Attestor:
    def __init__(self, spec, domain, meter_id, key, data_dir, interval_s, log=print):
        """spec: contract/attestation.json; domain: {"chainId": int, "verifyingContract": "0x.."}
        from the deployment; key: the device key (int)."""
        e = spec["eip712"]
        lim = spec["device"]["attest_interval_s"]
        if not lim["minimum"] <= interval_s <= lim["maximum"]:
            raise ValueError("attest_interval_s must be %d..%d" % (lim["minimum"], lim["maximum"]))
        self.types = e["types"]
        self.primary = e["primaryType"]
        dom = {}
        for k in e["domain"]:
            dom[k] = e["domain"][k]
        for k in ("chainId", "verifyingContract"):
            dom[k] = domain[k]
        self.domain = dom
        self.domain_sep = eip712.hash_struct(self.types, "EIP712Domain", dom)
        self.meter_id = meter_id
        # constant words of every struct hash: the type hash and the meter id's hash
        self._known = {"": eip712.type_hash(self.types, self.primary)}
        for f in self.types[self.primary]:
            if f["name"] == "meterId":
                self._known["meterId"] = eip712.encode_value(f["type"], meter_id)
        self.key = key
        self.address = secp256k1.checksum_address(secp256k1.address(key))
        self.period = interval_s
        self.log = log
        store.mkdirs(data_dir)
        self.spool = spool.Spool(data_dir + "/attest", 64, 16, FMT)  # 1024: 10 days at 15 min
        self.rec = store.RotatingRecord(data_dir + "/attest-state")
        self.seq = 0
        self.start = self.end = self.first = self.count = 0
        self.export_mj = self.import_mj = self.last_end = 0
        self.merkle = Merkle()
        b = self.rec.load()
        if b is not None:
            self._restore(b)

    # -- state on flash ----------------------------------------------------------------------
    def _restore(self, b):
        n = struct.calcsize(_STATE)
        (self.seq, self.start, self.end, self.first, self.count, self.export_mj, self.import_mj,
         self.last_end, depth) = struct.unpack(_STATE, b[:n])
        stack = []
        for i in range(depth):
            o = n + 33 * i
            stack.append((b[o], bytes(b[o + 1:o + 33])))
        self.merkle = Merkle(stack)

    def _save(self):
        st = self.merkle.stack
        b = struct.pack(_STATE, self.seq, self.start, self.end, self.first, self.count,
                        self.export_mj, self.import_mj, self.last_end, len(st))
        for h, x in st:
            b += bytes([h]) + x
        self.rec.save(b)

    # -- the hook at every spooled reading ---------------------------------------------------
    def add(self, text, seq, t, export_mj, import_mj):
        """A reading was spooled: its canonical text without sig (bytes), seq, unix time and the
        energy counters it reports. Returns the attestation record it closed, or None."""
        closed = None
        if self.count and t >= self.end:
            closed = self.close()
        if not self.count:
            start = t - t % self.period
            # a shorter interval after a change of attest_interval_s, never an overlap
            self.start = max(start, self.last_end)
            self.end = start + self.period
            self.first = seq
            self.merkle = Merkle()
        self.merkle.add(leaf(text))
        self.count += 1
        self.export_mj = export_mj
        self.import_mj = import_mj
        self._save()
        return closed

    def close(self):
        """Sign the open interval and queue it (spool first: a crash before the state is saved
        re-signs the identical attestation, which the server acknowledges as a duplicate)."""
        root = self.merkle.root()
        seq = self.seq + 1
        r, s, v = secp256k1.sign(self.key, self.digest(self.message_of(
            (seq, self.start, self.end, self.export_mj, self.import_mj, self.first, self.count,
             root))))
        rec = (seq, self.start, self.end, self.export_mj, self.import_mj, self.first, self.count,
               root, r.to_bytes(32, "big"), s.to_bytes(32, "big"), v)
        self.spool.append(rec)
        self.seq = seq
        self.last_end = self.end
        self.count = 0
        self.merkle = Merkle()
        self._save()
        return rec

    # -- encoding ------------------------------------------------------------------------------
    def message_of(self, rec):
        """EIP-712 message (member names of contract/attestation.json) of a record."""
        return {"meterId": self.meter_id, "seq": rec[0], "intervalStart": rec[1],
                "intervalEnd": rec[2], "exportMj": rec[3], "importMj": rec[4],
                "firstReadingSeq": rec[5], "readingCount": rec[6], "readingsRoot": rec[7]}

    def digest(self, message):
        known = self._known if message["meterId"] == self.meter_id else None
        return eip712.digest(self.domain_sep,
                             eip712.hash_struct(self.types, self.primary, message, known))

    def body(self, rec):
        """Wire JSON (bytes) of a record: the message, the domain's chainId/verifyingContract,
        signature 0x r || s || v."""
        m = self.message_of(rec)
        m["readingsRoot"] = hex0x(rec[7])
        m["chainId"] = self.domain["chainId"]
        m["verifyingContract"] = self.domain["verifyingContract"]
        m["signature"] = hex0x(rec[8] + rec[9] + bytes([rec[10]]))
        return json.dumps(m).encode()
