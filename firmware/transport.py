# HTTP transport to the LAN server, from the bundled contract/transport.json: URLs, header
# names, the image signature and what each HTTP status means for the queue. Nothing here is
# typed twice: the server builds its routes from the same file.
import contract

DELIVERED = "delivered"  # stored (201) or already stored (200): remove from the queue
REJECTED = "rejected"  # the server will never take this content: log, count, remove
RETRY = "retry"  # keep it queued, back off (network error, timeout, 5xx, 401, unknown)
SPLIT = "split"  # batch too large: send smaller ones


def server_base(url):
    """scheme://host[:port] of a configured server URL (an old config's path is dropped)."""
    proto, sep, rest = url.partition("://")
    return proto + sep + rest.partition("/")[0]


class Transport:
    def __init__(self, t, server_url, meter_id):
        base = server_base(server_url)
        self.t = t
        self.meter_id = meter_id
        self.reading_url = base + t["reading"]["path"]
        self.batch_url = base + t["batch"]["path"]
        self.image_url = base + t["image"]["path"].replace("{meter_id}", meter_id)
        att = t.get("attestation")
        self.attestation_url = base + att["path"] if att else None
        self.json_type = t["reading"]["content_type"]
        self.image_type = t["image"]["content_type"]
        self._batch_head = ('{"%s":[' % t["batch"]["field"]).encode()
        st = t["status"]
        self.actions = {}
        for code in st:
            self.actions[int(code)] = st[code]["device"]

    def action(self, code):
        """What the queue does with a status (-1 = network error/timeout -> retry)."""
        return self.actions.get(code, RETRY)

    def batch_body(self, bodies):
        """{"readings":[...]} from already canonical reading bodies, without re-encoding."""
        return self._batch_head + b",".join(bodies) + b"]}"

    def image_signature(self, ct, key, sha_hex):
        """HMAC over the canonical text of the signed_fields document (same encoder)."""
        values = {"image_sha256": sha_hex, "meter_id": self.meter_id}
        doc = {}
        for k in self.t["image"]["signed_fields"]:
            doc[k] = values[k]
        return contract.hmac_sha256_hex(key, ct.canonical(doc).encode())

    def image_headers(self, ct, key, sha_hex):
        img = self.t["image"]
        return {img["signature_header"]: self.image_signature(ct, key, sha_hex),
                img["sha256_header"]: sha_hex}
