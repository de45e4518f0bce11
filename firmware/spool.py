# Store-and-forward queue on flash: every reading is appended here first, then sent.
#
# Fixed-size binary records (103 bytes, not ~500 bytes of JSON) in segment files of
# `segment_records` readings; 48 segments of 360 = 48 h at 10 s in ~1.8 MB. The send
# position lives in a RotatingRecord. A reading is removed only after the server (or broker)
# acknowledged it; a power cut between send and ack re-sends it identically, which the
# contract's replay rule acknowledges as a duplicate. When full, the oldest segment is
# dropped and counted, so the device never has to stop measuring or reboot.
import hashlib
import struct

import store

try:
    import os
except ImportError:  # pragma: no cover
    import uos as os

# seq, unix time, voltage, current, watts, pf, frequency, import, export (the grid point),
# solar current, watts, pf, export, import (reading schema v2), flags, image sha256
FMT = "<IIIIiHHQQIiHQQB32s"
BODY = struct.calcsize(FMT)
SIZE = BODY + 4
F_PF = 1
F_FREQ = 2
F_IMAGE = 4
F_SOLAR = 8  # the solar_* fields are set: a schema_version 2 reading


class Spool:
    def __init__(self, directory, segment_records=360, max_segments=48, fmt=FMT):
        # fmt: the record layout (struct format); readings by default, attestations use their own
        self.fmt = fmt
        self.body = struct.calcsize(fmt)
        self.size = self.body + 4
        self.dir = directory
        self.per = segment_records
        self.max = max_segments
        self.dropped = 0
        store.mkdirs(directory)
        self.pos = store.RotatingRecord(directory + "/pos", 4)
        b = self.pos.load()
        segs = self.segments()
        if b is not None:
            self.rseg, self.ridx = struct.unpack("<II", b)
        else:
            self.rseg, self.ridx = (segs[0] if segs else 1), 0
        # always start a fresh segment after boot: a torn tail of the old one stays harmless
        self.wseg = (segs[-1] + 1) if segs else max(1, self.rseg)
        self.widx = 0

    def _name(self, seg):
        return "%s/%08d.q" % (self.dir, seg)

    def segments(self):
        out = []
        for n in os.listdir(self.dir):
            if n.endswith(".q"):
                out.append(int(n[:-2]))
        out.sort()
        return out

    def append(self, rec):
        """rec: tuple in self.fmt order (readings: see pack)."""
        if self.widx >= self.per:
            self.wseg += 1
            self.widx = 0
        b = struct.pack(self.fmt, *rec)
        with open(self._name(self.wseg), "ab") as f:
            f.write(b + hashlib.sha256(b).digest()[:4])
        self.widx += 1
        segs = self.segments()
        while len(segs) > self.max:
            old = segs.pop(0)
            try:
                with open(self._name(old), "rb") as f:
                    f.seek(0, 2)
                    n = f.tell() // self.size
            except OSError:
                n = 0
            if old == self.rseg:
                n -= self.ridx
                self.rseg, self.ridx = segs[0], 0
                self._save_pos()
            elif old < self.rseg:
                n = 0  # already sent, only not yet removed
            self.dropped += max(0, n)
            os.remove(self._name(old))

    def _save_pos(self):
        self.pos.save(struct.pack("<II", self.rseg, self.ridx))

    def peek(self, limit=1):
        """Up to `limit` unsent records in order, as tuples; skips torn/garbage records."""
        out = []
        seg, idx = self.rseg, self.ridx
        for s in self.segments():
            if s < seg:
                continue
            if s > seg:
                seg, idx = s, 0
            try:
                f = open(self._name(seg), "rb")
            except OSError:
                continue
            try:
                f.seek(idx * self.size)
                while len(out) < limit:
                    b = f.read(self.size)
                    if len(b) < self.size:
                        break
                    idx += 1
                    if hashlib.sha256(b[:self.body]).digest()[:4] != b[self.body:]:
                        continue
                    out.append(struct.unpack(self.fmt, b[:self.body]))
            finally:
                f.close()
            if len(out) >= limit:
                break
        return out

    def ack(self, count=1, persist=True):
        """Mark the next `count` records sent; removes segments that are fully sent."""
        segs = self.segments()
        while count > 0 and segs:
            if self.rseg not in segs:
                later = [s for s in segs if s > self.rseg]
                if not later:
                    break
                self.rseg, self.ridx = later[0], 0
            try:
                with open(self._name(self.rseg), "rb") as f:
                    f.seek(0, 2)
                    n = f.tell() // self.size
            except OSError:
                n = 0
            step = min(count, n - self.ridx)
            self.ridx += step
            count -= step
            if self.ridx >= n and (self.rseg != self.wseg):
                os.remove(self._name(self.rseg))
                segs.remove(self.rseg)
                self.rseg, self.ridx = self.rseg + 1, 0
            elif step == 0:
                break
        if persist:
            self._save_pos()

    def pending(self):
        total = 0
        for s in self.segments():
            if s < self.rseg:
                continue
            try:
                with open(self._name(s), "rb") as f:
                    f.seek(0, 2)
                    n = f.tell() // self.size
            except OSError:
                n = 0
            total += n - (self.ridx if s == self.rseg else 0)
        return total


def pack(ct, reading, t):
    """Reading dict (Fx/float values) + unix time t -> FMT tuple, mantissas at contract decimals."""
    d = ct.decimals

    def m(k):
        v = reading.get(k)
        if v is None:
            return 0
        import contract

        return contract.fx(v, d[k]).m if not isinstance(v, contract.Fx) else _rescale(v, d[k])

    flags = 0
    if reading.get("pf") is not None:
        flags |= F_PF
    if reading.get("frequency") is not None:
        flags |= F_FREQ
    img = reading.get("image_sha256")
    raw = b"\x00" * 32
    if img:
        flags |= F_IMAGE
        from binascii import unhexlify

        raw = unhexlify(img)
    if reading.get("solar_watts") is not None:
        flags |= F_SOLAR
    return (reading["seq"], int(t), m("voltage"), m("current"), m("watts"), m("pf"),
            m("frequency"), m("energy_import_wh"), m("energy_export_wh"), m("solar_current"),
            m("solar_watts"), m("solar_pf"), m("solar_energy_export_wh"),
            m("solar_energy_import_wh"), flags, raw)


def _rescale(v, d):
    if v.d == d:
        return v.m
    import contract

    return int(contract.Fx(v.m, v.d).text(d).replace(".", ""))


def unpack(ct, rec, meter_id, fw=None):
    """FMT tuple -> reading dict ready for Contract.canonical (same bytes every time)."""
    import contract

    d = ct.decimals
    seq, t, v, i, w, pf, f, imp, exp, si, sw, spf, sexp, simp, flags, img = rec
    r = {
        "meter_id": meter_id,
        "seq": seq,
        "timestamp": contract.iso_utc(civil(t)),
        "voltage": contract.Fx(v, d["voltage"]),
        "current": contract.Fx(i, d["current"]),
        "watts": contract.Fx(w, d["watts"]),
        "energy_import_wh": contract.Fx(imp, d["energy_import_wh"]),
        "energy_export_wh": contract.Fx(exp, d["energy_export_wh"]),
    }
    if flags & F_PF:
        r["pf"] = contract.Fx(pf, d["pf"])
    if flags & F_FREQ:
        r["frequency"] = contract.Fx(f, d["frequency"])
    if flags & F_SOLAR:
        r["schema_version"] = 2
        r["solar_current"] = contract.Fx(si, d["solar_current"])
        r["solar_watts"] = contract.Fx(sw, d["solar_watts"])
        r["solar_pf"] = contract.Fx(spf, d["solar_pf"])
        r["solar_energy_export_wh"] = contract.Fx(sexp, d["solar_energy_export_wh"])
        r["solar_energy_import_wh"] = contract.Fx(simp, d["solar_energy_import_wh"])
    if flags & F_IMAGE:
        from binascii import hexlify

        r["image_sha256"] = hexlify(img).decode()
    if fw:
        r["fw"] = fw
    return r


def civil(t):
    """Unix seconds -> (Y, M, D, h, m, s) without time.gmtime (its epoch differs by port)."""
    days, s = divmod(int(t), 86400)
    # Howard Hinnant's days-to-civil algorithm
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    dd = doy - (153 * mp + 2) // 5 + 1
    mm = mp + 3 if mp < 10 else mp - 9
    if mm <= 2:
        y += 1
    return (y, mm, dd, s // 3600, s % 3600 // 60, s % 60)
