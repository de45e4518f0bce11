# First-boot configuration over the USB serial REPL (mpremote or any terminal).
#
# Asks for Wi-Fi, server URL and meter id; generates the per-meter key (32 random bytes) on
# the device and prints it once, to be registered on the server (`omd-server` keys). Creates
# the secp256k1 device key for attestations from the hardware RNG and shows only its address,
# which the registrar enters in MeterRegistry; the private key never leaves device.key.
import config


def device_key(path=None):
    """Create device.key if the meter has none; print its address (never the key). -> address"""
    import attest
    import secp256k1

    path = path or attest.KEY_FILE
    d = attest.load_key(path)
    if d is None:
        # os.urandom is the hardware RNG; it is a true RNG while Wi-Fi/BT or the ADC runs
        d = attest.create_key(path)
        print("Generated the device signing key (kept on the meter, never shown).")
    addr = secp256k1.checksum_address(secp256k1.address(d))
    print("Device address (register it on-chain for this meter id):", addr)
    return addr


def run(cfg_path="config.json", ask=input):  # pragma: no cover - interactive
    import os
    from binascii import hexlify

    cfg, _ = config.load(cfg_path)
    print("Open Metering Device: first-boot configuration")
    ssid = ask("Wi-Fi SSID: ").strip()
    pw = ask("Wi-Fi password: ").strip()
    if ssid:
        cfg["wifi"] = [{"ssid": ssid, "password": pw}]
    url = ask("Server base URL, e.g. http://192.168.1.10:8080 [%s]: " % cfg["server_url"]).strip()
    if url:
        cfg["server_url"] = url
    mid = ask("Meter id [%s]: " % cfg["meter_id"]).strip()
    if mid:
        cfg["meter_id"] = mid
    host = ask("MQTT broker host (Enter: none): ").strip()
    if host:
        cfg["mqtt"]["host"] = host
    key = ask("Meter key, 64 hex digits (Enter: generate): ").strip().lower()
    if not key:
        key = hexlify(os.urandom(32)).decode()
        print("Generated key, register it on the server for this meter:")
        print(key)
    cfg["key_hex"] = key
    device_key()
    cid = ask("Chain id for attestations (Enter: %s): " % (cfg["attest"]["chain_id"] or "off")).strip()
    if cid:
        cfg["attest"]["chain_id"] = int(cid)
    ver = ask("AttestationVerifier address 0x... (Enter: %s): " % (cfg["attest"]["verifier"] or "off")).strip()
    if ver:
        cfg["attest"]["verifier"] = ver
    config.save(cfg, cfg_path)
    print("saved", cfg_path)
    return cfg
