# ruff: noqa: UP031  (%-formatting: smallest code path in MicroPython, same text on CPython)
# Calibration of board rev B (ATM90E32AS) with a plug-in reference meter, per channel:
#   1. no load (voltage on): current RMS and power offsets      [AN 4.2.5]
#   2. a resistive load: Ugain, Igain from V and I, then the energy gain PQGain from the
#      energy the chip integrated against P_ref x t               [AN 4.2.6, 4.2.7]
#   3. an inductive (or any PF <= 0.8) load: the V/I delay Phi from the energy error
#                                                                 [AN 4.2.7, DS PhiA]
#   4. verify: the residual energy error of a load against the reference, printed.
# The CT type profile (segments()) programs the chip's current-segment compensation from the
# CT model's typical phase and ratio slope, anchored at the calibration current [DS 3.9,
# AN 6.2/6.3]; calibration then removes this unit's error at that current.
#
# Pure functions over a meter.ChipMeter plus run(), the REPL routine for the device.
import math

import m90e32as as F

LOG_DECADE = F.LOG_SCALE * math.log(10) / math.log(2)  # Log units per decade of current (53.15)

# Typical SCT-013-000 on the board's 6.6 ohm burden: the lead grows by ~0.19 deg per decade
# of lower current and the ratio by -0.35 x that lead in radians (OEM CT report, scaled from
# its 22 ohm measurements; the front end: docs/hardware/metering-chip.md).
# range_a: 100 % of the channel's metering range. The SCT-013-000's ratio stays flat up to its
# 100 A rating and then drops as the core saturates (OEM ratio test: -0.1 % from 90 to 100 A,
# -1.1 % from 100 to 120 A, -3.3 % to 140 A), which the segment compensation cannot follow (its
# gain slope is at most 127 / 2^19 per Log unit [AN 6.2], about 0.1 % from 100 to 120 A). So
# 120 % of range must stay at or below the rating: 100 % = 80 A, 120 % = 96 A.
CT_PROFILES = {
    "sct013-000": {"lead_deg_per_decade": 0.19, "ratio_per_rad": 0.35, "rated_a": 100.0,
                   "range_a": 80.0},
    "none": {"lead_deg_per_decade": 0.0, "ratio_per_rad": 0.0, "rated_a": None, "range_a": None},
}


# The board's front end (docs/hardware/metering-chip.md): volts at the chip's pins
# per volt of mains and per amp in the CT's primary. Used for the design gains of an
# uncalibrated meter and by the simulator, which draws its tolerances around them.
FRONTEND = {
    "zmpt101b_v_per_v": 0.55 / 230.0,  # module trimmer set to 0.55 V rms at 230 V
    "zmpt101b_divider": 10.0 / 22.0,  # 12 k over 10 k after the 2.2 uF coupling capacitor
    "adapter_v_per_v": 11.36 / 240.0,  # 9 V adapter, open circuit (OEM report)
    "adapter_divider": 3.3 / 103.3,  # 100 k over 3.3 k
    "ct_turns": 2000.0,  # SCT-013-000, 100 A : 50 mA
    "burden_ohm": 6.6,  # 2 x 3.3 ohm, centre tap on AGND
}


def nominal(voltage_sensor, idx, k=2):
    """Design register values (before any calibration) for one channel."""
    fe = FRONTEND
    if voltage_sensor == "zmpt101b":
        v_pin = fe["zmpt101b_v_per_v"] * fe["zmpt101b_divider"]
    else:
        v_pin = fe["adapter_v_per_v"] * fe["adapter_divider"]
    i_pin = fe["burden_ohm"] / fe["ct_turns"]
    per_reg = F.RMS_AT_FULL_SCALE / F.ADC_FS_PEAK_V  # register LSBs per pin volt at unity gain
    ug = int(F.GAIN_UNITY / (v_pin * per_reg * F.URMS_LSB_V) + 0.5)
    ig = int(F.GAIN_UNITY / (i_pin * per_reg * F.IRMS_LSB_A * k) + 0.5)
    return {"ugain": min(ug, 0xFFFF), "igain": min(ig, 0xFFFF), "pqgain": 0, "phi": 0,
            "poffset": 0, "qoffset": 0, "uoffset": 0, "ioffset": 0}


def _ch(meter, idx):
    return meter.cfg["channels"][idx]


def apply(meter, changes):
    """changes: {channel index: {cal key: register value}}; re-initialises the chip with them."""
    for idx, kv in changes.items():
        ch = _ch(meter, idx)
        for k in kv:
            ch[k] = kv[k]
    meter.init()


def _s16(x):
    x &= 0xFFFF
    return x - 0x10000 if x & 0x8000 else x


def average(meter, wait_ms, idx, reads=8):
    """Mean of the chip's 16-cycle measurements over `reads` updates (>= 3 Hz) of one channel:
    {'u32','i32','p32','q32'} raw register values and {'v','i','p','q'} in real units."""
    c = meter.chip
    g = F.PHASE_REGS
    ch = _ch(meter, idx)
    p = ch["phase"]
    s = {"u32": 0, "i32": 0, "p32": 0, "q32": 0}
    wait_ms(1000)  # the load may have just been switched: let two 16-cycle windows pass
    for _ in range(reads):
        wait_ms(400)  # one 16-cycle window is 320 ms at 50 Hz [DS 3.6]
        s["u32"] += c.read32(g["Urms"][p], g["UrmsLSB"][p])
        s["i32"] += c.read32(g["Irms"][p], g["IrmsLSB"][p])
        p32 = c.read32(g["Pmean"][p], g["PmeanLSB"][p])
        q32 = c.read32(g["Qmean"][p], g["QmeanLSB"][p])
        s["p32"] += p32 - (1 << 32) if p32 & 0x80000000 else p32
        s["q32"] += q32 - (1 << 32) if q32 & 0x80000000 else q32
    for k in s:
        s[k] = s[k] / reads
    k = ch["k"]
    s["v"] = s["u32"] / 65536 * F.URMS_LSB_V
    s["i"] = s["i32"] / 65536 * F.IRMS_LSB_A * k
    s["p"] = s["p32"] * F.POWER_LSB_W * k
    s["q"] = s["q32"] * F.POWER_LSB_W * k
    return s


def offsets(meter, wait_ms, idx):
    """Step 1, voltage on and no current: Ioffset, Poffset, Qoffset [AN 4.2.5]."""
    apply(meter, {idx: {"ioffset": 0, "poffset": 0, "qoffset": 0}})
    m = average(meter, wait_ms, idx)
    i_off = (-(int(m["i32"]) >> 7)) & 0xFFFF
    p_off = int(-round(m["p32"]))
    q_off = int(-round(m["q32"]))
    p_off = max(-32768, min(32767, p_off)) & 0xFFFF
    q_off = max(-32768, min(32767, q_off)) & 0xFFFF
    apply(meter, {idx: {"ioffset": i_off, "poffset": p_off, "qoffset": q_off}})
    return {"ioffset": i_off, "poffset": p_off, "qoffset": q_off, "noise_a": m["i"], "p_w": m["p"]}


def segments(meter, wait_ms, idx, profile="sct013-000"):
    """Anchor the CT profile at the current flowing now (the calibration load): segment
    limits at this current and a decade below; constant slopes per AN 6.2 (gain) and 6.3
    (phase). The registers are common to the channels' limits, so the first calibrated
    channel sets them."""
    prof = CT_PROFILES[profile]
    m = average(meter, wait_ms, idx, reads=4)
    i_reg = m["i32"] / 65536  # Irms register value, mA of the 1/k-scaled current
    if i_reg < 10:
        raise ValueError("no current: connect the calibration load first")
    log0 = int(math.log(i_reg) / math.log(2) * F.LOG_SCALE + 0.5) & 0xFF
    log1 = max(0, log0 - int(LOG_DECADE + 0.5))
    hz = meter.cfg["mains_hz"]
    cycles_per_deg = F.PHI_CLOCK_HZ / (360.0 * hz)
    # more lead at lower current -> more current delay at lower Log(I): slope negative
    phi_slope = -prof["lead_deg_per_decade"] * cycles_per_deg / LOG_DECADE * F.SEG_PHI_DIV
    # ratio falls with that lead: gain must rise as current falls
    d_ratio = prof["ratio_per_rad"] * math.radians(prof["lead_deg_per_decade"])
    gain_slope = -d_ratio / LOG_DECADE * (1 << F.SEG_GAIN_SHIFT)
    ph = max(-128, min(127, int(round(phi_slope)))) & 0xFF
    ga = max(-128, min(127, int(round(gain_slope)))) & 0xFF
    seg = {"log0": log0, "log1": log1, "PhiIrms01": (ph << 8) | ph, "PhiIrms2": ph,
           "GainIrms01": (ga << 8) | ga, "GainIrms2": ga}
    meter.cfg["segments"] = seg
    meter.init()
    return seg


def energy(meter, wait_ms, idx, seconds):
    """Chip-integrated energy (mJ, this channel, signed: the chip's forward direction
    positive) and the chip-time it took (ms), read through the normal poll path."""
    ch = _ch(meter, idx)
    led = meter.ledger
    poll = meter.cfg["poll_ms"]
    fwd_is_export = ch["sign"] > 0

    def fwd_rev():
        i, e = led.import_mj(idx), led.export_mj(idx)
        return (e, i) if fwd_is_export else (i, e)

    # align to a poll so the interval starts at a read of the energy registers
    wait_ms(poll)
    meter.poll()
    f0, r0 = fwd_rev()
    t0 = meter.t_energy
    n = max(1, int(seconds * 1000 // poll))
    for _ in range(n):
        wait_ms(poll)
        if not meter.poll():
            raise RuntimeError("meter fault during calibration: %d faults" % meter.faults)
    f1, r1 = fwd_rev()
    ms = meter.ticks.ticks_diff(meter.t_energy, t0)
    return (f1 - f0) - (r1 - r0), ms


def gains(meter, wait_ms, idx, v_ref, i_ref, p_ref, importing=True, seconds=60):
    """Step 2, resistive load: Ugain, Igain, then PQGain from energy; sets the sign."""
    ch = _ch(meter, idx)
    m = average(meter, wait_ms, idx)
    if m["v"] <= 0 or m["i"] <= 0:
        raise ValueError("no voltage or no current on channel %s" % ch["name"])
    ug = int(ch["ugain"] * v_ref / m["v"] + 0.5)
    ig = int(ch["igain"] * i_ref / m["i"] + 0.5)
    if ug > 0xFFFF or ig > 0xFFFF:
        raise ValueError("gain out of range (ugain %d, igain %d): check k and the burden" % (ug, ig))
    apply(meter, {idx: {"ugain": ug, "igain": ig, "pqgain": 0}})
    e_mj, ms = energy(meter, wait_ms, idx, seconds)
    # direction: the chip's forward count is import when this load draws from the grid
    fwd_is_import = (e_mj > 0) == importing
    ch["sign"] = -1 if fwd_is_import else 1
    e_ref = abs(p_ref) * ms  # W x ms = mJ
    eps = abs(e_mj) / e_ref - 1 if e_ref else 0.0
    pq = int(round((1.0 / (1.0 + eps) - 1.0) * F.PQGAIN_ONE))
    pq = max(-32768, min(32767, pq))
    apply(meter, {idx: {"pqgain": pq & 0xFFFF}})
    return {"ugain": ug, "igain": ig, "pqgain": pq & 0xFFFF, "energy_err": eps, "sign": ch["sign"]}


def phase(meter, wait_ms, idx, p_ref, pf_ref, inductive=True, seconds=60):
    """Step 3, a load of PF <= 0.8 with known P: the V/I delay from the energy error.

    e = E_meas / E_ref - 1 = tan(phi) * d for a current leading by d (radians) too much;
    the AN's PF 0.5L form is Phi = e * Gphase with Gphase = 2.048 MHz / (2 pi f sqrt 3)."""
    ch = _ch(meter, idx)
    hz = meter.cfg["mains_hz"]
    phi_load = math.acos(min(1.0, max(0.0, pf_ref)))
    if phi_load < math.radians(30):
        raise ValueError("phase calibration needs PF <= 0.85 (got %.2f)" % pf_ref)
    e_mj, ms = energy(meter, wait_ms, idx, seconds)
    eps = abs(e_mj) / (abs(p_ref) * ms) - 1
    tan = math.tan(phi_load) * (1 if inductive else -1)
    d_rad = eps / tan
    d_cycles = d_rad / (2 * math.pi * hz) * F.PHI_CLOCK_HZ
    old = ch["phi"]
    signed = (old & F.PHI_CYCLES_MASK) * (-1 if old & F.PHI_DELAY_V else 1)
    new = int(round(signed + d_cycles))
    if abs(new) > F.PHI_CYCLES_MASK:
        raise ValueError("phase error %.2f deg exceeds the chip's 255-cycle delay" % math.degrees(
            new / F.PHI_CLOCK_HZ * 2 * math.pi * hz))
    reg = (F.PHI_DELAY_V | -new) if new < 0 else new
    apply(meter, {idx: {"phi": reg}})
    return {"phi": reg, "energy_err": eps, "delay_us": new / F.PHI_CLOCK_HZ * 1e6}


def verify(meter, wait_ms, idx, p_ref, seconds=60, log=print):
    """Step 4: energy over `seconds` against the reference; prints and returns the error."""
    e_mj, ms = energy(meter, wait_ms, idx, seconds)
    err = abs(e_mj) / (abs(p_ref) * ms) - 1
    log("  %s: %.1f Wh over %.0f s, reference %.1f Wh: error %+.2f %%" % (
        _ch(meter, idx)["name"], abs(e_mj) / 3.6e6, ms / 1000, abs(p_ref) * ms / 3.6e6, err * 100))
    return err


def saved(meter):
    """The calibration as config.json stores it (meter.DEFAULTS layout)."""
    out = {"segments": meter.cfg["segments"], "channels": []}
    for ch in meter.cfg["channels"]:
        out["channels"].append(dict(ch))
    return out


def _ask(prompt):
    while True:
        s = input(prompt + ": ").strip()
        try:
            return float(s)
        except ValueError:
            print("  not a number, again")


def run(cfg_path="config.json", meter=None):  # pragma: no cover - interactive, on the device
    import time

    import config

    cfg, _ = config.load(cfg_path)
    meter = meter or cfg["_meter"]  # main.calibrate() wires the board's chip
    wait = time.sleep_ms
    for idx, ch in enumerate(meter.cfg["channels"]):
        print("Channel %s: clamp its CT round the calibration cable only." % ch["name"])
        input("Step 1/4: no load on that cable, mains on. Enter.")
        print("  ", offsets(meter, wait, idx))
        input("Step 2/4: resistive load (kettle, heater) on. Enter.")
        segments(meter, wait, idx)
        v = _ask("  reference voltage, V")
        i = _ask("  reference current, A")
        p = _ask("  reference power, W")
        print("  ", gains(meter, wait, idx, v, i, p))
        print("Step 3/4: a motor or other load of PF <= 0.8 (Enter twice to skip).")
        s = input("  reference power, W: ").strip()
        if s:
            pf = _ask("  reference PF")
            print("  ", phase(meter, wait, idx, float(s), pf))
        p = _ask("Step 4/4: any load on; reference power, W")
        verify(meter, wait, idx, p)
    cfg["chip"] = saved(meter)
    cfg.pop("_meter", None)
    config.save(cfg, cfg_path)
    print("saved to", cfg_path)
