# First-boot configuration over the USB serial REPL (mpremote or any terminal).
#
# Asks for Wi-Fi, server URL and meter id; generates the per-meter key (32 random bytes) on
# the device and prints it once, to be registered on the server (`omd-server` keys).
import config


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
    config.save(cfg, cfg_path)
    print("saved", cfg_path)
    return cfg
