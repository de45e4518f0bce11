# Device configuration: /config.json on the flash, merged over these defaults.
#
# First boot without a config.json starts the provisioning prompt in main.py; the README
# explains each key. Calibration results are written back into the "chip" section.
import json

DEFAULTS = {
    "meter_id": "meter-01",
    "key_hex": "",  # 32 random bytes, hex; shared with the server (contract x-canonical)
    "wifi": [],  # [{"ssid": "...", "password": "..."}], tried in order
    # base URL of omd-server; paths and headers come from contract/transport.json
    "server_url": "http://192.168.1.10:8080",
    "upload_batch": 50,  # queued readings per batch request when there is a backlog
    "mqtt": {"host": "", "port": 1883, "user": "", "password": "", "keepalive": 60},
    "ntp_host": "pool.ntp.org",
    "interval_s": 10,
    "mains_hz": 50,
    # jpeg_quality_pct: percent, 0-100, higher = better, the scale of the camera driver
    # (evidence.py has the sources). 82 % programs the sensor with esp32-camera's 12 (0-63,
    # lower = better; the ESPHome config gets that number), a sharp still of a meter display
    # that fits the driver's VGA frame buffer; the driver warns that above ~90 % frames can
    # freeze at high resolutions
    "camera": {"enabled": True, "every_s": 3600, "frame_size": "VGA", "jpeg_quality_pct": 82},
    "spool": {"segment_records": 360, "max_segments": 52},  # 52 h at 10 s, 1.9 MB of flash
    # device-signed interval attestations (contract/attestation.json): off until the chain's
    # id and AttestationVerifier address (the deployment file) are set; the key is device.key
    "attest": {"interval_s": 900, "chain_id": 0, "verifier": ""},
    # the metering chip (meter.DEFAULTS has every key): channels with their calibration
    # registers, written by chipcal.run(); mains_hz above is the one mains setting
    "chip": {},
}


def _merge(base, over):
    out = {}
    for k in base:
        out[k] = base[k]
    for k in over:
        if k in out and isinstance(out[k], dict) and isinstance(over[k], dict):
            out[k] = _merge(out[k], over[k])
        else:
            out[k] = over[k]
    return out


def _migrate(cfg, user):
    cam = user.get("camera")
    if isinstance(cam, dict) and "jpeg_quality" in cam:
        # firmware 0.1.0 wrote "jpeg_quality": 12 into every config.json (provisioning saves
        # the defaults), meant on esp32-camera's scale but read by the driver as 12 %: that
        # one gives way to the new default. Any other value was someone's choice, and the
        # driver has always read it as percent: it is kept as such
        old = cfg["camera"].pop("jpeg_quality")
        if "jpeg_quality_pct" not in cam and old != 12:
            cfg["camera"]["jpeg_quality_pct"] = old
    return cfg


def load(path="config.json"):
    """Defaults merged with the file; a missing file gives the defaults and exists=False."""
    try:
        with open(path) as f:
            user = json.load(f)
        exists = True
    except OSError:
        user = {}
        exists = False
    return _migrate(_merge(DEFAULTS, user), user), exists


def save(cfg, path="config.json"):
    """Write via a temp file and rename, so a power cut never leaves half a config."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    try:
        import os

        os.rename(tmp, path)
    except OSError:
        import os

        os.remove(path)
        os.rename(tmp, path)


def chip_of(cfg):
    """The metering chip's configuration (meter.merged() fills in the rest)."""
    out = {}
    for k in cfg["chip"]:
        out[k] = cfg["chip"][k]
    out["mains_hz"] = cfg["mains_hz"]
    return out
