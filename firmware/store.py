# Crash-safe small records on flash (the energy ledger, the spool's position, attestations).
#
# A record is rewritten every reporting interval, so it rotates over `slots` files: each write
# goes to the next slot with a generation number and a checksum, boot takes the newest valid
# slot. A power cut during a write tears only that slot, and the previous one (one interval
# older) is used: at most one interval is lost. LittleFS (the ESP32 default) wear-levels
# underneath; rotating spreads the metadata churn over several files on top of that.
import hashlib
import struct

try:
    import os
except ImportError:  # pragma: no cover
    import uos as os


def _check(b):
    return hashlib.sha256(b).digest()[:4]


class RotatingRecord:
    def __init__(self, prefix, slots=8):
        self.prefix = prefix
        self.slots = slots
        self.gen = 0

    def _name(self, i):
        return "%s.%d" % (self.prefix, i)

    def load(self):
        """Payload bytes of the newest intact slot, or None."""
        best = None
        for i in range(self.slots):
            try:
                with open(self._name(i), "rb") as f:
                    b = f.read()
            except OSError:
                continue
            if len(b) < 8 or _check(b[:-4]) != b[-4:]:
                continue  # torn or never written
            gen = struct.unpack("<I", b[:4])[0]
            if best is None or gen > best[0]:
                best = (gen, b[4:-4])
        if best is None:
            return None
        self.gen = best[0]
        return best[1]

    def save(self, payload):
        self.gen += 1
        b = struct.pack("<I", self.gen) + payload
        with open(self._name(self.gen % self.slots), "wb") as f:
            f.write(b + _check(b))


def mkdirs(path):
    cur = ""
    for part in path.split("/"):
        if not part:
            cur = "/"
            continue
        cur = cur + part if cur.endswith("/") or not cur else cur + "/" + part
        try:
            os.mkdir(cur)
        except OSError:
            pass
