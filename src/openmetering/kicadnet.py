"""Reader for KiCad netlists (`kicad-cli sch export netlist --format kicadsexpr`, or SKiDL's
`generate_netlist`): parts with their fields, pad-to-net, and the pin functions of pads."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import sexpr
from .errors import DesignError, MissingInput


def ref_key(ref: str):
    """Designator order: R2 before R10, letters first (sorts "#FLG01" and "TP1" too)."""
    m = re.match(r"([A-Za-z_#]+)(\d*)", ref)
    return (m.group(1), int(m.group(2) or 0), ref) if m else (ref, 0, ref)


@dataclass
class Part:
    ref: str
    value: str
    footprint: str  # "Lib:Name"
    fields: dict[str, str] = field(default_factory=dict)
    sheet_uuid_path: str = ""  # "/<sheet uuids>/<symbol uuid>", for schematic parity


@dataclass
class Netlist:
    parts: dict[str, Part]
    nets: dict[str, list[tuple[str, str]]]  # net name -> [(ref, pad number)], sorted
    digest: str  # sha256 of the connectivity content (dates and paths excluded)
    pin_functions: dict[tuple[str, str], str] = field(default_factory=dict)  # (ref, pad) -> name

    def pad_nets(self) -> dict[tuple[str, str], str]:
        out = {}
        for name, nodes in self.nets.items():
            for ref, pin in nodes:
                out[(ref, pin)] = name
        return out

    def signal_nets(self) -> dict[str, list[tuple[str, str]]]:
        """Nets by the design's own name: KiCad names a net local to a sheet by its path
        (/mcu/BOOT), the circuit by the last component, which must stay unique."""
        out: dict[str, list[tuple[str, str]]] = {}
        for name, nodes in self.nets.items():
            bare = name.rsplit("/", 1)[-1]
            if bare in out:
                raise DesignError(f"two nets named '{bare}' in different sheets")
            out[bare] = nodes
        return out

    def pin_function(self, ref: str, pin: str) -> str:
        return self.pin_functions.get((ref, pin), "")


def read_netlist(path: str | Path) -> Netlist:
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"{path}: netlist missing; run the circuit stage first (make circuit)")
    tree = sexpr.parse(path.read_text(encoding="utf-8"), source=str(path))
    parts: dict[str, Part] = {}
    comps = sexpr.child(tree, "components")
    for comp in sexpr.children(comps, "comp") if comps else []:
        ref = sexpr.value(comp, "ref")
        fields: dict[str, str] = {}
        flds = sexpr.child(comp, "fields")
        for f in sexpr.children(flds, "field") if flds else []:
            name = sexpr.value(f, "name")
            text = next((x for x in f[1:] if isinstance(x, str)), "")
            fields[name] = text
        for prop in sexpr.children(comp, "property"):
            name = sexpr.value(prop, "name")
            if name and name not in fields:
                fields[name] = sexpr.value(prop, "value")
        tstamps = sexpr.child(comp, "tstamps")
        stamp = tstamps[1] if tstamps is not None and len(tstamps) > 1 else ""
        sheet = sexpr.child(comp, "sheetpath")
        sheet_stamps = sexpr.value(sheet, "tstamps", "/") if sheet is not None else "/"
        parts[ref] = Part(
            ref=ref,
            value=sexpr.value(comp, "value"),
            footprint=sexpr.value(comp, "footprint"),
            fields=fields,
            sheet_uuid_path=(sheet_stamps + stamp) if stamp else "",
        )
    nets: dict[str, list[tuple[str, str]]] = {}
    functions: dict[tuple[str, str], str] = {}
    netsnode = sexpr.child(tree, "nets")
    for net in sexpr.children(netsnode, "net") if netsnode else []:
        name = sexpr.value(net, "name")
        nodes = []
        for nd in sexpr.children(net, "node"):
            key = (sexpr.value(nd, "ref"), sexpr.value(nd, "pin"))
            nodes.append(key)
            functions[key] = sexpr.value(nd, "pinfunction")
        nets[name] = sorted(nodes)
    h = hashlib.sha256()
    for ref in sorted(parts):
        p = parts[ref]
        h.update(repr((p.ref, p.value, p.footprint, sorted(p.fields.items()))).encode())
    for name in sorted(nets):
        h.update(repr((name, nets[name])).encode())
    return Netlist(parts=parts, nets=nets, digest=h.hexdigest(), pin_functions=functions)
