"""The pin map (firmware/pinmap.py): its one loader and its one rule set.

The rules hold the pin map to the ESP32-S3-WROOM-1 (ADC1 only, flash/PSRAM, USB and strapping
pins, pads the module brings out) and to the netlist KiCad wrote (each signal on the pad of
its GPIO, reaching the parts it is meant for, no module pin wired that the map does not
know). The design assertions and the firmware's `pincheck` both run them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .errors import DesignError, MissingInput
from .kicadnet import Netlist

MODULE_REF = "U1"
GND = "GND"

# ESP32-S3-WROOM-1 module pad of each GPIO it brings out (Espressif datasheet, the KiCad
# RF_Module symbol's pin numbers)
MODULE_PAD = {
    4: "4", 5: "5", 6: "6", 7: "7", 15: "8", 16: "9", 17: "10", 18: "11", 8: "12", 19: "13",
    20: "14", 3: "15", 46: "16", 9: "17", 10: "18", 11: "19", 12: "20", 13: "21", 14: "22",
    21: "23", 47: "24", 48: "25", 45: "26", 0: "27", 35: "28", 36: "29", 37: "30", 38: "31",
    39: "32", 40: "33", 41: "34", 42: "35", 44: "36", 43: "37", 2: "38", 1: "39",
}
GPIO_OF_PAD = {pad: g for g, pad in MODULE_PAD.items()}

# Strapping pins and how this board may treat them.
STRAP_RULES = {0: "pull-up to +3V3 (boot from flash)", 3: "open", 45: "open", 46: "open"}

# Catalogue parts the native USB lines may reach.
USB_PARTS = ("usb_c", "usb_esd")

# Camera FPC connector pad of each camera signal (the connector's pad numbering, see
# hardware/skidl/camera.py): checked here against the netlist, so a slip in the circuit's
# table shows as a wrong contact.
FPC_PIN = {
    "CAM_SIOD": "22", "CAM_SIOC": "20", "CAM_VSYNC": "18", "CAM_PWDN": "17", "CAM_HREF": "16",
    "CAM_XCLK": "12", "CAM_PCLK": "8", "CAM_D7": "13", "CAM_D6": "11", "CAM_D5": "9",
    "CAM_D4": "7", "CAM_D3": "5", "CAM_D2": "3", "CAM_D1": "4", "CAM_D0": "6",
}

# Parts (by reference prefix) a net of each kind must reach besides the module: one of each
# group.
NEIGHBOURS = {
    "spi": (("U",),),         # the metering chip
    "irq": (("U",),),
    "adc": (("R",), ("C",)),  # divider/series R and the anti-alias C
    "led": (("R", "D"),),
    "button": (("SW", "S"),),
    "i2c": (("R", "J", "P"),),
    "uart": (("J", "P", "TP"),),
    "usb": (("J", "P", "R"),),
    "strap": (("SW", "S", "R"),),
}


@dataclass
class Finding:
    check: str
    part: str
    pin: str
    message: str

    def __str__(self):
        return f"[{self.check}] {self.part} pin {self.pin}: {self.message}"


def load_pinmap(path: Path) -> ModuleType:
    """Import firmware/pinmap.py (or a copy) from its file: it is MicroPython code, not a
    package module."""
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"{path}: pin map missing")
    spec = importlib.util.spec_from_file_location("omd_pinmap", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # a pin map with a typo: say where, not a traceback
        raise DesignError(f"{path}: cannot load the pin map: {type(e).__name__}: {e}") from None
    for name in ("PINS", "ADC1_CHANNEL", "FLASH_PSRAM_GPIOS", "STRAPPING_GPIOS", "USB_GPIOS",
                 "symbol_pin"):
        if not hasattr(mod, name):
            raise DesignError(f"{path}: pin map defines no {name}")
    return mod


def _io(g: int) -> str:
    return f"IO{g}"


def _at(g: int) -> str:
    pad = MODULE_PAD.get(g)
    return f"{pad} (IO{g})" if pad else _io(g)


# --- rules on the pin map alone ---------------------------------------------------------------
def check_pinmap(pm) -> list[Finding]:
    out = []
    seen: dict[int, str] = {}
    for sig, (g, kind) in pm.PINS.items():
        if g in seen:
            out.append(Finding("gpio-unique", MODULE_REF, _io(g),
                               f"GPIO{g} assigned to both {seen[g]} and {sig}"))
        seen[g] = sig
        if kind == "adc" and g not in pm.ADC1_CHANNEL:
            out.append(Finding("adc1-only", MODULE_REF, _io(g),
                               f"analog signal {sig} on GPIO{g}, which is not an ADC1 channel "
                               f"(ADC2 cannot be read while Wi-Fi is on)"))
        if g in pm.FLASH_PSRAM_GPIOS:
            out.append(Finding("flash-psram", MODULE_REF, _io(g),
                               f"{sig} on GPIO{g}, which the module wires to its flash/octal "
                               f"PSRAM"))
        if g in pm.USB_GPIOS and kind != "usb":
            out.append(Finding("usb-pins", MODULE_REF, _io(g),
                               f"{sig} ({kind}) on GPIO{g}, the native USB D-/D+ (needed for "
                               f"flashing)"))
        if kind == "usb" and g not in pm.USB_GPIOS:
            out.append(Finding("usb-pins", MODULE_REF, _io(g),
                               f"USB signal {sig} on GPIO{g}, which is not a USB pin"))
        if g in pm.STRAPPING_GPIOS and kind != "strap":
            out.append(Finding("strapping", MODULE_REF, _io(g),
                               f"{sig} ({kind}) on strapping GPIO{g}"))
        if g not in MODULE_PAD:
            out.append(Finding("module-pad", MODULE_REF, _io(g),
                               f"{sig} on GPIO{g}, which the ESP32-S3-WROOM-1 does not bring "
                               f"out"))
    return out


# --- rules on the pin map against the netlist -------------------------------------------------
def _connected(name: str | None, nodes) -> bool:
    return bool(name) and not name.startswith("unconnected-") and len(nodes) > 1


def check_netlist(pm, net: Netlist) -> list[Finding]:
    out = []
    nets = net.signal_nets()
    pad_net = {k: name.rsplit("/", 1)[-1] for k, name in net.pad_nets().items()}
    mapped = {g for g, _kind in pm.PINS.values()}

    # the module symbol's pin names agree with the pad table (the alias table included)
    for (ref, pad), fn in sorted(net.pin_functions.items()):
        if ref == MODULE_REF and pad in GPIO_OF_PAD and fn:
            g = GPIO_OF_PAD[pad]
            if fn != pm.symbol_pin(g):
                out.append(Finding("module-pad", MODULE_REF, _at(g),
                                   f"the symbol calls pad {pad} {fn}; GPIO{g} should be "
                                   f"{pm.symbol_pin(g)}"))

    fpc = _camera_connector(nets)
    for sig, (g, kind) in pm.PINS.items():
        nodes = nets.get(sig)
        if nodes is None:
            out.append(Finding("pinmap-netlist", MODULE_REF, _at(g),
                               f"pin map has {sig} on GPIO{g}; the netlist has no net {sig}"))
            continue
        pad = MODULE_PAD.get(g)
        on_module = [p for r, p in nodes if r == MODULE_REF]
        if pad and on_module != [pad]:
            got = ", ".join(f"U1 pad {p} (GPIO{GPIO_OF_PAD.get(p, '?')})" for p in on_module)
            out.append(Finding("pinmap-netlist", MODULE_REF, _at(g),
                               f"pin map puts {sig} on GPIO{g} (U1 pad {pad}); the netlist "
                               f"connects {sig} to {got or 'no U1 pad'}"))
        others = sorted({r for r, _p in nodes if r != MODULE_REF})
        if sig in FPC_PIN and (fpc is None or (fpc, FPC_PIN[sig]) not in nodes):
            got = ", ".join(f"{r}.{p}" for r, p in nodes if r != MODULE_REF)
            out.append(Finding("camera-fpc", MODULE_REF, _at(g),
                               f"{sig} should reach camera FPC {fpc} pin {FPC_PIN[sig]}, it "
                               f"reaches {got or 'nothing'}"))
        for group in NEIGHBOURS.get(kind, ()):
            if not any(r.startswith(group) for r in others):
                out.append(Finding("neighbours", MODULE_REF, _at(g),
                                   f"{sig} ({kind}) reaches no {'/'.join(group)} part (it "
                                   f"reaches {', '.join(others) or 'nothing'})"))
        if kind == "usb":
            usb = {r for r, p in net.parts.items() if p.fields.get("PartID") in USB_PARTS}
            if not others or not set(others) <= usb:
                out.append(Finding("usb-pins", MODULE_REF, _at(g),
                                   f"native USB pin must reach only the USB-C connector/ESD; "
                                   f"{sig} reaches {others}"))

    # strapping pins: the intended pull, or open
    for g, rule in STRAP_RULES.items():
        pad = MODULE_PAD[g]
        name = pad_net.get((MODULE_REF, pad))
        nodes = nets.get(name, []) if name else []
        if rule == "open":
            if _connected(name, nodes):
                out.append(Finding("strapping", MODULE_REF, _at(g),
                                   f"strapping GPIO{g} must stay open, it is on net {name}"))
            continue
        pullups = [r for r, _p in nodes if r.startswith("R")
                   and {pad_net.get((r, "1")), pad_net.get((r, "2"))} == {name, "+3V3"}]
        if not pullups:
            out.append(Finding("strapping", MODULE_REF, _at(g),
                               f"strapping GPIO{g} needs a {rule}; net {name} has none"))

    # module GPIOs the pin map does not know must stay unconnected
    for pad, g in sorted(GPIO_OF_PAD.items(), key=lambda kv: kv[1]):
        if g in mapped or g in STRAP_RULES:
            continue
        name = pad_net.get((MODULE_REF, pad))
        if not _connected(name, nets.get(name, [])):
            continue
        if g in pm.FLASH_PSRAM_GPIOS:
            out.append(Finding("flash-psram", MODULE_REF, _at(g),
                               f"GPIO{g} belongs to the module's flash/PSRAM but is on net "
                               f"{name}"))
        else:
            out.append(Finding("unmapped-gpio", MODULE_REF, _at(g),
                               f"GPIO{g} is on net {name} but not in the pin map"))
    return out


def _camera_connector(nets) -> str | None:
    """The part on most camera nets besides the module: the FPC connector."""
    count: dict[str, int] = {}
    for sig in FPC_PIN:
        for r, _p in nets.get(sig, []):
            if r != MODULE_REF:
                count[r] = count.get(r, 0) + 1
    return max(sorted(count), key=count.get) if count else None


def check(pm, net: Netlist) -> list[Finding]:
    """Every pin rule: on the map alone, then against the netlist."""
    return check_pinmap(pm) + check_netlist(pm, net)
