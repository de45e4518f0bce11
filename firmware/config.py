# Device configuration: /config.json on the flash, merged over these defaults.
#
# First boot without a config.json starts the provisioning prompt in main.py; the README
# explains each key. Calibration results are written back into the "cal" section.
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
    "burst_cycles": 10,
    # jpeg_quality_pct: percent, 0-100, higher = better, the scale of the camera driver
    # (evidence.py has the sources). 82 % programs the sensor with esp32-camera's 12 (0-63,
    # lower = better; the ESPHome config gets that number), a sharp still of a meter display
    # that fits the driver's VGA frame buffer; the driver warns that above ~90 % frames can
    # freeze at high resolutions
    "camera": {"enabled": True, "every_s": 3600, "frame_size": "VGA", "jpeg_quality_pct": 82},
    "spool": {"segment_records": 360, "max_segments": 72},
    # device-signed interval attestations (contract/attestation.json): off until the chain's
    # id and AttestationVerifier address (the deployment file) are set; the key is device.key
    "attest": {"interval_s": 900, "chain_id": 0, "verifier": ""},
    "cal": {
        # datasheet defaults, used until calibration.run() stores v_gain/i_gain/phase_deg
        "adc_fullscale_v": 3.1,  # ESP32-S3 ADC1, 12 dB attenuation: ~3.1 V at full scale
        "v_ratio": 328.57142857142856,  # 230 V / 0.70 V: ZMPT101B trimmer set to 0.70 V rms
        "v_divider": 0.9090909090909091,  # R21 / (R20 + R21) = 10k / 11k on the board
        "i_sensitivity_v_per_a": 0.185,  # ACS712-5A
        "i_divider": 0.6,  # R23 / (R22 + R23) = 15k / 25k (5 V -> 3.0 V); tests read the netlist
        "i_invert": True,  # ACS712 reads import positive; the contract wants export positive
        "phase_deg": 0.0,
        "phase_hz": 50.0,
        "v_offset": 0.0,
        "i_offset": 0.0,
        "p_offset": 0.0,
    },
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


def cal_of(cfg):
    """metering.Cal for the config: calibrated gains if present, else datasheet nominal."""
    import metering

    c = cfg["cal"]
    if "v_gain" in c and "i_gain" in c:
        return metering.Cal.from_dict(c)
    cal = metering.nominal_cal(c)
    cal.phase_deg = c.get("phase_deg", 0.0)
    cal.phase_hz = c.get("phase_hz", 50.0)
    cal.v_offset = c.get("v_offset", 0.0)
    cal.i_offset = c.get("i_offset", 0.0)
    cal.p_offset = c.get("p_offset", 0.0)
    return cal

