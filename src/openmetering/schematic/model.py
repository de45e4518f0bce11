"""The circuit as the schematic generator sees it: sheets, symbols, pins and nets.

Built from a SKiDL circuit (`from_skidl`) or directly (tests build small synthetic designs).
Each part's pins and their electrical types come from the KiCad library symbol, so the
placement rules work from what the symbol says (power_in, power_out, passive...), never
from today's references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DesignError
from . import library
from .library import LibPin, LibSymbol

POWER_TYPES = ("power_in", "power_out")
GROUND = re.compile(r"^(A|D|P|S)?(GND|VSS|0V|COM)\w*$|^Earth", re.I)


@dataclass(eq=False)
class Pin:
    part: Part
    lib: LibPin
    net: Net | None = None  # None: no connection (drawn with a no-connect flag)

    @property
    def number(self) -> str:
        return self.lib.number

    @property
    def name(self) -> str:
        return self.lib.name

    @property
    def etype(self) -> str:
        return self.lib.etype

    def __repr__(self):
        return f"{self.part.ref}.{self.number}"


@dataclass(eq=False)
class Part:
    ref: str
    libsym: LibSymbol
    value: str
    footprint: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    sheet: str = ""  # "" = the top sheet
    pins: list[Pin] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return re.match(r"#?[A-Za-z_]*", self.ref).group(0)

    @property
    def flag(self) -> bool:
        """A PWR_FLAG-like symbol: schematic-only statement that a net is driven."""
        return self.libsym.power and self.ref.startswith("#")

    def __repr__(self):
        return self.ref


@dataclass(eq=False)
class Net:
    name: str
    pins: list[Pin] = field(default_factory=list)
    rail: bool = False  # drawn with power symbols (a supply or ground rail)

    @property
    def ground(self) -> bool:
        return bool(GROUND.match(self.name))

    def sheets(self) -> set[str]:
        return {p.part.sheet for p in self.pins if not p.part.flag}

    def __repr__(self):
        return self.name


@dataclass
class Design:
    name: str
    sheets: list[str]  # sub-sheet names, in the circuit's order ("" is the top sheet)
    parts: list[Part]
    nets: list[Net]
    notes: dict[str, str] = field(default_factory=dict)  # sheet -> what the block is and why

    def sheet_parts(self, sheet: str) -> list[Part]:
        return [p for p in self.parts if p.sheet == sheet and not p.flag]

    def flags(self) -> list[Part]:
        return [p for p in self.parts if p.flag]

    def net(self, name: str) -> Net:
        return next(n for n in self.nets if n.name == name)


# KiCad's way of naming a supply (+5V, +3V3, -12V, +5V_SNS): the circuit calls it a rail
# even where only passive pins sit on it (a boosted rail out of a diode, feeding headers)
POWER_NAME = re.compile(r"^[+-]\d")


def classify(design: Design) -> None:
    """Mark the rails: nets a symbol's power pin sits on (flags do not count: they say a net
    is driven, not that it is a supply), or named as KiCad names a supply."""
    for net in design.nets:
        net.rail = any(p.etype in POWER_TYPES and not p.part.flag for p in net.pins) or \
            bool(POWER_NAME.match(net.name))


def check_names(design: Design) -> None:
    bad = [n for n in design.nets if not n.name or "$" in n.name or n.name.startswith("Net-")]
    if bad:
        where = "; ".join(f"{n.name or '?'}: " + ", ".join(map(repr, n.pins)) for n in bad)
        raise DesignError("every net needs a name in the circuit (a schematic reader cannot "
                          f"tell what an auto-named net is for): {where}")


def make_part(ref: str, lib: str, symbol: str, value: str, *, footprint: str = "",
              fields: dict | None = None, sheet: str = "") -> Part:
    sym = library.load(lib, symbol)
    part = Part(ref=ref, libsym=sym, value=value, footprint=footprint,
                fields=dict(fields or {}), sheet=sheet)
    part.pins = [Pin(part, lp) for lp in sym.pins]
    return part


def build(name: str, parts: list[Part], connections: dict[str, list[tuple[str, str]]],
          sheets: list[str] | None = None, notes: dict[str, str] | None = None) -> Design:
    """A design from parts and {net name: [(ref, pin number)]}; unlisted pins are NC."""
    by_ref = {p.ref: p for p in parts}
    nets = []
    for net_name, nodes in connections.items():
        net = Net(net_name)
        for ref, num in nodes:
            matches = [pin for pin in by_ref[ref].pins if pin.number == str(num)]
            if not matches:
                raise DesignError(f"{ref} has no pin {num}")
            for pin in matches:
                pin.net = net
                net.pins.append(pin)
        nets.append(net)
    order = sheets if sheets is not None else sorted({p.sheet for p in parts if p.sheet})
    design = Design(name=name, sheets=order, parts=parts, nets=nets, notes=dict(notes or {}))
    check_names(design)
    classify(design)
    return design


def from_skidl(circuit, name: str) -> Design:
    """The design of a SKiDL circuit. A nested subcircuit is drawn on its top-level block's
    sheet (one sheet per function block)."""
    parts: list[Part] = []
    connections: dict[str, list[tuple[str, str]]] = {}
    sheets: list[str] = []
    notes: dict[str, str] = {}
    # the symbol library files are where SKiDL found them (its search path, which the
    # circuit stage sets: KiCad's folder, the project's own library)
    import skidl

    folders = [Path(d) for d in skidl.lib_search_paths.get(skidl.KICAD9, [])]
    seen_libs: set[str] = set()
    for sp in circuit.parts:
        hier = [h for h in getattr(sp, "hiertuple", ("",)) if h]
        sheet = hier[0] if hier else ""
        if sheet and sheet not in sheets:
            sheets.append(sheet)
            doc = _block_doc(getattr(sp, "node", None))
            if doc:
                notes[sheet] = doc
        lib = Path(str(sp.lib.filename if hasattr(sp.lib, "filename") else sp.lib)).name
        lib = lib.removesuffix(".kicad_sym")
        if lib not in seen_libs:
            seen_libs.add(lib)
            found = [d / f"{lib}.kicad_sym" for d in folders if (d / f"{lib}.kicad_sym").is_file()]
            if found:
                library.use_library_file(lib, found[0])
        fields = {k: str(v) for k, v in sp.fields.items()}
        part = make_part(sp.ref, lib, sp.name, str(sp.value), footprint=sp.footprint or "",
                         fields=fields, sheet=sheet)
        known = {p.number for p in part.pins}
        for spin in sp.pins:
            if str(spin.num) not in known:
                raise DesignError(f"{sp.ref}: pin {spin.num} is not in {lib}:{sp.name}")
            net = spin.net
            if net is None or not net.name or net.name.startswith("__NOCONNECT"):
                continue
            connections.setdefault(net.name, []).append((sp.ref, str(spin.num)))
        parts.append(part)
    for nodes in connections.values():
        nodes.sort()
    return build(name, parts, dict(sorted(connections.items())), sheets, notes)


def _block_doc(node) -> str:
    """The docstring of the subcircuit function a part was made in (its top-level block):
    the sheet shows it as the block's notes."""
    import inspect

    while node is not None and getattr(node, "parent", None) is not None and \
            getattr(node.parent, "parent", None) is not None:
        node = node.parent
    func = getattr(node, "func", None)
    return inspect.cleandoc(func.__doc__) if func is not None and func.__doc__ else ""
