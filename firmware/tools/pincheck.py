"""Check the firmware pin map against the board's KiCad netlist.

    python -m firmware.tools.pincheck [hardware/kicad/open-meter.net] [--pinmap firmware/pinmap.py]

Reads the netlist KiCad (or SKiDL) wrote, never a copy of its facts: every pin-map signal
must be a net that reaches the ESP32-S3-WROOM-1 (U1) on the pin of that GPIO and the part it
is meant for (the OV2640 FPC at the right contact for camera lines); analog inputs must be
ADC1 channels; flash/PSRAM, USB and strapping pins must not be misused; no GPIO twice.
Each problem is reported with the signal and GPIO it concerns; exit status 1 if any.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NETLIST = ROOT / "hardware" / "kicad" / "open-meter.net"
PINMAP = ROOT / "firmware" / "pinmap.py"
MODULE_REF = "U1"

# ESP32-S3-WROOM-1 module pad of each GPIO (Espressif datasheet, = KiCad RF_Module symbol)
WROOM_PAD = {
    4: "4", 5: "5", 6: "6", 7: "7", 15: "8", 16: "9", 17: "10", 18: "11", 8: "12", 19: "13",
    20: "14", 3: "15", 46: "16", 9: "17", 10: "18", 11: "19", 12: "20", 13: "21", 14: "22",
    21: "23", 47: "24", 48: "25", 45: "26", 0: "27", 35: "28", 36: "29", 37: "30", 38: "31",
    39: "32", 40: "33", 41: "34", 42: "35", 44: "36", 43: "37", 2: "38", 1: "39",
}
# pin names in KiCad's symbol where they are not IOn
SYMBOL_ALIAS = {19: ("USB_D-",), 20: ("USB_D+",), 43: ("TXD0", "U0TXD"), 44: ("RXD0", "U0RXD")}

# OV2640 24-pin FPC contact of each camera signal (pinout used by the circuit)
FPC_PIN = {
    "CAM_SIOD": "3", "CAM_SIOC": "5", "CAM_VSYNC": "7", "CAM_PWDN": "8", "CAM_HREF": "9",
    "CAM_XCLK": "13", "CAM_PCLK": "17", "CAM_D7": "12", "CAM_D6": "14", "CAM_D5": "16",
    "CAM_D4": "18", "CAM_D3": "20", "CAM_D2": "22", "CAM_D1": "21", "CAM_D0": "19",
}
# which other parts a net of each kind must reach (reference prefixes)
NEIGHBOURS = {
    "adc": (("R",), ("C",)),  # divider/series R and the anti-alias C
    "led": (("R", "D"),),
    "button": (("SW", "S"),),
    "i2c": (("R", "J", "P"),),
    "uart": (("J", "P", "TP"),),
    "usb": (("J", "P", "R"),),
    "strap": (("SW", "S", "R"),),
}


def io_names(g: int) -> tuple[str, ...]:
    return (f"IO{g}", f"GPIO{g}") + SYMBOL_ALIAS.get(g, ())


# --- s-expression netlist ----------------------------------------------------------------
_TOK = re.compile(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()"]+')


def parse_sexpr(text: str):
    stack: list[list] = [[]]
    for m in _TOK.finditer(text):
        t = m.group(0)
        if t == "(":
            stack.append([])
        elif t == ")":
            if len(stack) < 2:
                raise ValueError("netlist: unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        elif t.startswith('"'):
            stack[-1].append(t[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
        else:
            stack[-1].append(t)
    if len(stack) != 1:
        raise ValueError("netlist: unbalanced '('")
    return stack[0]


def _field(node, name):
    for x in node[1:]:
        if isinstance(x, list) and x and x[0] == name:
            return x[1] if len(x) > 1 else ""
    return None


def read_netlist(path: Path) -> dict[str, list[dict]]:
    """{net name without leading '/': [{'ref','pin','pinfunction'}]}"""
    tree = parse_sexpr(Path(path).read_text(encoding="utf-8"))
    export = next((x for x in tree if isinstance(x, list) and x and x[0] == "export"), None)
    if export is None:
        raise ValueError(f"{path}: not a KiCad netlist (no (export ...))")
    nets_node = next((x for x in export if isinstance(x, list) and x and x[0] == "nets"), None)
    if nets_node is None:
        raise ValueError(f"{path}: netlist has no (nets ...) section")
    nets: dict[str, list[dict]] = {}
    for n in nets_node[1:]:
        if not (isinstance(n, list) and n and n[0] == "net"):
            continue
        name = _field(n, "name") or ""
        nodes = []
        for x in n[1:]:
            if isinstance(x, list) and x and x[0] == "node":
                nodes.append({"ref": _field(x, "ref"), "pin": _field(x, "pin"),
                              "pinfunction": _field(x, "pinfunction") or ""})
        nets[name.rsplit("/", 1)[-1] if name.startswith("/") else name] = nodes
    return nets


def load_pinmap(path: Path):
    spec = importlib.util.spec_from_file_location("pinmap_checked", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- checks --------------------------------------------------------------------------------
def check_pinmap(pm) -> list[str]:
    """Rules that need only the pin map."""
    errs = []
    seen: dict[int, str] = {}
    for sig, (g, kind) in pm.PINS.items():
        if g in seen:
            errs.append(f"{sig}: GPIO{g} used twice (also {seen[g]})")
        seen[g] = sig
        if kind == "adc" and g not in pm.ADC1_CHANNEL:
            errs.append(f"{sig}: GPIO{g} is not an ADC1 channel (ADC2 is unusable with Wi-Fi)")
        if g in pm.FLASH_PSRAM_GPIOS:
            errs.append(f"{sig}: GPIO{g} is wired to the N8R8 flash/octal PSRAM")
        if g in pm.USB_GPIOS and kind != "usb":
            errs.append(f"{sig}: GPIO{g} is the native USB D-/D+ (needed for flashing)")
        if g in pm.STRAPPING_GPIOS and kind != "strap":
            errs.append(f"{sig}: GPIO{g} is a strapping pin")
        if kind == "usb" and g not in pm.USB_GPIOS:
            errs.append(f"{sig}: GPIO{g} is not a USB pin")
        if g not in WROOM_PAD:
            errs.append(f"{sig}: GPIO{g} is not brought out on the ESP32-S3-WROOM-1")
    return errs


def check_netlist(pm, nets: dict[str, list[dict]]) -> list[str]:
    errs = []
    gpio_of_pad = {pad: g for g, pad in WROOM_PAD.items()}
    used_pads: dict[str, str] = {}
    # which connector carries the camera: the part on most CAM_* nets besides the module
    refs: dict[str, int] = {}
    for sig in FPC_PIN:
        for nd in nets.get(sig, []):
            if nd["ref"] != MODULE_REF:
                refs[nd["ref"]] = refs.get(nd["ref"], 0) + 1
    fpc = max(refs, key=refs.get) if refs else None
    for sig, (g, kind) in pm.PINS.items():
        nodes = nets.get(sig)
        if nodes is None:
            errs.append(f"{sig}: GPIO{g}: no net named {sig} in the netlist")
            continue
        mods = [nd for nd in nodes if nd["ref"] == MODULE_REF]
        want = WROOM_PAD.get(g)
        if not mods:
            errs.append(f"{sig}: GPIO{g}: net does not reach {MODULE_REF}")
            continue
        for nd in mods:
            if nd["pin"] != want or (nd["pinfunction"] and nd["pinfunction"] not in io_names(g)):
                got = gpio_of_pad.get(nd["pin"])
                errs.append(f"{sig}: pin map says GPIO{g} ({MODULE_REF} pad {want}), netlist"
                            f" connects {MODULE_REF} pad {nd['pin']} {nd['pinfunction']}"
                            f" (GPIO{got})")
            prev = used_pads.get(nd["pin"])
            if prev and prev != sig:
                errs.append(f"{sig}: {MODULE_REF} pad {nd['pin']} also on net {prev}")
            used_pads[nd["pin"]] = sig
        others = [nd["ref"] for nd in nodes if nd["ref"] != MODULE_REF]
        if sig in FPC_PIN:
            if fpc is None or not any(nd["ref"] == fpc and nd["pin"] == FPC_PIN[sig]
                                      for nd in nodes):
                got = [f"{nd['ref']}.{nd['pin']}" for nd in nodes if nd["ref"] != MODULE_REF]
                errs.append(f"{sig}: GPIO{g} should reach camera FPC {fpc} pin {FPC_PIN[sig]}"
                            f", reaches {', '.join(got) or 'nothing'}")
        for group in NEIGHBOURS.get(kind, ()):
            if not any(any(r.startswith(p) for p in group) for r in others):
                errs.append(f"{sig}: GPIO{g} ({kind}) net reaches no {'/'.join(group)} part"
                            f" (has {', '.join(others) or 'nothing'})")
    # module pins the pin map does not know must be unconnected; flash/PSRAM pins above all
    mapped = {WROOM_PAD.get(g) for g, _ in pm.PINS.values()}
    for name, nodes in nets.items():
        for nd in nodes:
            if nd["ref"] != MODULE_REF or nd["pin"] not in gpio_of_pad:
                continue
            g = gpio_of_pad[nd["pin"]]
            if nd["pin"] in mapped or len(nodes) < 2:
                continue
            what = "flash/PSRAM " if g in pm.FLASH_PSRAM_GPIOS else ""
            errs.append(f"GPIO{g}: {what}pin ({MODULE_REF} pad {nd['pin']}) is connected to net"
                        f" {name} but is not in the pin map")
    return errs


def check(pinmap_path: Path = PINMAP, netlist_path: Path = NETLIST) -> list[str]:
    pm = load_pinmap(Path(pinmap_path))
    errs = check_pinmap(pm)
    if not Path(netlist_path).is_file():
        return errs + [f"netlist {netlist_path} is missing (the circuit build writes it)"]
    return errs + check_netlist(pm, read_netlist(Path(netlist_path)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="check firmware/pinmap.py against the netlist")
    ap.add_argument("netlist", nargs="?", default=str(NETLIST))
    ap.add_argument("--pinmap", default=str(PINMAP))
    a = ap.parse_args(argv)
    errs = check(Path(a.pinmap), Path(a.netlist))
    for e in errs:
        print("PIN ERROR:", e)
    if not errs:
        print(f"pin map OK against {a.netlist}")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
