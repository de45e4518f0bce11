"""Shared helpers of the circuit: parts from the catalogue, pins by name, the pin map.

The circuit does not import the tool that builds it. The tool calls `top.build(design)`, and
`design` brings the parts catalogue, the firmware pin map and the error type to raise (see
`openmetering.circuit.Design`); `use` keeps it for the helpers below.
"""

from __future__ import annotations

import skidl

_design = None


def use(design) -> None:
    global _design
    _design = design


def _bound():
    if _design is None:
        raise RuntimeError("the circuit is built through top.build(design)")
    return _design


def pinmap():
    """The firmware pin map (PINS: signal -> (GPIO, kind))."""
    return _bound().pinmap


def part(key: str, ref: str, fields: dict | None = None, **pins_to_nets) -> skidl.Part:
    """Instantiate catalogue part `key` as `ref`. Fields carry the catalogue identity to the
    netlist, so the board, BOM and fab stages can trace each footprint back to its entry."""
    design = _bound()
    entry = design.catalog[key]
    if not entry.on_board:
        raise design.error(f"{ref}: catalogue part '{key}' is an off-board {entry.assembly}")
    try:
        p = skidl.Part(entry.lib, entry.symbol, footprint=entry.footprint, value=entry.value,
                       ref=ref, tag=ref)
    except Exception as e:  # SKiDL raises bare exceptions for missing symbols
        raise design.error(f"{ref}: cannot load symbol {entry.lib}:{entry.symbol} "
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
        raise _bound().error(f"{p.ref}: cannot connect pin '{pin}' ({e}); pins: "
                             f"{', '.join(names)}") from None


def gpio_pin(module: skidl.Part, signal: str) -> skidl.Pin:
    """The module pin carrying pin-map signal `signal` (e.g. ADC_V -> IO1)."""
    pm = pinmap()
    try:
        gpio, _kind = pm.PINS[signal]
    except KeyError:
        raise _bound().error(f"signal '{signal}' is not in firmware/pinmap.py") from None
    return module[pm.symbol_pin(gpio)]
