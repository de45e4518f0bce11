# Keccak-256 as Ethereum uses it (the original Keccak padding 0x01, not SHA3-256's 0x06).
#
# MicroPython's hashlib has no SHA-3 and no Keccak, and no library for it is maintained for
# MicroPython, so this is the reference permutation in plain Python (CPython and MicroPython).
# Lanes are Python ints: on the ESP32 anything above 30 bits is a heap integer, which is why the
# state is updated in place and the round constants are computed once at import.
_M = (1 << 64) - 1
# rotation offset of lane x + 5y (rho) and where it lands (pi: (x, y) -> (y, 2x + 3y))
_ROT = (0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61,
        56, 14)
_PI = tuple(y + 5 * ((2 * x + 3 * y) % 5) for y in range(5) for x in range(5))


def _round_constants():
    # the LFSR of the Keccak reference, so no 24 hex constants to mistype
    out = []
    r = 1
    for _ in range(24):
        c = 0
        for j in range(7):
            if r & 1:
                c |= 1 << ((1 << j) - 1)
            r = ((r << 1) ^ 0x71) & 0xFF if r & 0x80 else r << 1
        out.append(c)
    return tuple(out)


_RC = _round_constants()
RATE = 136  # bytes: 1600 - 2 * 256 bits of capacity


def _permute(a):
    b = [0] * 25
    for rc in _RC:
        # theta
        c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20]
        c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21]
        c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22]
        c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23]
        c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24]
        d = (c4 ^ (((c1 << 1) | (c1 >> 63)) & _M),
             c0 ^ (((c2 << 1) | (c2 >> 63)) & _M),
             c1 ^ (((c3 << 1) | (c3 >> 63)) & _M),
             c2 ^ (((c4 << 1) | (c4 >> 63)) & _M),
             c3 ^ (((c0 << 1) | (c0 >> 63)) & _M))
        # theta applied, then rho and pi into b
        for i in range(25):
            v = a[i] ^ d[i % 5]
            r = _ROT[i]
            b[_PI[i]] = (((v << r) | (v >> (64 - r))) & _M) if r else v
        # chi, iota
        for y in range(0, 25, 5):
            b0, b1, b2, b3, b4 = b[y], b[y + 1], b[y + 2], b[y + 3], b[y + 4]
            a[y] = b0 ^ (~b1 & b2)
            a[y + 1] = b1 ^ (~b2 & b3)
            a[y + 2] = b2 ^ (~b3 & b4)
            a[y + 3] = b3 ^ (~b4 & b0)
            a[y + 4] = b4 ^ (~b0 & b1)
        a[0] ^= rc


def keccak256(data):
    """32-byte Keccak-256 digest of bytes (Ethereum's keccak256 / web3's Web3.keccak)."""
    a = [0] * 25
    n = len(data)
    pad = RATE - n % RATE
    block = bytearray(data)
    block.extend(b"\x00" * pad)
    block[n] ^= 0x01
    block[-1] ^= 0x80
    for off in range(0, len(block), RATE):
        for i in range(RATE // 8):
            a[i] ^= int.from_bytes(block[off + 8 * i:off + 8 * i + 8], "little")
        _permute(a)
    out = b""
    for i in range(4):
        out += a[i].to_bytes(8, "little")
    return out
