# EIP-712 typed structured data hashing (the part a signer needs), for CPython and MicroPython.
#
# The types come from contract/attestation.json (bundled on the device), never from code: this
# module only knows the encoding rules. Atomic member types only (uintN, intN, address, bool,
# bytesN, bytes, string); a struct or array member raises, rather than hashing it wrongly.
import keccak

try:
    from binascii import unhexlify
except ImportError:  # pragma: no cover
    from ubinascii import unhexlify


def encode_type(types, primary):
    """'Name(type1 name1,type2 name2,...)' of the primary type."""
    fields = []
    for f in types[primary]:
        if f["type"] in types or f["type"].endswith("]"):
            raise ValueError("nested structs and arrays are not supported: " + f["type"])
        fields.append(f["type"] + " " + f["name"])
    return primary + "(" + ",".join(fields) + ")"


def type_hash(types, primary):
    return keccak.keccak256(encode_type(types, primary).encode())


def _hexbytes(v):
    if isinstance(v, str):
        v = v[2:] if v[:2] in ("0x", "0X") else v
        return unhexlify(v)
    return bytes(v)


def encode_value(typ, v):
    """The 32-byte encodeData word of one atomic value."""
    if typ == "string":
        return keccak.keccak256(v.encode())
    if typ == "bytes":
        return keccak.keccak256(_hexbytes(v))
    if typ == "bool":
        return (1 if v else 0).to_bytes(32, "big")
    if typ == "address":
        b = _hexbytes(v)
        if len(b) != 20:
            raise ValueError("address must be 20 bytes")
        return b"\x00" * 12 + b
    if typ.startswith("bytes"):
        n = int(typ[5:])
        b = _hexbytes(v)
        if len(b) != n or not 0 < n <= 32:
            raise ValueError(typ + " needs exactly %d bytes" % n)
        return b + b"\x00" * (32 - n)
    if typ.startswith("uint") or typ.startswith("int"):
        bits = int(typ[4:] if typ[0] == "u" else typ[3:])
        v = int(v)
        if typ[0] == "u":
            if not 0 <= v < (1 << bits):
                raise ValueError("%d out of range for %s" % (v, typ))
        else:
            if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
                raise ValueError("%d out of range for %s" % (v, typ))
            v &= (1 << 256) - 1
        return v.to_bytes(32, "big")
    raise ValueError("unsupported EIP-712 type " + typ)


def hash_struct(types, primary, values, known=None):
    """keccak256(typeHash || encodeData(values)), members in the order types[primary] lists.

    known: {"": typeHash, member name: its 32-byte word} already computed (a signer that
    hashes the same type and meter id every interval saves three Keccak permutations)."""
    known = known or {}
    out = bytearray(known.get("") or type_hash(types, primary))
    for f in types[primary]:
        w = known.get(f["name"])
        out.extend(w if w is not None else encode_value(f["type"], values[f["name"]]))
    return keccak.keccak256(bytes(out))


def digest(domain_separator, struct_hash):
    """The 32 bytes that are signed: keccak256(0x19 0x01 || domainSeparator || hashStruct)."""
    return keccak.keccak256(b"\x19\x01" + domain_separator + struct_hash)
