# Minimal MQTT 3.1.1 client (QoS 0, retain, last will, ping) and Home Assistant discovery.
#
# umqtt.simple would do on the device, but a client we own runs the same code in the tests
# against a real mosquitto. Topics, classes and units come from contract/homeassistant.json.
import json
import socket
import struct


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _len(n):
    out = b""
    while True:
        d = n % 128
        n //= 128
        out += bytes((d | 0x80 if n else d,))
        if not n:
            return out


class MQTT:
    def __init__(self, client_id, host, port=1883, user="", password="", keepalive=60):
        self.cid = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.sock = None
        self.will = None
        self.state_topic = None

    def set_last_will(self, topic, msg, retain=True):
        self.will = (topic, msg, retain)

    def connect(self, timeout=10):
        if not self.will:
            # without a will a power cut leaves Home Assistant showing the last values as live
            raise OSError("MQTT: set_last_will() before connect()")
        ai = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0]
        s = socket.socket(ai[0], socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(ai[-1])
        flags = 0x02 | 0x04 | (0x20 if self.will[2] else 0)  # clean session, will (retained)
        payload = _str(self.cid) + _str(self.will[0]) + _str(self.will[1])
        if self.user:
            flags |= 0x80
            payload += _str(self.user)
            if self.password:
                flags |= 0x40
                payload += _str(self.password)
        var = _str("MQTT") + bytes((4, flags)) + struct.pack("!H", self.keepalive)
        body = var + payload
        s.sendall(b"\x10" + _len(len(body)) + body)
        ack = s.recv(4)
        if len(ack) != 4 or ack[0] != 0x20 or ack[3] != 0:
            s.close()
            raise OSError("MQTT CONNACK refused: %r" % (ack,))
        self.sock = s

    def publish(self, topic, msg, retain=False):
        if isinstance(msg, str):
            msg = msg.encode()
        body = _str(topic) + msg
        self.sock.sendall(bytes((0x30 | (1 if retain else 0),)) + _len(len(body)) + body)

    def publish_state(self, body):
        """The signed reading, not retained (set state_topic first; see connect())."""
        self.publish(self.state_topic, body, False)

    def ping(self):
        self.sock.sendall(b"\xc0\x00")

    def disconnect(self):
        try:
            self.sock.sendall(b"\xe0\x00")
            self.sock.close()
        finally:
            self.sock = None


def topics(ha, meter_id):
    return (ha["state_topic"].replace("{meter_id}", meter_id),
            ha["availability_topic"].replace("{meter_id}", meter_id))


def _fill(template, meter_id, key=""):
    return template.replace("{meter_id}", meter_id).replace("{key}", key)


def entity_id(ha, meter_id, key):
    """default_entity_id per homeassistant.json entity_id_rule (no `re` needed on the device)."""
    domain, _, rest = _fill(ha["default_entity_id"], meter_id, key).partition(".")
    ok = "abcdefghijklmnopqrstuvwxyz0123456789_"
    return domain + "." + "".join(c if c in ok else "_" for c in rest)


def discovery(ha, meter_id, fw, decimals=None):
    """[(topic, payload)] of retained HA discovery configs, one per contract sensor.

    Ids, names and templates come from contract/homeassistant.json, so the server's MQTT
    bridge announces the very same entities (same unique_id) for this meter."""
    state, avail = topics(ha, meter_id)
    dev = {"identifiers": [_fill(ha["device_identifier"], meter_id)],
           "name": _fill(ha["device_name"], meter_id),
           "manufacturer": ha["device"]["manufacturer"], "model": ha["device"]["model"],
           "sw_version": fw}
    origin = {"name": "omd-firmware", "sw_version": fw}
    out = []
    for s in ha["sensors"]:
        src = s.get("source", s["key"])
        tpl = "{{ value_json.%s }}" % src
        if "scale" in s:
            tpl = "{{ (value_json.%s | float * %s) | round(6) }}" % (src, repr(s["scale"]))
        elif "minus" in s:  # derived (homeassistant.json derived_rule)
            tpl = "{{ (value_json.%s | float - value_json.%s | float) | round(%d) }}" % (
                src, s["minus"], s["suggested_display_precision"])
        uid = _fill(ha["unique_id"], meter_id, s["key"])
        eid = entity_id(ha, meter_id, s["key"])
        cfg = {
            "name": s["name"],
            "unique_id": uid,
            "default_entity_id": eid,
            "object_id": eid.partition(".")[2],  # Home Assistant before 2025.10
            "state_topic": state,
            "value_template": tpl,
            "availability_topic": avail,
            "payload_available": ha["payload_available"],
            "payload_not_available": ha["payload_not_available"],
            "device_class": s["device_class"],
            "state_class": s["state_class"],
            "device": dev,
            "origin": origin,
        }
        if s.get("unit_of_measurement") is not None:
            cfg["unit_of_measurement"] = s["unit_of_measurement"]
        if "suggested_display_precision" in s:
            cfg["suggested_display_precision"] = s["suggested_display_precision"]
        elif decimals and src in decimals and "scale" not in s:
            cfg["suggested_display_precision"] = decimals[src]
        out.append((_fill(ha["discovery_topic"], meter_id, s["key"]), json.dumps(cfg)))
    return out


def announce(client, ha, meter_id, fw, decimals=None):
    """After connect: discovery configs (retained) and 'online' (retained)."""
    for t, p in discovery(ha, meter_id, fw, decimals):
        client.publish(t, p, retain=True)
    client.publish(topics(ha, meter_id)[1], ha["payload_available"], retain=True)


def connect(ct, m, meter_id, fw):
    """Connected client with last will, discovery announced, state_topic set. Raises OSError.

    ct: contract.Contract (its ha facts and decimals); m: the config's "mqtt" section."""
    state, avail = topics(ct.ha, meter_id)
    c = MQTT("omd-" + meter_id, m["host"], m["port"], m["user"], m["password"], m["keepalive"])
    c.set_last_will(avail, ct.ha["payload_not_available"], True)
    c.state_topic = state
    c.connect()
    announce(c, ct.ha, meter_id, fw, ct.decimals)
    return c
