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
    for ref, module in sensor_headers(board, cat):
        facts = module.facts
        vcc = header_pin(module, "VCC")
        if board.net_of(ref, vcc) != facts["sensor"]["supply"]:
            out.append(Finding("power-rail", ref, f"{vcc} (VCC)",
                               f"{module.value} needs {facts['sensor']['supply']}, header "
                               f"pin is on {board.net_of(ref, vcc)}"))
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
    return rails.get("VI", rails.get("V_{IN}")), rails.get("VO", rails.get("V_{OUT}"))


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


def adc_full_scale(board: Board, cat, pinmap) -> list[dict]:
    """For each sensor header: the ADC inputs its output reaches through resistors, and the
    DC voltage there with the sensor at full scale (an empty `adc` list: reaches none)."""
    res = _resistors(board, cat)
    rails = rail_voltages(cat)
    rows = []
    for ref, module in sensor_headers(board, cat):
        out_pin = header_pin(module, "OUT")
        out_net = board.net_of(ref, out_pin)
        full_scale = module.facts["sensor"]["vout_max_v"]
        fixed = {**rails, out_net: full_scale}
        row = {"header": ref, "module": module, "out_pin": out_pin, "out_net": out_net,
               "full_scale_v": full_scale, "adc": []}
        for signal, (gpio, kind) in pinmap.PINS.items():
            pad = pins.MODULE_PAD.get(gpio)
            adc_net = board.net_of(MODULE_REF, pad)
            if kind == "adc" and _reachable(res, {out_net}, adc_net, through=set(rails)):
                row["adc"].append((signal, gpio, pad, solve_dc(res, fixed, adc_net)))
        rows.append(row)
    return rows


def check_adc_range(board: Board, cat, pinmap, rows=None) -> list[Finding]:
    out = []
    limit = cat.design["adc_max_v"]
    for row in rows if rows is not None else adc_full_scale(board, cat, pinmap):
        for signal, gpio, pin, v in row["adc"]:
            if v is None or v > limit:
                out.append(Finding("adc-range", MODULE_REF, f"{pin} (IO{gpio})",
                                   f"{row['module'].value} at full scale "
                                   f"({row['full_scale_v']} V on {row['header']} OUT) gives "
                                   f"{v if v is None else round(v, 3)} V on {signal}, ADC "
                                   f"limit {limit} V"))
        if not row["adc"]:
            out.append(Finding("adc-range", row["header"], row["out_pin"],
                               f"sensor output {row['out_net']} reaches no ADC input through "
                               f"resistors"))
    return out


def _rail_loads(board: Board, cat) -> dict[str, float]:
    """Worst-case current (mA) drawn from each rail, regulators' downstream loads included."""
    load: dict[str, float] = {}
    for ref in board.parts:
        entry = _entry(board, cat, ref)
        if entry:
            for pin_id, ma in entry.facts.get("load_ma", {}).items():
                nums = [n for (r, n), fn in board.pin_name.items()
                        if r == ref and (fn == pin_id or n == pin_id)]
                for num in nums[:1]:
                    net = board.net_of(ref, num)
                    load[net] = load.get(net, 0.0) + ma
        mod = board.parts[ref]["fields"].get("Module")
        if mod and "sensor" in cat[mod].facts:
            s = cat[mod].facts["sensor"]
            load[s["supply"]] = load.get(s["supply"], 0.0) + s["load_ma"]
    for _led, i_ma in _led_currents(board, cat).items():
        load["+3V3"] = load.get("+3V3", 0.0) + i_ma  # GPIO-driven: comes from the 3.3 V rail
    # Regulators in dependency order: a regulator's input carries its output's load.
    # Lowest output first: a regulator's input carries its output's whole load, which
    # already includes any regulator fed from that output.
    regs = [e for e in (_entry(board, cat, ref) for ref in board.parts)
            if e and "regulator" in e.facts]
    for e in sorted(regs, key=lambda e: e.facts["regulator"]["vout"]):
        vin, vout = regulator_rails(e)
        load[vin] = load.get(vin, 0.0) + load.get(vout, 0.0) + e.facts["regulator"]["iq_ma"]
    return load


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


def regulator_report(board: Board, cat) -> list[dict]:
    loads = _rail_loads(board, cat)
    d = cat.design
    rows = []
    for ref in sorted(board.parts):
        e = _entry(board, cat, ref)
        if not e or "regulator" not in e.facts:
            continue
        reg = e.facts["regulator"]
        vin_rail, vout_rail = regulator_rails(e)
        i_ma = loads.get(vout_rail, 0.0)
        if vin_rail == "+5V":
            vin_max = d["terminal_5v_max_v"]
            drops = [board.parts[r] for r in board.parts
                     if (_entry(board, cat, r) and "diode" in _entry(board, cat, r).facts
                         and _entry(board, cat, r).symbol == "D_Schottky"
                         and board.net_of(r, "1") == vin_rail)]
            vf = max((cat[p["fields"]["PartID"]].facts["diode"]["vf_v"] for p in drops),
                     default=0.0)
            vin_min = d["usb_vbus_min_v"] - vf
        else:
            vin_max = rail_voltages(cat)[vin_rail] * 1.03
            vin_min = rail_voltages(cat)[vin_rail] * 0.97
        p_w = (vin_max - reg["vout"]) * i_ma / 1000.0
        rows.append({"ref": ref, "part": e.value, "input": vin_rail, "output": vout_rail,
                     "load_ma": round(i_ma, 1), "rating_ma": reg["rating_ma"],
                     "vin_min_v": round(vin_min, 3), "dropout_v": reg["dropout_v"],
                     "headroom_v": round(vin_min - reg["dropout_v"] - reg["vout"], 3),
                     "dissipation_w": round(p_w, 3),
                     "tj_c": round(d["ambient_max_c"] + p_w * reg["theta_ja"], 1),
                     "tj_max_c": reg["tj_max_c"]})
    return rows


def check_regulators(board: Board, cat) -> list[Finding]:
    out = []
    d = cat.design
    for row in regulator_report(board, cat):
        pin = "2 (VO)"
        if row["load_ma"] > row["rating_ma"] * (1 - d["budget_margin"]):
            out.append(Finding("rail-budget", row["ref"], pin,
                               f"{row['output']} load {row['load_ma']} mA exceeds "
                               f"{int((1 - d['budget_margin']) * 100)} % of the "
                               f"{row['part']} rating ({row['rating_ma']} mA)"))
        if row["headroom_v"] < 0:
            out.append(Finding("dropout", row["ref"], "VI",
                               f"input can fall to {row['vin_min_v']} V; {row['part']} needs "
                               f"{row['dropout_v']} V above its {row['output']} output"))
        if row["tj_c"] > row["tj_max_c"] - d["thermal_margin_c"]:
            out.append(Finding("thermal", row["ref"], pin,
                               f"{row['dissipation_w']} W gives Tj {row['tj_c']} C at "
                               f"{d['ambient_max_c']} C ambient; limit {row['tj_max_c']} C "
                               f"minus {d['thermal_margin_c']} C margin"))
    return out


def run_all(netlist: Path | None = None, parts_path: Path | None = None,
            pinmap_path: Path | None = None) -> tuple[list[Finding], dict]:
    paths = project()
    net = read_netlist(netlist or paths.netlist)
    board = Board.of(net)
    cat = catalogue.load(parts_path or paths.parts)
    pinmap = pins.load_pinmap(pinmap_path or paths.pinmap)
    rows = adc_full_scale(board, cat, pinmap)
    findings = (pins.check(pinmap, net)
                + check_power_pins(board, cat) + check_adc_range(board, cat, pinmap, rows)
                + check_leds(board, cat) + check_regulators(board, cat))
    adc = {signal: {"sensor": row["module"].value, "header": row["header"],
                    "full_scale_v": row["full_scale_v"],
                    "adc_pin_v": None if v is None else round(v, 3),
                    "limit_v": cat.design["adc_max_v"]}
           for row in rows for signal, _gpio, _pin, v in row["adc"]}
    adc = {signal: adc[signal] for signal, (_g, kind) in pinmap.PINS.items() if signal in adc}
    summary = {"adc": adc, "regulators": regulator_report(board, cat),
               "rail_loads_ma": {k: round(v, 1) for k, v in
                                 sorted(_rail_loads(board, cat).items())},
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
    adc = ", ".join(f"{k} {v['adc_pin_v']} V" for k, v in summary["adc"].items())
    log(f"design assertions: all pass (ADC at full scale: {adc}; regulators: {regs})")
    return summary
