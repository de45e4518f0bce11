"""Design assertions beyond ERC, checked on the KiCad netlist with the catalogue's figures.

Each check returns findings that name the part and pin at fault. The build fails on any.
Run: python -m openmetering.assertions   (writes hardware/reports/assertions.json)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import parts as catalogue
from .errors import DesignError
from .kicadnet import parse_sexpr
from .paths import NETLIST, PARTS_TOML, PINMAP, REPORTS_DIR

MODULE_REF = "U1"
GND = "GND"
# Strapping pins of the ESP32-S3 and how this board may treat them.
STRAP_RULES = {0: "pull-up to +3V3 (boot from flash)", 3: "open", 45: "open", 46: "open"}


@dataclass
class Finding:
    check: str
    part: str
    pin: str
    message: str

    def __str__(self):
        return f"[{self.check}] {self.part} pin {self.pin}: {self.message}"


@dataclass
class Board:
    """The netlist as the checks need it."""
    parts: dict[str, dict]                                   # ref -> value, footprint, fields
    pin_net: dict[tuple[str, str], str]                      # (ref, pin number) -> net
    pin_name: dict[tuple[str, str], str]                     # (ref, pin number) -> pin function
    nets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def net_of(self, ref, pin) -> str | None:
        return self.pin_net.get((ref, str(pin)))

    def pin_by_name(self, ref, name) -> str | None:
        for (r, num), fn in self.pin_name.items():
            if r == ref and fn == name:
                return num
        return None

    def connected(self, net) -> bool:
        return net is not None and not net.startswith("unconnected-")


def read_board(path: Path = NETLIST) -> Board:
    if not Path(path).exists():
        raise DesignError(f"{path}: netlist missing; run the circuit stage first")
    tree = parse_sexpr(Path(path).read_text())
    parts, pin_net, pin_name, nets = {}, {}, {}, {}

    def kids(node, name):
        return [c for c in node[1:] if isinstance(c, list) and c and c[0] == name]

    def val(node, name):
        c = kids(node, name)
        return c[0][1] if c and len(c[0]) > 1 else ""

    for comp in kids(kids(tree, "components")[0], "comp"):
        fields = {}
        for f in kids(kids(comp, "fields")[0], "field") if kids(comp, "fields") else []:
            fields[val(f, "name")] = next((x for x in f[1:] if isinstance(x, str)), "")
        parts[val(comp, "ref")] = {"value": val(comp, "value"),
                                   "footprint": val(comp, "footprint"), "fields": fields}
    for net in kids(kids(tree, "nets")[0], "net"):
        # KiCad names a net local to a sheet by its path (/mcu/BOOT); the design's names are
        # the last component, and must stay unique.
        name = val(net, "name").rsplit("/", 1)[-1]
        if name in nets:
            raise DesignError(f"{path}: two nets named '{name}' in different sheets")
        nodes = []
        for node in kids(net, "node"):
            key = (val(node, "ref"), val(node, "pin"))
            pin_net[key] = name
            pin_name[key] = val(node, "pinfunction") or key[1]
            nodes.append(key)
        nets[name] = nodes
    return Board(parts, pin_net, pin_name, nets)


def load_pinmap(path: Path = PINMAP):
    spec = importlib.util.spec_from_file_location("omd_pinmap_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def module_gpio_pins(board: Board) -> dict[int, str]:
    """GPIO number -> module pin number, from the module's pin functions."""
    alias = {"USB_D-": 19, "USB_D+": 20, "TXD0": 43, "RXD0": 44}
    out = {}
    for (ref, num), fn in board.pin_name.items():
        if ref != MODULE_REF:
            continue
        if fn.startswith("IO") and fn[2:].isdigit():
            out[int(fn[2:])] = num
        elif fn in alias:
            out[alias[fn]] = num
    return out


def _entry(board: Board, cat: catalogue.Catalog, ref: str) -> catalogue.CatalogPart | None:
    key = board.parts[ref]["fields"].get("PartID")
    return cat[key] if key else None


# --- checks --------------------------------------------------------------------------------
def check_pinmap(board: Board, pinmap) -> list[Finding]:
    out = []
    seen: dict[int, str] = {}
    for signal, (gpio, kind) in pinmap.PINS.items():
        if gpio in seen:
            out.append(Finding("gpio-unique", MODULE_REF, f"IO{gpio}",
                               f"GPIO{gpio} assigned to both {seen[gpio]} and {signal}"))
        seen[gpio] = signal
        if kind == "adc" and gpio not in pinmap.ADC1_CHANNEL:
            out.append(Finding("adc1-only", MODULE_REF, f"IO{gpio}",
                               f"analog signal {signal} on GPIO{gpio}, which is not ADC1 "
                               f"(ADC2 cannot be read while Wi-Fi is on)"))
        if gpio in pinmap.FLASH_PSRAM_GPIOS:
            out.append(Finding("flash-psram", MODULE_REF, f"IO{gpio}",
                               f"{signal} on GPIO{gpio}, used by the module's flash/PSRAM"))
        if gpio in pinmap.USB_GPIOS and kind != "usb":
            out.append(Finding("usb-pins", MODULE_REF, f"IO{gpio}",
                               f"{signal} ({kind}) on GPIO{gpio}, reserved for native USB"))
        if gpio in pinmap.STRAPPING_GPIOS and kind != "strap":
            out.append(Finding("strapping", MODULE_REF, f"IO{gpio}",
                               f"{signal} ({kind}) on strapping GPIO{gpio}"))
    gpins = module_gpio_pins(board)
    for signal, (gpio, _kind) in pinmap.PINS.items():
        pin = gpins.get(gpio)
        net = board.net_of(MODULE_REF, pin) if pin else None
        if net != signal:
            out.append(Finding("pinmap-netlist", MODULE_REF, f"{pin} (IO{gpio})",
                               f"pin map puts {signal} on GPIO{gpio}, board net there is {net}"))
    # No two module GPIOs on one net (a short between GPIOs is a pin used twice).
    by_net: dict[str, list[int]] = {}
    for gpio, pin in gpins.items():
        net = board.net_of(MODULE_REF, pin)
        if board.connected(net) and net != GND:
            by_net.setdefault(net, []).append(gpio)
    for net, gpios in by_net.items():
        if len(gpios) > 1:
            out.append(Finding("gpio-unique", MODULE_REF, ",".join(f"IO{g}" for g in gpios),
                               f"GPIOs {gpios} are joined on net {net}"))
    return out


def check_reserved_pins(board: Board, pinmap) -> list[Finding]:
    out = []
    gpins = module_gpio_pins(board)
    for gpio in pinmap.FLASH_PSRAM_GPIOS:
        pin = gpins.get(gpio)
        if pin and board.connected(board.net_of(MODULE_REF, pin)):
            out.append(Finding("flash-psram", MODULE_REF, f"{pin} (IO{gpio})",
                               f"GPIO{gpio} belongs to the N8R8's flash/PSRAM but is on net "
                               f"{board.net_of(MODULE_REF, pin)}"))
    usb_parts = {r for r, p in board.parts.items() if p["fields"].get("PartID") in
                 ("usb_c", "usb_esd")}
    for gpio, signal in ((19, "USB_DM"), (20, "USB_DP")):
        pin = gpins[gpio]
        net = board.net_of(MODULE_REF, pin)
        others = {r for r, _ in board.nets.get(net, [])} - {MODULE_REF}
        if net != signal or not others or not others <= usb_parts:
            out.append(Finding("usb-pins", MODULE_REF, f"{pin} (IO{gpio})",
                               f"native USB pin must reach only the USB-C connector/ESD on "
                               f"{signal}; it is on {net} with {sorted(others)}"))
    for gpio, rule in STRAP_RULES.items():
        pin = gpins[gpio]
        net = board.net_of(MODULE_REF, pin)
        if rule == "open":
            if board.connected(net):
                out.append(Finding("strapping", MODULE_REF, f"{pin} (IO{gpio})",
                                   f"strapping GPIO{gpio} must stay open, it is on net {net}"))
            continue
        pullups = [r for r, p in board.nets.get(net, [])
                   if r.startswith("R") and {board.net_of(r, "1"), board.net_of(r, "2")}
                   == {net, "+3V3"}]
        if not pullups:
            out.append(Finding("strapping", MODULE_REF, f"{pin} (IO{gpio})",
                               f"strapping GPIO{gpio} needs a {rule}; net {net} has none"))
    return out


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
    gpins = module_gpio_pins(board)
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
            adc_net = board.net_of(MODULE_REF, gpins[gpio])
            if kind == "adc" and _reachable(res, {out_net}, adc_net, through=set(rails)):
                row["adc"].append((signal, gpio, gpins[gpio], solve_dc(res, fixed, adc_net)))
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


def run_all(netlist: Path = NETLIST, parts_path: Path = PARTS_TOML,
            pinmap_path: Path = PINMAP) -> tuple[list[Finding], dict]:
    board = read_board(netlist)
    cat = catalogue.load(parts_path)
    pinmap = load_pinmap(pinmap_path)
    rows = adc_full_scale(board, cat, pinmap)
    findings = (check_pinmap(board, pinmap) + check_reserved_pins(board, pinmap)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--netlist", type=Path, default=NETLIST)
    ap.add_argument("--parts", type=Path, default=PARTS_TOML)
    ap.add_argument("--pinmap", type=Path, default=PINMAP)
    ap.add_argument("--report", type=Path, default=REPORTS_DIR / "assertions.json")
    args = ap.parse_args(argv)
    try:
        findings, summary = run_all(args.netlist, args.parts, args.pinmap)
    except DesignError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    args.report.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2) + "\n"
    if not args.report.exists() or args.report.read_text() != text:
        args.report.write_text(text)
    for f in findings:
        print(f"assertion failed: {f}", file=sys.stderr)
    if findings:
        return 1
    regs = ", ".join(f"{r['ref']} {r['load_ma']}/{r['rating_ma']} mA Tj {r['tj_c']} C"
                     for r in summary["regulators"])
    adc = ", ".join(f"{k} {v['adc_pin_v']} V" for k, v in summary["adc"].items())
    print(f"design assertions: all pass (ADC at full scale: {adc}; regulators: {regs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
