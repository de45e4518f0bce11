# secp256k1 ECDSA signing with RFC 6979 deterministic nonces, as Ethereum uses it.
#
# No maintained MicroPython library does this on a stock MicroPython image (embit needs a C
# module compiled into the firmware, utinyec says it is unverified), so it is written here,
# small, for CPython and MicroPython alike. Signatures are those of eth-account / eth-keys:
# low s (EIP-2), v = 27 + recovery id; the tests compare them byte for byte.
#
# Only signing lives on the device: the private key never needs to be checked against a
# signature here, and verification happens on the server and on-chain.
#
# Speed: points in Jacobian coordinates (one inversion per signature), and a 4-tooth comb for
# the fixed base point G (64 doublings instead of 256), its 16-entry table built on first use.
# Side channels: Python big-integer arithmetic is not constant time. An attacker who can time
# or probe the meter's CPU closely could learn about the key; see the docs' trust section.
import hashlib

P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8
_TEETH = 4
_D = 256 // _TEETH  # comb spacing: the scalar's bits i, i+64, i+128, i+192 form one entry


def _inv(a, m):
    """a**-1 mod m (extended Euclid: faster than pow(a, m - 2, m) on MicroPython)."""
    a %= m
    if a == 0:
        raise ValueError("no inverse of 0")
    x0, x1, r0, r1 = 0, 1, m, a
    while r1:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        x0, x1 = x1, x0 - q * x1
    return x0 % m


# Jacobian points (X, Y, Z) meaning (X/Z^2, Y/Z^3); Z == 0 is the point at infinity.
def _double(p):
    x, y, z = p
    if not y or not z:
        return (0, 1, 0)
    a = x * x % P
    b = y * y % P
    c = b * b % P
    d = 2 * ((x + b) * (x + b) - a - c) % P
    e = 3 * a
    x3 = (e * e - 2 * d) % P
    return (x3, (e * (d - x3) - 8 * c) % P, 2 * y * z % P)


def _add_affine(p, qx, qy):
    """p (Jacobian) + (qx, qy) (affine, not infinity): 'madd' formulas, 7M + 4S."""
    x1, y1, z1 = p
    if not z1:
        return (qx, qy, 1)
    z1z1 = z1 * z1 % P
    u2 = qx * z1z1 % P
    s2 = qy * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = (s2 - y1) % P
    if not h:
        return _double(p) if not r else (0, 1, 0)
    hh = h * h % P
    hhh = h * hh % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return (x3, (r * (v - x3) - y1 * hhh) % P, z1 * h % P)


def _affine(p):
    x, y, z = p
    if not z:
        raise ValueError("point at infinity")
    zi = _inv(z, P)
    zi2 = zi * zi % P
    return x * zi2 % P, y * zi2 * zi % P


_comb = None


def _table():
    """comb[b] = sum of 2^(64 j) G over the set bits j of b (b = 1..15), affine."""
    global _comb
    if _comb is None:
        tooth = [(GX, GY)]
        for _ in range(_TEETH - 1):
            q = (tooth[-1][0], tooth[-1][1], 1)
            for _ in range(_D):
                q = _double(q)
            tooth.append(_affine(q))
        t = [None] * (1 << _TEETH)
        for b in range(1, 1 << _TEETH):
            q = (0, 1, 0)
            for j in range(_TEETH):
                if b >> j & 1:
                    q = _add_affine(q, tooth[j][0], tooth[j][1])
            t[b] = _affine(q)
        _comb = t
    return _comb


def mul_g(k):
    """k * G as an affine (x, y), 0 < k < N."""
    t = _table()
    q = (0, 1, 0)
    for i in range(_D - 1, -1, -1):
        q = _double(q)
        b = ((k >> i) & 1) | ((k >> (i + _D - 1)) & 2) | ((k >> (i + 2 * _D - 2)) & 4) | \
            ((k >> (i + 3 * _D - 3)) & 8)
        if b:
            q = _add_affine(q, t[b][0], t[b][1])
    return _affine(q)


def _hmac(key, msg):
    import contract

    return contract.hmac_sha256(key, msg)


def _b32(i):
    return i.to_bytes(32, "big")


def rfc6979_k(d, h):
    """Deterministic nonce for private key d (int) and 32-byte digest h: RFC 6979 3.2, SHA-256.

    h is reduced mod N first (bits2octets), as libsecp256k1 does."""
    x = _b32(d)
    h1 = _b32(int.from_bytes(h, "big") % N)
    v = b"\x01" * 32
    k = b"\x00" * 32
    k = _hmac(k, v + b"\x00" + x + h1)
    v = _hmac(k, v)
    k = _hmac(k, v + b"\x01" + x + h1)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        cand = int.from_bytes(v, "big")
        if 0 < cand < N:
            return cand
        k = _hmac(k, v + b"\x00")
        v = _hmac(k, v)


def sign(d, h):
    """ECDSA signature of the 32-byte digest h with private key d: (r, s, v), s low, v 27/28."""
    if len(h) != 32:
        raise ValueError("digest must be 32 bytes")
    if not 0 < d < N:
        raise ValueError("private key out of range")
    z = int.from_bytes(h, "big")
    k = rfc6979_k(d, h)
    while True:
        rx, ry = mul_g(k)
        r = rx % N
        s = _inv(k, N) * (z + r * d) % N
        if r and s:
            break
        # r or s of 0 happens with probability ~2^-256; RFC 6979 says: next candidate nonce
        k = rfc6979_k(d, hashlib.sha256(h + _b32(k)).digest())
    rec = (ry & 1) | (2 if rx >= N else 0)
    if s > N // 2:
        s = N - s
        rec ^= 1
    return r, s, 27 + rec


def signature_bytes(r, s, v):
    """65 bytes r || s || v, the encoding ecrecover-based verifiers and eth-account use."""
    return _b32(r) + _b32(s) + bytes([v])


def public_key(d):
    """64 bytes X || Y of d * G (uncompressed, without the 0x04 prefix)."""
    x, y = mul_g(d)
    return _b32(x) + _b32(y)


def address(d):
    """Ethereum address (20 bytes) of the private key d: last 20 bytes of keccak256(X || Y)."""
    import keccak

    return keccak.keccak256(public_key(d))[12:]


def checksum_address(addr):
    """EIP-55 mixed-case hex of a 20-byte address, '0x' prefixed."""
    from binascii import hexlify

    import keccak

    h = hexlify(addr).decode()
    kh = hexlify(keccak.keccak256(h.encode())).decode()
    out = "0x"
    for i in range(40):
        c = h[i]
        out += c.upper() if c in "abcdef" and int(kh[i], 16) >= 8 else c
    return out


def key_from_entropy(read):
    """Private key from a random-bytes source read(n) (the ESP32's hardware RNG: os.urandom).

    Rejection sampling: a 32-byte draw outside 1..N-1 is thrown away, never reduced, so every
    key is equally likely."""
    while True:
        d = int.from_bytes(read(32), "big")
        if 0 < d < N:
            return d
