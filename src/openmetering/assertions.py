"""Design assertions beyond ERC, checked on the KiCad netlist with the catalogue's figures.

Each check returns findings that name the part and pin at fault; the pin rules are
`openmetering.pins`. The build fails on any. Writes hardware/reports/assertions.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import parts as catalogue
from . import pins
from .errors import CheckFailed
from .kicadnet import Netlist, read_netlist
from .paths import ProjectPaths, project
from .pins import GND, MODULE_REF, Finding
from .repro import write_text_if_changed


@dataclass
class Board:
    """The netlist as the checks need it: nets by the design's names."""
    parts: dict[str, dict]                                   # ref -> value, footprint, fields
    pin_net: dict[tuple[str, str], str]                      # (ref, pin number) -> net
    pin_name: dict[tuple[str, str], str]                     # (ref, pin number) -> pin function
    nets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, net: Netlist) -> Board:
        nets = net.signal_nets()
        parts = {ref: {"value": p.value, "footprint": p.footprint, "fields": p.fields}
                 for ref, p in net.parts.items()}
        pin_net = {key: name for name, nodes in nets.items() for key in nodes}
        pin_name = {key: net.pin_function(*key) or key[1] for key in pin_net}
        return cls(parts, pin_net, pin_name, nets)

    def net_of(self, ref, pin) -> str | None:
        return self.pin_net.get((ref, str(pin)))

    def connected(self, net) -> bool:
        return net is not None and not net.startswith("unconnected-")


def _entry(board: Board, cat: catalogue.Catalog, ref: str) -> catalogue.CatalogPart | None:
    key = board.parts[ref]["fields"].get("PartID")
    return cat[key] if key else None


# --- checks --------------------------------------------------------------------------------
def check_power_pins(board: Board, cat) -> list[Finding]:
    out = []
    for ref in sorted(board.parts):
        entry = _entry(board, cat, ref)
        if not entry or "rails" not in entry.facts:
            continue
        for pin_id, rail in entry.facts["rails"].items():
            nums = [num for (r, num), fn in board.pin_name.items()
                    if r == ref and (fn == pin_id or num == pin_id)]
            if not nums:
                out.append(Finding("power-rail", ref, pin_id, "power pin not found in netlist"))
            for num in nums:
                net = board.net_of(ref, num)
                if net != rail:
                    out.append(Finding("power-rail", ref, f"{num} ({pin_id})",
                                       f"on {net}, must be on {rail}"))
    return out


def _resistors(board: Board, cat) -> list[tuple[str, str, str, float]]:
    out = []
    for ref in board.parts:
        entry = _entry(board, cat, ref)
        if entry and "ohms" in entry.facts:
            out.append((ref, board.net_of(ref, "1"), board.net_of(ref, "2"),
                        float(entry.facts["ohms"])))
    return out


def solve_dc(resistors, fixed: dict[str, float], target: str) -> float | None:
    """DC voltage of net `target` with nets in `fixed` held (capacitors and high-impedance
    inputs open). None if no resistive path ties `target` to a fixed net."""
    nodes = sorted({n for _, a, b, _ in resistors for n in (a, b)} - set(fixed))
    if target in fixed:
        return fixed[target]
    if target not in nodes:
        return None
    idx = {n: i for i, n in enumerate(nodes)}
    g = np.zeros((len(nodes), len(nodes)))
    i_vec = np.zeros(len(nodes))
    for _, a, b, ohms in resistors:
        c = 1.0 / ohms
        for x, y in ((a, b), (b, a)):
            if x in idx:
                g[idx[x], idx[x]] += c
                if y in idx:
                    g[idx[x], idx[y]] -= c
                else:
                    i_vec[idx[x]] += c * fixed[y]
    # Floating nets (no path to any fixed voltage) make g singular: tie them weakly to 0 V
    # and report None when the target is among them.
    reach = _reachable(resistors, set(fixed), target)
    if not reach:
        return None
    g += np.eye(len(nodes)) * 1e-12
    return float(np.linalg.solve(g, i_vec)[idx[target]])


def _reachable(resistors, targets: set, start: str, through: set = frozenset()) -> bool:
    """Whether a resistor path leads from `start` to a net in `targets` without passing
    through a net in `through` (a rail or GND joins everything; a path via it proves nothing)."""
    adj: dict[str, set] = {}
    for _, a, b, _ in resistors:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    seen, todo = {start}, [start]
    while todo:
        n = todo.pop()
        if n in targets:
            return True
        if n in through and n != start:
            continue
        for m in adj.get(n, ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return False


def regulator_rails(entry) -> tuple[str, str]:
    """(input rail, output rail) of a regulator entry, whatever its symbol calls the pins."""
    rails = entry.facts["rails"]
    vin = next((rails[k] for k in ("VI", "V_{IN}", "IN") if k in rails), None)
    vout = next((rails[k] for k in ("VO", "V_{OUT}", "FB") if k in rails), None)
    return vin, vout


def rail_voltages(cat) -> dict[str, float]:
    out = {GND: 0.0, "+5V": cat.design["terminal_5v_max_v"]}
    for entry in cat.parts.values():
        if "regulator" in entry.facts:
            out[regulator_rails(entry)[1]] = entry.facts["regulator"]["vout"]
    return out


def sensor_headers(board: Board, cat):
    """(header ref, module catalogue entry) for each header that carries a sensor module."""
    for ref, p in sorted(board.parts.items()):
        mod = p["fields"].get("Module")
        if mod and "sensor" in cat[mod].facts:
            yield ref, cat[mod]


def header_pin(module, role: str) -> str:
    return next(k for k, v in module.facts["header_pins"].items() if v == role)


def _pins_named(board: Board, ref: str, pin_id: str) -> list[str]:
    return [n for (r, n), fn in board.pin_name.items() if r == ref and (fn == pin_id or n == pin_id)]


def _rail_loads(board: Board, cat) -> dict[str, float]:
    """Worst-case current (mA) drawn from each rail, regulators' downstream loads included:
    a linear regulator draws its output current, a switching one its output power over its
    efficiency at the lowest input voltage the rail can fall to."""
    load: dict[str, float] = {}
    for ref in board.parts:
        entry = _entry(board, cat, ref)
        if entry:
            for pin_id, ma in entry.facts.get("load_ma", {}).items():
                for num in _pins_named(board, ref, pin_id)[:1]:
                    net = board.net_of(ref, num)
                    load[net] = load.get(net, 0.0) + ma
        mod = board.parts[ref]["fields"].get("Module")
        if mod and "sensor" in cat[mod].facts:
            rail = board.net_of(ref, header_pin(cat[mod], "VCC"))
            load[rail] = load.get(rail, 0.0) + cat[mod].facts["sensor"]["load_ma"]
    for _led, i_ma in _led_currents(board, cat).items():
        load["+3V3"] = load.get("+3V3", 0.0) + i_ma  # GPIO-driven: comes from the 3.3 V rail
    regs = [(ref, e) for ref, e in ((r, _entry(board, cat, r)) for r in sorted(board.parts))
            if e and "regulator" in e.facts]
    # a regulator's input carries its output's whole load, which already includes every
    # regulator fed from that output: outputs furthest from the inputs first
    for ref, e in sorted(regs, key=lambda re_: (-_chain_depth(re_[1], regs), re_[0])):
        reg = e.facts["regulator"]
        vin, vout = regulator_rails(e)
        i_out = load.get(vout, 0.0)
        if reg.get("kind") in ("buck", "boost"):
            v_in = rail_range(board, cat, vin, i_out / 1000.0, loads=None)[0]
            i_in = reg["vout"] * i_out / (v_in * reg["efficiency"])
        else:
            i_in = i_out
        load[vin] = load.get(vin, 0.0) + i_in + reg["iq_ma"]
    return load


def _chain_depth(entry, regs) -> int:
    """How many regulators stand between this one's input and the board's input."""
    vin = regulator_rails(entry)[0]
    for _r, o in regs:
        if regulator_rails(o)[1] == vin:
            return 1 + _chain_depth(o, regs)
    return 0


# --- worst-case rail voltages ------------------------------------------------------------
def _two_pin(board: Board, ref: str) -> tuple[str | None, str | None]:
    nums = sorted(n for (r, n) in board.pin_net if r == ref)
    nets = [board.net_of(ref, n) for n in nums]
    return (nets[0], nets[1]) if len(nets) == 2 else (None, None)


def input_paths(board: Board, cat) -> list[dict]:
    """Each supply input of +5V (USB VBUS, the screw terminal) with the series parts between
    its connector and +5V, found in the netlist: fuses, diodes, the reverse-polarity FET."""
    d = cat.design
    out = []
    for ref, src, vmin in (("J1", "VBUS", d["usb_vbus_min_v"]), ("J2", "VIN_T", d["terminal_5v_min_v"])):
        if ref not in board.parts:
            continue
        path, net, seen = [], src, {src}
        for _ in range(6):
            if net == "+5V":
                break
            step = None
            for r in sorted(board.parts):
                e = _entry(board, cat, r)
                if not e or not ({"fuse", "diode", "fet"} & set(e.facts)):
                    continue
                pins = {fn: board.net_of(r, n) for (rr, n), fn in board.pin_name.items() if rr == r}
                if e.symbol == "AO3401A":
                    a, b = pins.get("D"), pins.get("S")
                else:
                    a, b = _two_pin(board, r)
                for x, y in ((a, b), (b, a)):
                    if x == net and y not in seen and y != GND:
                        step = (r, e, y)
                        break
                if step:
                    break
            if not step:
                break
            path.append((step[0], step[1]))
            net = step[2]
            seen.add(net)
        out.append({"input": ref, "source_net": src, "vmin_v": vmin, "series": path,
                    "reaches": net == "+5V"})
    return out


def rail_range(board: Board, cat, rail: str, amps: float, loads=None) -> tuple[float, float]:
    """(lowest, highest) voltage of `rail` at `amps` of load, from the regulators and the
    input paths in the netlist (a boost's output from its feedback divider)."""
    d = cat.design
    if rail == "+5V":
        lows = []
        for p in input_paths(board, cat):
            v = p["vmin_v"]
            if p["input"] == "J1":
                v -= d["usb_cable_ohm"] * amps
            for _r, e in p["series"]:
                if "fuse" in e.facts:
                    v -= e.facts["fuse"]["r1max_ohm"] * amps
                if "diode" in e.facts:
                    v -= e.facts["diode"]["vf_v"]
                if "fet" in e.facts:
                    v -= e.facts["fet"]["rds_on_ohm"] * amps
            lows.append(v)
        return (min(lows) if lows else 0.0, d["terminal_5v_max_v"])
    for ref in sorted(board.parts):
        e = _entry(board, cat, ref)
        if not e or "regulator" not in e.facts or regulator_rails(e)[1] != rail:
            continue
        reg = e.facts["regulator"]
        if reg.get("kind") == "boost":
            fb = next(board.net_of(ref, n) for n in _pins_named(board, ref, "V_{FB}"))
            res = _resistors(board, cat)
            top = [o for _r, a, b, o in res if {a, b} == {rail, fb}]
            bot = [o for _r, a, b, o in res if {a, b} == {fb, GND}]
            if not top or not bot:
                return (0.0, 0.0)
            tol = d["resistor_tolerance"]
            lo = reg["vfb_min_v"] * (1 + top[0] * (1 - tol) / (bot[0] * (1 + tol)))
            hi = reg["vfb_max_v"] * (1 + top[0] * (1 + tol) / (bot[0] * (1 - tol)))
            return (lo, hi)
        acc = reg.get("accuracy", 0.03)
        return (reg["vout"] * (1 - acc), reg["vout"] * (1 + acc))
    return (0.0, 0.0)


def check_module_supply(board: Board, cat, loads) -> list[Finding]:
    """Every sensor module's supply range against the worst-case voltage of the rail its
    header's VCC pin is on (cable, fuse and diode drops at the full load included)."""
    out = []
    for ref, module in sensor_headers(board, cat):
        s = module.facts["sensor"]
        pin = header_pin(module, "VCC")
        rail = board.net_of(ref, pin)
        lo, hi = rail_range(board, cat, rail, loads.get("+5V", 0.0) / 1000.0)
        if lo < s["vmin_v"] or hi > s["vmax_v"]:
            out.append(Finding("module-supply", ref, f"{pin} (VCC)",
                               f"{module.value} needs {s['vmin_v']}-{s['vmax_v']} V; {rail} "
                               f"ranges {lo:.2f}-{hi:.2f} V at worst"))
    for ref in sorted(board.parts):   # the MCU module too
        e = _entry(board, cat, ref)
        if e and "supply_range" in e.facts:
            lo_need, hi_need = e.facts["supply_range"]
            for pin_id, rail in e.facts["rails"].items():
                if rail == GND:
                    continue
                lo, hi = rail_range(board, cat, rail, 0.0)
                if lo < lo_need or hi > hi_need:
                    out.append(Finding("module-supply", ref, pin_id,
                                       f"needs {lo_need}-{hi_need} V; {rail} ranges "
                                       f"{lo:.2f}-{hi:.2f} V"))
    return out


def check_opamp_swing(board: Board, cat) -> list[Finding]:
    """A module's output stage biased at half its supply must carry bias +- its full-scale
    peak inside what the stage can swing (an LM358 reaches VCC - 1.5 V), at the lowest
    supply the rail can give."""
    out = []
    for ref, module in sensor_headers(board, cat):
        s = module.facts["sensor"]
        if s.get("bias") != "half":
            continue
        rail = board.net_of(ref, header_pin(module, "VCC"))
        lo, _hi = rail_range(board, cat, rail, 0.0)
        bias = lo / 2
        top, bottom = lo - s["swing_high_v"], s["swing_low_v"]
        peak = _sensor_peak(module)
        if bias + peak > top or bias - peak < bottom:
            pin = header_pin(module, "OUT")
            out.append(Finding("opamp-swing", ref, f"{pin} (OUT)",
                               f"{module.value} on {rail} ({lo:.2f} V at worst): bias "
                               f"{bias:.2f} V +- {peak:.2f} V peak needs {bias - peak:.2f}-"
                               f"{bias + peak:.2f} V, the output swings {bottom:.2f}-{top:.2f} V"))
    return out


def _sensor_peak(module) -> float:
    variants = module.facts.get("variants")
    if variants:
        return max(v["mv_per_a"] * v["i_max_a"] / 1000.0 for v in variants.values())
    return module.facts["sensor"]["vout_pk_v"]


# --- the metering chip's inputs: AC nodal analysis of the front end ----------------------
def _ac_solve(board: Board, cat, f_hz: float, vsrc: dict[str, complex],
              isrc: dict[str, complex], shorts: list[tuple[str, str]]) -> dict[str, complex]:
    """Node voltages at frequency f with resistors and capacitors from the netlist, rails and
    GND held at 0 V (AC ground), `vsrc` nets driven, `isrc` currents injected, `shorts` (a
    jumper's shunt) as 1 mOhm. High-impedance inputs (the chip) draw nothing."""
    elems = []
    for ref in board.parts:
        e = _entry(board, cat, ref)
        if not e:
            continue
        a, b = _two_pin(board, ref)
        if a is None:
            continue
        if "ohms" in e.facts:
            elems.append((a, b, 1.0 / float(e.facts["ohms"])))
        elif "farads" in e.facts:
            elems.append((a, b, 2j * np.pi * f_hz * float(e.facts["farads"])))
    for a, b in shorts:
        elems.append((a, b, 1e3))
    grounds = {n for n in board.nets if n == GND or n.startswith("+")} | {GND}
    fixed = {n: 0.0 for n in grounds}
    fixed.update(vsrc)
    nodes = sorted({n for a, b, _ in elems for n in (a, b)} - set(fixed))
    idx = {n: i for i, n in enumerate(nodes)}
    g = np.zeros((len(nodes), len(nodes)), dtype=complex)
    rhs = np.zeros(len(nodes), dtype=complex)
    for a, b, y in elems:
        for x, o in ((a, b), (b, a)):
            if x in idx:
                g[idx[x], idx[x]] += y
                if o in idx:
                    g[idx[x], idx[o]] -= y
                else:
                    rhs[idx[x]] += y * fixed[o]
    for n, i_a in isrc.items():
        if n in idx:
            rhs[idx[n]] += i_a
    g += np.eye(len(nodes)) * 1e-12
    v = np.linalg.solve(g, rhs) if nodes else []
    out = dict(fixed)
    out.update({n: v[i] for n, i in idx.items()})
    return out


def _chip(board: Board, cat):
    for ref in sorted(board.parts):
        e = _entry(board, cat, ref)
        if e and "metering" in e.facts:
            return ref, e
    return None, None


def _jumper_settings(board: Board, cat) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each position of the voltage-select jumper: ('1-2', [(net1, net2)]), ..."""
    for ref in sorted(board.parts):
        if ref.startswith("JP"):
            n1, n2, n3 = (board.net_of(ref, p) for p in ("1", "2", "3"))
            return [(f"{ref} 1-2", [(n1, n2)]), (f"{ref} 2-3", [(n2, n3)])]
    return [("", [])]


def chip_channels(board: Board, cat, f_hz: float | None = None) -> list[dict]:
    """For each chip channel: the source that drives it at full scale, the peak differential
    voltage at the chip's pins and its phase relative to the source (at the mains frequency)."""
    chip, ce = _chip(board, cat)
    if not chip:
        return []
    f = f_hz or cat.design["mains_hz"]
    pin_net = lambda name: board.net_of(chip, _pins_named(board, chip, name)[0])  # noqa: E731
    rows = []
    # current channels fed by CT jacks: a current source across tip and sleeve
    for ref in sorted(board.parts):
        mod = board.parts[ref]["fields"].get("Module")
        if not mod or "ct" not in cat[mod].facts:
            continue
        ct = cat[mod].facts["ct"]
        tip, sleeve = board.net_of(ref, "T"), board.net_of(ref, "S")
        i_pk = ct["i_max_a"] * ct["crest"] / ct["ratio"]
        v = _ac_solve(board, cat, f, {}, {tip: i_pk, sleeve: -i_pk}, [])
        rows += _channel_rows(board, cat, chip, pin_net, v, ref, "T",
                              f"{cat[mod].value} at {ct['i_max_a']:.0f} A rms, crest {ct['crest']}",
                              i_pk)
    # module outputs (ZMPT101B, ACS712) and the AC adapter: a voltage source on their output
    for setting, shorts in _jumper_settings(board, cat):
        for ref in sorted(board.parts):
            mod = board.parts[ref]["fields"].get("Module")
            if not mod or "ct" in cat[mod].facts:
                continue
            m = cat[mod]
            if "sensor" in m.facts:
                out_pin = header_pin(m, "OUT")
                src_v = _sensor_peak(m)
            elif "adapter" in m.facts:
                out_pin = "1"
                src_v = m.facts["adapter"]["vout_rms_max"] * np.sqrt(2)
            else:
                continue
            net = board.net_of(ref, out_pin)
            v = _ac_solve(board, cat, f, {net: src_v}, {}, shorts)
            rows += [dict(r, setting=setting) for r in _channel_rows(
                board, cat, chip, pin_net, v, ref, out_pin, f"{m.value} full scale", src_v)]
    # keep each (channel, source) once: a module that reaches no channel in one jumper
    # position is not a row of that position
    return [r for r in rows if r["vpk"] > 1e-6]


def _channel_rows(board, cat, chip, pin_net, v, src_ref, src_pin, what, src_amp):
    rows = []
    for ch in ("I1", "I2", "I3", "V1", "V2", "V3"):
        try:
            p, n = pin_net(f"{ch}P"), pin_net(f"{ch}N")
        except (IndexError, StopIteration):
            continue
        dv = v.get(p, 0.0) - v.get(n, 0.0)
        if abs(dv) < 1e-9:
            continue
        rows.append({"channel": ch, "pin": _pins_named(board, chip, f"{ch}P")[0],
                     "source": f"{src_ref}.{src_pin}", "what": what,
                     "vpk": float(abs(dv)), "gain": float(abs(dv) / src_amp),
                     "phase_deg": float(np.degrees(np.angle(dv))), "setting": ""})
    return rows


def check_chip_inputs(board: Board, cat, rows) -> list[Finding]:
    """Full scale (currents with crest factor 2) inside the chip's input range, and the
    range's bottom (1000:1 below full scale) above its noise floor."""
    chip, ce = _chip(board, cat)
    if not chip:
        return [Finding("chip-input", "U?", "-", "no metering chip in the netlist")]
    m = ce.facts["metering"]
    vmax = m["vin_max_vrms"] * np.sqrt(2)
    out = []
    seen = set()
    for r in rows:
        seen.add(r["channel"])
        where = f" ({r['setting']})" if r["setting"] else ""
        if r["vpk"] > vmax:
            out.append(Finding("chip-input", chip, f"{r['pin']} ({r['channel']}P)",
                               f"{r['what']} from {r['source']}{where} gives {r['vpk']:.3f} V "
                               f"peak, above the {vmax:.3f} V peak input range"))
        if r["vpk"] / np.sqrt(2) / 1000 < m["vin_min_vrms"] and r["channel"].startswith("I") \
                and "ct" in r["what"].lower():
            out.append(Finding("chip-input", chip, f"{r['pin']} ({r['channel']}P)",
                               f"1000:1 below full scale is under the chip's "
                               f"{m['vin_min_vrms'] * 1e6:.0f} uV rms floor"))
    for ch in ("I1", "I2", "V1"):
        if ch not in seen:
            pin = _pins_named(board, chip, f"{ch}P")
            out.append(Finding("chip-input", chip, f"{pin[0] if pin else '?'} ({ch}P)",
                               "no sensor input reaches this channel"))
    return out


def check_burdens(board: Board, cat) -> list[Finding]:
    """Each CT's burden: the resistors from its tip and sleeve to ground dissipate
    I^2 R at the CT's full rated current within half their rating."""
    out = []
    for ref in sorted(board.parts):
        mod = board.parts[ref]["fields"].get("Module")
        if not mod or "ct" not in cat[mod].facts:
            continue
        ct = cat[mod].facts["ct"]
        i_rms = ct["i_max_a"] / ct["ratio"]
        for pin in ("T", "S"):
            leg = board.net_of(ref, pin)
            for r in sorted(board.parts):
                e = _entry(board, cat, r)
                if e and "ohms" in e.facts and set(_two_pin(board, r)) == {leg, GND}:
                    p_w = i_rms ** 2 * float(e.facts["ohms"])
                    rating = e.facts.get("power_w", 0.1)
                    if p_w > rating * cat.design["power_derating"]:
                        out.append(Finding("burden", r, "1", f"{p_w * 1000:.1f} mW at "
                                           f"{ct['i_max_a']:.0f} A on {ref}.{pin}, above "
                                           f"{cat.design['power_derating'] * 100:.0f} % of its "
                                           f"{rating * 1000:.0f} mW rating"))
    return out


def check_fuses_and_usb(board: Board, cat, loads) -> list[Finding]:
    """Each input fuse holds the worst-case load at the enclosure's 45 C (its derated hold
    current), and USB draws at most the 500 mA a USB 2.0 port must give."""
    out = []
    d = cat.design
    i5 = loads.get("+5V", 0.0)
    for p in input_paths(board, cat):
        if not p["reaches"]:
            out.append(Finding("power-path", p["input"], "-",
                               f"{p['source_net']} reaches +5V through no fuse/diode/FET path"))
        fuses = [(r, e) for r, e in p["series"] if "fuse" in e.facts]
        if not fuses:
            out.append(Finding("fuse", p["input"], "1", f"{p['source_net']} has no fuse"))
        for r, e in fuses:
            hold = e.facts["fuse"]["hold_45c_a"] * 1000
            if hold < i5:
                out.append(Finding("fuse", r, "1", f"holds {hold:.0f} mA at {d['ambient_max_c']:.0f}"
                                   f" C, below the {i5:.0f} mA worst-case load"))
        if p["input"] == "J1" and i5 > d["usb_budget_ma"]:
            out.append(Finding("usb-budget", "J1", "A4 (VBUS)",
                               f"worst-case load {i5:.0f} mA exceeds the {d['usb_budget_ma']:.0f} mA "
                               f"a USB 2.0 port must supply"))
    return out


def check_twelve_volts(board: Board, cat) -> list[Finding]:
    """A 12 V supply on the terminal by mistake: the TVS clamps at its breakdown plus the
    fuse's trip current through its dynamic resistance until the fuse trips; every part on
    the clamped rails must be rated for that (its abs max or rated voltage)."""
    out = []
    paths = [p for p in input_paths(board, cat) if p["input"] == "J2"]
    if not paths:
        return out
    p = paths[0]
    fuse = next((e for _r, e in p["series"] if "fuse" in e.facts), None)
    tvs = [(r, _entry(board, cat, r)) for r in sorted(board.parts)
           if _entry(board, cat, r) and "tvs" in _entry(board, cat, r).facts]
    if not fuse or not tvs:
        return [Finding("twelve-volt", "J2", "1", "terminal needs a fuse and a TVS")]
    t = tvs[0][1].facts["tvs"]
    i_trip = fuse.facts["fuse"]["trip_a"]
    clamp = t["vbr_max_v"] + (t["vc_v"] - t["vbr_max_v"]) / t["ipp_a"] * i_trip
    if fuse.facts["fuse"]["vmax_v"] < cat.design["mistake_v"]:
        out.append(Finding("twelve-volt", "F2", "1", f"fuse rated {fuse.facts['fuse']['vmax_v']} V, "
                           f"below {cat.design['mistake_v']} V"))
    for ref in sorted(board.parts):
        e = _entry(board, cat, ref)
        if not e:
            continue
        vmax = e.facts.get("vmax_v") or e.facts.get("regulator", {}).get("vin_abs_max_v")
        for (r, num), net in board.pin_net.items():
            if r == ref and net in ("+5V", "VIN_F") and vmax is not None and vmax < clamp:
                out.append(Finding("twelve-volt", ref, num, f"on {net}, rated {vmax} V; a "
                                   f"12 V mistake clamps it at {clamp:.1f} V until the fuse trips"))
                break
    return out


def check_anti_alias(board: Board, cat, rows) -> list[Finding]:
    """Each channel's anti-alias corner (the RC at the chip pin) inside the design window,
    and the phase between every current channel and the voltage channel, from the front
    end alone, within what the chip's delay registers can correct."""
    out = []
    chip, ce = _chip(board, cat)
    if not chip:
        return out
    d = cat.design
    lo, hi = d["anti_alias_hz"]
    res = {r: (a, b, o) for r, a, b, o in _resistors(board, cat)}
    caps = {}
    for r in board.parts:
        e = _entry(board, cat, r)
        if e and "farads" in e.facts:
            caps[r] = (_two_pin(board, r), float(e.facts["farads"]))
    for ch in ("I1", "I2", "I3", "V1"):
        for leg in ("P", "N"):
            pins = _pins_named(board, chip, f"{ch}{leg}")
            if not pins:
                continue
            net = board.net_of(chip, pins[0])
            rs = [o for _r, (a, b, o) in res.items() if net in (a, b)]
            cs = [f for _r, (nets, f) in caps.items() if net in nets and GND in nets]
            if len(rs) != 1 or len(cs) != 1:
                out.append(Finding("anti-alias", chip, f"{pins[0]} ({ch}{leg})",
                                   f"needs one series R and one C to GND at the pin "
                                   f"(has {len(rs)} R, {len(cs)} C)"))
                continue
            fc = 1 / (2 * np.pi * rs[0] * cs[0])
            if not lo <= fc <= hi:
                out.append(Finding("anti-alias", chip, f"{pins[0]} ({ch}{leg})",
                                   f"corner {fc:.0f} Hz outside {lo}-{hi} Hz"))
    m = ce.facts["metering"]
    limit = np.degrees(2 * np.pi * d["mains_hz"] * m["delay_step_us"] * 1e-6 * m["delay_max_steps"])
    for i_row, v_row, diff in phase_pairs(board, cat, rows):
        if abs(diff) > limit:
            out.append(Finding("phase", chip, f"{i_row['pin']} ({i_row['channel']}P)",
                               f"{i_row['channel']} ({i_row['source']}) leads V1 "
                               f"({v_row['source']}, {v_row['setting']}) by {diff:.2f} deg "
                               f"(front end and sensors' typical phase), beyond the chip's "
                               f"+-{limit:.2f} deg delay range"))
    return out


def _sensor_lead(board: Board, cat, source: str) -> float:
    """Typical phase lead (deg) of the sensor behind a source pin (midpoint of its range)."""
    mod = board.parts[source.split(".")[0]]["fields"].get("Module")
    lo, hi = cat[mod].facts.get("phase_lead_deg", [0.0, 0.0]) if mod else (0.0, 0.0)
    return (lo + hi) / 2


def phase_pairs(board: Board, cat, rows):
    """(current row, voltage row, how far the current leads the voltage in deg) for every
    current channel against every voltage source: the network's phase at the mains frequency
    plus each sensor's typical lead."""
    volts = [r for r in rows if r["channel"] == "V1"]
    for r in rows:
        if not r["channel"].startswith("I"):
            continue
        for v in volts:
            diff = (r["phase_deg"] + _sensor_lead(board, cat, r["source"])) \
                - (v["phase_deg"] + _sensor_lead(board, cat, v["source"]))
            yield r, v, (diff + 180) % 360 - 180


def _led_currents(board: Board, cat) -> dict[str, float]:
    out = {}
    drive = cat.design["fw_gpio_drive_v"]
    for ref in board.parts:
        entry = _entry(board, cat, ref)
        if not entry or entry.symbol != "LED":
            continue
        anode = board.net_of(ref, "2")  # KiCad LED symbol: 1 = K, 2 = A
        series = [(r, ohms) for r, a, b, ohms in _resistors(board, cat) if anode in (a, b)]
        if not series:
            continue
        r, ohms = series[0]
        out[ref] = max(0.0, (drive - entry.facts["diode"]["vf_v"]) / ohms * 1000.0)
    return out


def check_leds(board: Board, cat) -> list[Finding]:
    out = []
    minimum = cat.design["led_min_ma"]
    for ref, i_ma in sorted(_led_currents(board, cat).items()):
        if i_ma < minimum:
            out.append(Finding("led-current", ref, "2 (A)",
                               f"{i_ma:.2f} mA from a {cat.design['fw_gpio_drive_v']} V GPIO, "
                               f"below the {minimum} mA needed to be seen"))
        if i_ma > 20:
            out.append(Finding("led-current", ref, "2 (A)",
                               f"{i_ma:.1f} mA exceeds the 20 mA a GPIO may source"))
    return out


def regulator_report(board: Board, cat, loads=None) -> list[dict]:
    loads = loads if loads is not None else _rail_loads(board, cat)
    d = cat.design
    rows = []
    for ref in sorted(board.parts):
        e = _entry(board, cat, ref)
        if not e or "regulator" not in e.facts:
            continue
        reg = e.facts["regulator"]
        vin_rail, vout_rail = regulator_rails(e)
        i_ma = loads.get(vout_rail, 0.0)
        vin_min, vin_max = rail_range(board, cat, vin_rail, loads.get(vin_rail, 0.0) / 1000.0)
        p_out = reg["vout"] * i_ma / 1000.0
        if reg.get("kind") in ("buck", "boost"):
            p_w = p_out * (1 / reg["efficiency"] - 1)
            need = reg.get("vin_min_v", 0.0)
            headroom = vin_min - need
        else:
            p_w = (vin_max - reg["vout"]) * i_ma / 1000.0
            headroom = vin_min - reg["dropout_v"] - reg["vout"]
        rows.append({"ref": ref, "part": e.value, "kind": reg.get("kind", "ldo"),
                     "input": vin_rail, "output": vout_rail,
                     "load_ma": round(i_ma, 1), "rating_ma": reg["rating_ma"],
                     "vin_min_v": round(vin_min, 3), "vin_max_v": round(vin_max, 3),
                     "headroom_v": round(headroom, 3), "dissipation_w": round(p_w, 3),
                     "theta_ja": reg["theta_ja"],
                     "tj_c": round(d["ambient_max_c"] + p_w * reg["theta_ja"], 1),
                     "tj_max_c": reg["tj_max_c"]})
    return rows


def check_regulators(board: Board, cat, loads=None) -> list[Finding]:
    out = []
    d = cat.design
    for row in regulator_report(board, cat, loads):
        pin = "VOUT"
        if row["load_ma"] > row["rating_ma"] * (1 - d["budget_margin"]):
            out.append(Finding("rail-budget", row["ref"], pin,
                               f"{row['output']} load {row['load_ma']} mA exceeds "
                               f"{int((1 - d['budget_margin']) * 100)} % of the "
                               f"{row['part']} rating ({row['rating_ma']} mA)"))
        if row["headroom_v"] < 0:
            out.append(Finding("dropout", row["ref"], "VIN",
                               f"input can fall to {row['vin_min_v']} V; {row['part']} lacks "
                               f"{-row['headroom_v']:.3f} V for its {row['output']} output"))
        if row["tj_c"] > row["tj_max_c"] - d["thermal_margin_c"]:
            out.append(Finding("thermal", row["ref"], pin,
                               f"{row['dissipation_w']} W x {row['theta_ja']} C/W gives Tj "
                               f"{row['tj_c']} C at {d['ambient_max_c']} C ambient; limit "
                               f"{row['tj_max_c']} C minus {d['thermal_margin_c']} C margin"))
    return out


def run_all(netlist: Path | None = None, parts_path: Path | None = None,
            pinmap_path: Path | None = None) -> tuple[list[Finding], dict]:
    paths = project()
    net = read_netlist(netlist or paths.netlist)
    board = Board.of(net)
    cat = catalogue.load(parts_path or paths.parts)
    pinmap = pins.load_pinmap(pinmap_path or paths.pinmap)
    loads = _rail_loads(board, cat)
    rows = chip_channels(board, cat)
    findings = (pins.check(pinmap, net)
                + check_power_pins(board, cat) + check_module_supply(board, cat, loads)
                + check_opamp_swing(board, cat) + check_chip_inputs(board, cat, rows)
                + check_burdens(board, cat) + check_fuses_and_usb(board, cat, loads)
                + check_twelve_volts(board, cat) + check_anti_alias(board, cat, rows)
                + check_leds(board, cat) + check_regulators(board, cat, loads))
    i5 = loads.get("+5V", 0.0) / 1000.0
    summary = {"chip_inputs": [{k: (round(v, 4) if isinstance(v, float) else v)
                                for k, v in r.items()} for r in rows],
               "rails": {rail: [round(x, 3) for x in rail_range(board, cat, rail, i5)]
                         for rail in ("+5V", "+5VS", "+3V3")},
               "regulators": regulator_report(board, cat, loads),
               "rail_loads_ma": {k: round(v, 1) for k, v in sorted(loads.items())},
               "leds_ma": {k: round(v, 2) for k, v in sorted(_led_currents(board, cat).items())},
               "findings": [asdict(f) for f in findings]}
    return findings, summary


def write_report(paths: ProjectPaths | None = None, netlist: Path | None = None,
                 parts_path: Path | None = None, pinmap_path: Path | None = None,
                 report: Path | None = None, log=print) -> dict:
    """Run every assertion, write hardware/reports/assertions.json, fail on any finding."""
    paths = paths or project()
    findings, summary = run_all(netlist, parts_path, pinmap_path)
    write_text_if_changed(report or paths.reports / "assertions.json",
                          json.dumps(summary, indent=2) + "\n")
    if findings:
        raise CheckFailed(f"{len(findings)} design assertion(s) failed:\n  "
                          + "\n  ".join(map(str, findings)))
    regs = ", ".join(f"{r['ref']} {r['load_ma']}/{r['rating_ma']} mA Tj {r['tj_c']} C"
                     for r in summary["regulators"])
    chip = ", ".join(f"{r['channel']} {r['vpk']:.3f} V pk" for r in summary["chip_inputs"])
    log(f"design assertions: all pass (chip inputs at full scale: {chip}; regulators: {regs}; "
        f"+5V load {summary['rail_loads_ma'].get('+5V')} mA)")
    return summary
