"""Sheets -> KiCad 9 .kicad_sch text, byte for byte the same for the same drawing.

Every uuid is a name-based (version 5) uuid of what the item is (a symbol: its sheet and
reference; a wire: its sheet and index), so a rebuild writes the same file and the board's
footprint links (sheet uuid / symbol uuid) stay put while references do.
"""

from __future__ import annotations

import uuid

from .. import sexpr
from ..sexpr import Q
from .drawing import TEXT, Sheet, SymbolItem

KICAD_SCH_VERSION = "20250114"
NAMESPACE = uuid.UUID("6f6d642d-7363-6865-6d61-746963000001")  # fixed: uuids must not move

PAPER = {"A5": (210.0, 148.0), "A4": (297.0, 210.0), "A3": (420.0, 297.0)}


def uid(*parts: str) -> Q:
    return Q(str(uuid.uuid5(NAMESPACE, "/".join(parts))))


def _font(hide: bool = False, justify: str | None = None) -> list:
    eff = ["effects", ["font", ["size", TEXT, TEXT]]]
    if justify:
        eff.append(["justify", *justify.split()])
    if hide:
        eff.append(["hide", "yes"])
    return eff


def _prop(name: str, value: str, x: float, y: float, angle: int = 0, hide: bool = False,
          justify: str | None = None) -> list:
    return ["property", Q(name), Q(value), ["at", x, y, angle], _font(hide, justify)]


def _symbol(s: SymbolItem, sheet_key: str, instance_path: str, project: str) -> list:
    rotated = s.t.rot in (90, 270)
    node = ["symbol", ["lib_id", Q(s.libsym.lib_id)], ["at", s.t.x, s.t.y, s.t.rot]]
    if s.t.mirror_y:
        node.append(["mirror", "y"])
    node += [["unit", s.unit], ["exclude_from_sim", "no"],
             ["in_bom", "yes" if s.in_bom else "no"], ["on_board", "yes" if s.on_board else "no"],
             ["dnp", "no"], ["uuid", uid(sheet_key, "symbol", s.key or s.ref, str(s.unit))]]
    for f in (s.ref_field, s.value_field):
        # Eeschema turns a field's text with a quarter-turned symbol: say 90 to read level
        angle = 90 if rotated != f.vertical else 0
        node.append(_prop(f.name, f.text, f.x, f.y, angle, hide=f.hidden or not f.text))
    x, y = s.t.x, s.t.y
    node.append(_prop("Footprint", s.footprint, x, y, hide=True))
    lib_props = {str(p[1]): str(p[2]) for p in sexpr.children(s.libsym.tree, "property")}
    node.append(_prop("Datasheet", lib_props.get("Datasheet", ""), x, y, hide=True))
    node.append(_prop("Description", lib_props.get("Description", ""), x, y, hide=True))
    for k, v in s.extra.items():
        node.append(_prop(k, v, x, y, hide=True))
    for p in s.pins:
        node.append(["pin", Q(p.number), ["uuid", uid(sheet_key, "pin", s.key or s.ref, p.number)]])
    node.append(["instances", ["project", Q(project),
                               ["path", Q(instance_path), ["reference", Q(s.ref)],
                                ["unit", s.unit]]]])
    return node


def render(sheet: Sheet, *, project: str, root_uuid: str, sheet_uuid: str | None,
           page_of: dict[str, tuple[str, str]] | None = None) -> str:
    """The .kicad_sch text of `sheet`. `sheet_uuid` is the uuid of the sheet box that holds
    it on the top sheet (None for the top sheet itself); page_of maps a sub-sheet's name to
    (its sheet box uuid, page number) for the top sheet's boxes."""
    key = sheet.name or "/"
    own_uuid = Q(root_uuid) if sheet_uuid is None else uid("sheet-file", sheet.name)
    tree = ["kicad_sch", ["version", KICAD_SCH_VERSION], ["generator", Q("openmetering")],
            ["generator_version", Q("1")], ["uuid", own_uuid], ["paper", Q(sheet.paper)],
            ["title_block", ["title", Q(sheet.title)], ["date", Q("")],
             ["company", Q("Open Metering Device")],
             ["comment", 1, Q("Drawn by openmetering.schematic from the SKiDL circuit "
                              "(hardware/skidl)")]]]
    libs = {}
    for s in sheet.symbols:
        libs.setdefault(s.libsym.lib_id, s.libsym.tree)
    tree.append(["lib_symbols", *[libs[k] for k in sorted(libs)]])

    for i, j in enumerate(sheet.junctions):
        tree.append(["junction", ["at", j.x, j.y], ["diameter", 0], ["color", 0, 0, 0, 0],
                     ["uuid", uid(key, "junction", str(i))]])
    for i, n in enumerate(sheet.no_connects):
        tree.append(["no_connect", ["at", n.x, n.y], ["uuid", uid(key, "nc", str(i))]])
    for i, w in enumerate(sheet.wires):
        tree.append(["wire", ["pts", ["xy", *w.a], ["xy", *w.b]],
                     ["stroke", ["width", 0], ["type", "default"]],
                     ["uuid", uid(key, "wire", str(i))]])
    for i, lb in enumerate(sheet.labels):
        just = {"right": "left", "up": "left", "left": "right", "down": "right"}[lb.dir]
        if lb.kind == "local":
            tree.append(["label", Q(lb.text), ["at", lb.x, lb.y, lb.angle],
                         _font(justify=f"{just} bottom"), ["uuid", uid(key, "label", str(i))]])
        else:
            head = "hierarchical_label" if lb.kind == "hier" else "global_label"
            node = [head, Q(lb.text), ["shape", lb.shape], ["at", lb.x, lb.y, lb.angle]]
            node += [_font(justify=just), ["uuid", uid(key, "label", str(i))]]
            tree.append(node)
    for i, (text, x, y) in enumerate(sheet.texts):
        tree.append(["text", Q(text), ["exclude_from_sim", "no"], ["at", x, y, 0],
                     _font(justify="left"), ["uuid", uid(key, "text", str(i))]])

    instance_path = "/" + root_uuid + ("" if sheet_uuid is None else "/" + sheet_uuid)
    for s in sheet.symbols:
        tree.append(_symbol(s, key, instance_path, project))

    for b in sheet.boxes:
        box_uuid, page = (page_of or {})[b.name]
        node = ["sheet", ["at", b.x, b.y], ["size", b.w, b.h], ["exclude_from_sim", "no"],
                ["in_bom", "yes"], ["on_board", "yes"], ["dnp", "no"],
                ["stroke", ["width", 0.1524], ["type", "solid"]],
                ["fill", ["color", 0, 0, 0, 0.0]], ["uuid", Q(box_uuid)],
                _prop("Sheetname", b.name, b.x, b.y - 0.5, justify="left bottom"),
                _prop("Sheetfile", b.file, b.x, b.y + b.h + 0.5, justify="left top")]
        for p in b.pins:
            angle, just = {"left": (180, "left"), "right": (0, "right"),
                           "top": (90, "right"), "bottom": (270, "left")}[p.side]
            node.append(["pin", Q(p.name), p.shape, ["at", p.x, p.y, angle],
                         ["uuid", uid("/", "sheetpin", b.name, p.name)], _font(justify=just)])
        node.append(["instances", ["project", Q(project),
                                   ["path", Q("/" + root_uuid), ["page", Q(page)]]]])
        tree.append(node)
    if sheet_uuid is None:
        tree.append(["sheet_instances", ["path", Q("/"), ["page", Q("1")]]])
    tree.append(["embedded_fonts", "no"])
    return sexpr.dump(tree) + "\n"
