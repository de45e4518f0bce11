# Calibration with a known resistive load (and optionally a PF 0.5 load to verify the phase).
#
# The maths is in pure functions (tested on CPython with the simulated front end); run() is
# the guided routine for the device REPL:  >>> import calibration; calibration.run()
# Order matters: noise floors first (no load), then phase (it changes P), then gains.
import math


def measure(read_burst, cal, bursts):
    """Average `bursts` results of read_burst(cal) -> metering.Result (power-weighted)."""
    import metering

    avg = metering.Averager()
    q = 0.0
    for _ in range(bursts):
        r = read_burst(cal)
        avg.add(r)
        q += r.q
    v, i, p, pf, f = avg.values()
    return {"vrms": v, "irms": i, "p": p, "q": q / bursts, "pf": pf, "f": f}


def noise_floor(read_burst, cal, bursts=20):
    """No load connected (voltage present): the current RMS that is only noise."""
    import metering

    raw = metering.Cal(cal.v_gain, cal.i_gain, cal.phase_deg, cal.v_offset, 0.0, 0.0,
                       cal.phase_hz)
    m = measure(read_burst, raw, bursts)
    return m["irms"], abs(m["p"])


def phase_from(m):
    """Residual current-chain lag (degrees) seen on a resistive load: atan2(Q, |P|)."""
    sign = 1.0 if m["p"] >= 0 else -1.0
    return math.degrees(math.atan2(m["q"] * sign, abs(m["p"])))


def solve(read_burst, cal, v_ref, p_ref=None, i_ref=None, direction="import", bursts=20,
          iterations=2):
    """Calibrate gains and phase on a resistive load of known V (and P or I); returns Cal.

    v_ref: true RMS voltage (reference multimeter). p_ref or i_ref: true power / current
    (plug-in reference meter, or the load's measured resistance: P = V^2 / R).
    direction: "import" when the load draws through the meter (P must come out negative).
    """
    import metering

    if i_ref is None:
        i_ref = p_ref / v_ref  # resistive: PF 1
    c = metering.Cal(cal.v_gain, cal.i_gain, cal.phase_deg, cal.v_offset, cal.i_offset,
                     cal.p_offset, cal.phase_hz)
    for _ in range(iterations):
        m = measure(read_burst, c, bursts)
        if m["f"]:
            # keep the same time delay, expressed in degrees at the frequency measured now
            c.phase_deg = c.phase_deg * m["f"] / c.phase_hz
            c.phase_hz = m["f"]
        c.phase_deg += phase_from(m)
        m = measure(read_burst, c, bursts)
        c.v_gain *= v_ref / m["vrms"]
        c.i_gain *= i_ref / m["irms"]
        want_negative = direction == "import"
        if (m["p"] < 0) != want_negative:
            c.i_gain = -c.i_gain
    return c


def check_pf(read_burst, cal, pf_ref, bursts=20):
    """With a known PF 0.5 load: (measured PF, error). Residual phase error shows up here."""
    m = measure(read_burst, cal, bursts)
    return m["pf"], m["pf"] - pf_ref


def _ask(prompt, conv=float):
    while True:
        s = input(prompt + ": ").strip()
        try:
            return conv(s)
        except ValueError:
            print("  not a number, again")


def run(cfg_path="config.json"):  # pragma: no cover - interactive, on the device
    import config
    import sampler

    cfg, _ = config.load(cfg_path)
    cal = config.cal_of(cfg)
    smp = sampler.Sampler(cfg)

    def rb(c):
        return smp.measure(c)

    print("Step 1/3: disconnect every load (voltage stays on). Press Enter.")
    input()
    i_off, p_off = noise_floor(rb, cal)
    cal.i_offset = i_off
    print("  current noise floor %.4f A, P offset %.2f W" % (i_off, p_off))
    print("Step 2/3: connect the resistive load (kettle, heater, >= 1 kW best).")
    v_ref = _ask("  reference voltage from your multimeter, V")
    p_ref = _ask("  reference power (plug-in meter) in W, or 0 to give the current")
    i_ref = None
    if p_ref <= 0:
        p_ref = None
        i_ref = _ask("  reference current (clamp meter), A")
    cal = solve(rb, cal, v_ref, p_ref=p_ref, i_ref=i_ref)
    m = measure(rb, cal, 20)
    print("  now: V=%.2f I=%.3f P=%.1f PF=%.3f" % (m["vrms"], m["irms"], m["p"], m["pf"]))
    print("Step 3/3 (optional): connect a PF 0.5 load (e.g. motor + known capacitor), or Enter.")
    s = input("  its reference PF (Enter to skip): ").strip()
    if s:
        pf, err = check_pf(rb, cal, float(s))
        print("  measured PF %.3f (error %+.3f)" % (pf, err))
    cfg["cal"].update(cal.to_dict())
    config.save(cfg, cfg_path)
    print("saved to", cfg_path)
