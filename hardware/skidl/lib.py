"""Shared helpers of the circuit: SKiDL set-up, parts from the catalogue, the pin map."""

from __future__ import annotations

import importlib.util

import skidl
from openmetering import parts as catalogue  # also sets SKiDL's KiCad 9 library paths
from openmetering.errors import DesignError
from openmetering.paths import PINMAP

skidl.set_default_tool(skidl.KICAD9)

CATALOG = catalogue.load()


def load_pinmap(path=PINMAP):
    spec = importlib.util.spec_from_file_location("omd_pinmap", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PINMAP_MODULE = load_pinmap()


def part(key: str, ref: str, fields: dict | None = None, **pins_to_nets) -> skidl.Part:
    """Instantiate catalogue part `key` as `ref`. Fields carry the catalogue identity to the
    netlist, so the board, BOM and fab stages can trace each footprint back to its entry."""
    entry = CATALOG[key]
    if not entry.on_board:
        raise DesignError(f"{ref}: catalogue part '{key}' is an off-board {entry.assembly}")
    try:
        p = skidl.Part(entry.lib, entry.symbol, footprint=entry.footprint, value=entry.value,
                       ref=ref, tag=ref)
    except Exception as e:  # SKiDL raises bare exceptions for missing symbols
        raise DesignError(f"{ref}: cannot load symbol {entry.lib}:{entry.symbol} "
                          f"for catalogue part '{key}': {e}") from None
    p.fields["PartID"] = key
    p.fields["MPN"] = entry.mpn
    p.fields["Manufacturer"] = entry.manufacturer
    if entry.lcsc:
        p.fields["LCSC"] = entry.lcsc
    for name, value in (fields or {}).items():
        p.fields[name] = value
    for pin, net in pins_to_nets.items():
        connect(p, pin, net)
    return p


def connect(p: skidl.Part, pin, net) -> None:
    """Connect pin (number or name) of p to net, with an error that names part and pin."""
    try:
        p[pin] += net
    except Exception as e:
        names = sorted({str(x.name) for x in p.pins})
        raise DesignError(f"{p.ref}: cannot connect pin '{pin}' ({e}); pins: {', '.join(names)}") \
            from None


def gpio_pin(module: skidl.Part, signal: str) -> skidl.Pin:
    """The module pin carrying pin-map signal `signal` (e.g. ADC_V -> IO1)."""
    try:
        gpio, _kind = PINMAP_MODULE.PINS[signal]
    except KeyError:
        raise DesignError(f"signal '{signal}' is not in firmware/pinmap.py") from None
    name = {19: "USB_D-", 20: "USB_D+", 43: "TXD0", 44: "RXD0"}.get(gpio, f"IO{gpio}")
    return module[name]
