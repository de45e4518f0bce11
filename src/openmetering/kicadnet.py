"""Reader for KiCad s-expression netlists (`kicad-cli sch export netlist --format kicadsexpr`
or SKiDL's `generate_netlist`), reduced to what the board needs: parts and pad-to-net."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def parse_sexpr(text: str):
    """Parse one s-expression into nested lists of str (quoted and bare atoms alike)."""
    stack: list[list] = [[]]
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"bad s-expression at offset {pos}")
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            done = stack.pop()
            stack[-1].append(done)
        elif m.group(3) is not None:
            stack[-1].append(m.group(3).replace('\\"', '"').replace("\\\\", "\\"))
        elif m.group(4) is not None:
            stack[-1].append(m.group(4))
    if len(stack) != 1 or not stack[0]:
        raise ValueError("unbalanced s-expression")
    return stack[0][0]


def _children(node, name):
    return [c for c in node[1:] if isinstance(c, list) and c and c[0] == name]


def _child(node, name):
    found = _children(node, name)
    return found[0] if found else None


def _value(node, name, default=""):
    c = _child(node, name)
    return c[1] if c is not None and len(c) > 1 and isinstance(c[1], str) else default


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
    nets: dict[str, list[tuple[str, str]]]  # net name -> [(ref, pad number)]
    digest: str  # sha256 of the connectivity content (dates and paths excluded)

    def pad_nets(self) -> dict[tuple[str, str], str]:
        out = {}
        for name, nodes in self.nets.items():
            for ref, pin in nodes:
                out[(ref, pin)] = name
        return out


def read_netlist(path: str | Path) -> Netlist:
    tree = parse_sexpr(Path(path).read_text(encoding="utf-8"))
    parts: dict[str, Part] = {}
    comps = _child(tree, "components")
    for comp in _children(comps, "comp") if comps else []:
        ref = _value(comp, "ref")
        fields: dict[str, str] = {}
        flds = _child(comp, "fields")
        for f in _children(flds, "field") if flds else []:
            name = _value(f, "name")
            text = next((x for x in f[1:] if isinstance(x, str)), "")
            fields[name] = text
        for prop in _children(comp, "property"):
            name = _value(prop, "name")
            if name and name not in fields:
                fields[name] = _value(prop, "value")
        tstamps = _child(comp, "tstamps")
        stamp = tstamps[1] if tstamps is not None and len(tstamps) > 1 else ""
        sheet = _child(comp, "sheetpath")
        sheet_stamps = _value(sheet, "tstamps", "/") if sheet is not None else "/"
        parts[ref] = Part(
            ref=ref,
            value=_value(comp, "value"),
            footprint=_value(comp, "footprint"),
            fields=fields,
            sheet_uuid_path=(sheet_stamps + stamp) if stamp else "",
        )
    nets: dict[str, list[tuple[str, str]]] = {}
    netsnode = _child(tree, "nets")
    for net in _children(netsnode, "net") if netsnode else []:
        name = _value(net, "name")
        nodes = [(_value(nd, "ref"), _value(nd, "pin")) for nd in _children(net, "node")]
        nets[name] = sorted(nodes)
    h = hashlib.sha256()
    for ref in sorted(parts):
        p = parts[ref]
        h.update(repr((p.ref, p.value, p.footprint, sorted(p.fields.items()))).encode())
    for name in sorted(nets):
        h.update(repr((name, nets[name])).encode())
    return Netlist(parts=parts, nets=nets, digest=h.hexdigest())
