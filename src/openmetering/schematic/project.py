"""The whole schematic: one sheet per function block, and a top sheet that shows them as a
block diagram, power flowing along the top and signals between the blocks."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..errors import DesignError
from . import layout as L
from .drawing import Sheet
from .geometry import GRID, Rect, r4, snap
from .model import Design, Net, Part, Pin
from .writer import PAPER

STEP = L.STEP
FRAME = 12.0  # KiCad's default page layout: border and reference band
TITLE_BLOCK = (110.0, 34.0)  # its title block, from the frame's bottom-right corner
MARGIN = 2 * STEP  # kept clear inside the frame
FILL_TARGET = 0.40
PAPERS = ("A5", "A4", "A3")


@dataclass
class Plan:
    """Who talks to whom: the block diagram the sheets are drawn for."""

    hub: str | None
    side: dict[str, str]  # sheet -> "left"/"right" of the hub ("" for the hub)
    ports: dict[str, dict[str, str]]  # sheet -> {net: label shape}
    rail_ports: dict[str, list[tuple[str, str]]]  # sheet -> [(rail, shape)]
    producers: dict[str, set[str]]  # rail -> sheets that produce it
    flag_sheet: dict[str, str] = field(default_factory=dict)  # flag ref -> sheet


def _shape(pins) -> str:
    types = {p.etype for p in pins}
    if types & {"output", "power_out", "open_collector", "open_emitter"}:
        return "output"
    if "bidirectional" in types or "tri_state" in types:
        return "bidirectional"
    if types & {"input", "power_in"}:
        return "input"
    return "passive"


def producers_of(design: Design, net: Net) -> set[str]:
    """Sheets that produce a rail: a power output on it, or else a path from one of the
    sheet's connectors through its parts (a fuse, a diode, a FET) onto the rail."""
    out = {p.part.sheet for p in net.pins if p.etype == "power_out" and not p.part.flag}
    if out:
        return out
    for sheet in design.sheets:
        parts = design.sheet_parts(sheet)
        conns = [p for p in parts if L.is_connector(p)]
        seen_nets: set[str] = set()
        frontier = [pin.net for c in conns for pin in c.pins
                    if pin.net is not None and not pin.net.rail]
        reached = False
        names = {p.ref for p in parts}
        while frontier and not reached:
            nxt = []
            for n in frontier:
                if n.name in seen_nets:
                    continue
                seen_nets.add(n.name)
                for pin in n.pins:
                    if pin.part.ref not in names or L.is_connector(pin.part):
                        continue
                    for other in pin.part.pins:
                        if other.net is None or other.net is n:
                            continue
                        if other.net is net:
                            reached = True
                        elif not other.net.rail:
                            nxt.append(other.net)
            frontier = nxt
        if reached:
            out.add(sheet)
    return out


def plan(design: Design) -> Plan:
    sheets = design.sheets
    signal_nets = [n for n in design.nets if not n.rail and len(n.sheets() - {""}) > 1]
    count = {s: sum(1 for n in signal_nets if s in n.sheets()) for s in sheets}
    hub = max(sheets, key=lambda s: (count[s], -sheets.index(s))) if sheets else None
    if hub is not None and count[hub] == 0:
        hub = None
    side: dict[str, str] = {}
    hub_parts = {p.ref: p for p in design.sheet_parts(hub)} if hub else {}
    for s in sheets:
        if s == hub:
            side[s] = ""
            continue
        votes = 0
        for n in signal_nets:
            if s in n.sheets() and hub in n.sheets():
                for p in n.pins:
                    if p.part.ref in hub_parts:
                        votes += -1 if p.lib.outward[0] < 0 else 1
        side[s] = "right" if votes > 0 else "left" if votes < 0 else "?"
    # a block the hub does not talk to stands on the side of the block it talks to most (the
    # front ends of a metering chip beside the chip), so its lines need not cross the hub
    for _ in sheets:
        for s in [s for s in sheets if side[s] == "?"]:
            talk: dict[str, int] = {}
            for n in signal_nets:
                if s in n.sheets():
                    for o in n.sheets() - {s, "", hub}:
                        if side.get(o) in ("left", "right"):
                            talk[side[o]] = talk.get(side[o], 0) + 1
            if talk:
                side[s] = max(sorted(talk), key=talk.get)
    side = {s: "left" if v == "?" else v for s, v in side.items()}
    ports: dict[str, dict[str, str]] = {s: {} for s in sheets}
    for n in signal_nets:
        for s in n.sheets():
            if s:
                ports[s][n.name] = _shape([p for p in n.pins if p.part.sheet == s])
    rails = [n for n in design.nets if n.rail and not n.ground and len(n.sheets() - {""}) > 1]
    producers = {n.name: producers_of(design, n) for n in rails}
    rail_ports: dict[str, list[tuple[str, str]]] = {s: [] for s in sheets}
    for n in rails:
        for s in sorted(n.sheets() - {""}, key=sheets.index):
            rail_ports[s].append((n.name, "output" if s in producers[n.name] else "input"))
    # a power flag is drawn where its power comes from: the block producing its rail (for a
    # ground, the first block producing any rail), else the first block the net is on
    flag_sheet = {}
    sources = [s for s in sheets if any(s in p for p in producers.values())]
    for f in design.flags():
        net = f.pins[0].net
        if net is None:
            raise DesignError(f"{f.ref}: a power flag on no net")
        where = [s for s in sheets if s in net.sheets()]
        prods = [s for s in sheets if s in producers.get(net.name, ())]
        if not prods and net.ground:
            prods = [s for s in sources if s in where]
        flag_sheet[f.ref] = (prods or where or [""])[0]
    return Plan(hub, side, ports, rail_ports, producers, flag_sheet)


# --- paper -------------------------------------------------------------------------------------
def drawable(paper: str) -> tuple[Rect, Rect]:
    w, h = PAPER[paper]
    frame = Rect(FRAME, FRAME, w - FRAME, h - FRAME)
    tb = Rect(w - FRAME - TITLE_BLOCK[0] + 2, h - FRAME - TITLE_BLOCK[1] + 2, w - FRAME, h - FRAME)
    return frame, tb


def drawable_area(paper: str) -> float:
    frame, tb = drawable(paper)
    return frame.area - tb.area


def item_rects(sheet: Sheet) -> list[Rect]:
    rects = []
    for s in sheet.symbols:
        rects += [s.body()] + s.pin_rects() + s.field_rects() + s.pin_text_rects()
    rects += [w.rect() for w in sheet.wires] + [lb.rect() for lb in sheet.labels]
    for b in sheet.boxes:
        rects += [b.rect(), b.name_rect(), b.file_rect()] + [p.rect() for p in b.pins]
    from .font import ink_box

    rects += [Rect(*ink_box(t, x, y, 1.27, "left")) for t, x, y in sheet.texts]
    return rects


def fit(sheet: Sheet, paper: str) -> tuple[float, float] | None:
    """Offset that puts the drawing on `paper` clear of the frame and title block, centred
    in the space above the title block when it fits there, else beside it."""
    ext = sheet.extent()
    frame, tb = drawable(paper)
    inner = frame.grow(-MARGIN)
    if ext.w > inner.w or ext.h > inner.h:
        return None
    rects = item_rects(sheet)
    above = Rect(inner.x0, inner.y0, inner.x1, tb.y0 - MARGIN)
    if ext.h <= above.h:
        dx = above.cx - ext.cx
        dy = above.cy - ext.cy
        return snap(dx, STEP), snap(dy, STEP)
    # taller: top-aligned, as far left as needed to stay off the title block
    dy = inner.y0 - ext.y0
    for dx in (inner.cx - ext.cx, inner.x0 - ext.x0):
        dx, dyy = snap(dx, STEP), snap(dy, STEP)
        if all(not r.move(dx, dyy).hits(tb.grow(MARGIN)) and
               inner.grow(0.01).x0 <= r.move(dx, dyy).x0 and r.move(dx, dyy).x1 <= inner.x1 + 0.01 and
               r.move(dx, dyy).y1 <= inner.y1 + 0.01 for r in rects):
            return dx, dyy
    return None


def place_on_paper(sheet: Sheet) -> None:
    for paper in PAPERS:
        off = fit(sheet, paper)
        if off is not None:
            sheet.paper = paper
            sheet.move(*off)
            return
    ext = sheet.extent()
    raise DesignError(f"sheet {sheet.name or '/'}: the drawing ({ext.w:.0f} x {ext.h:.0f} mm) does "
                      "not fit an A3 sheet at a readable scale; split the block into "
                      "smaller subcircuits")


def fill(sheet: Sheet) -> float:
    ext = sheet.extent()
    frame, tb = drawable(sheet.paper)
    covered = ext.area
    ov = Rect(max(ext.x0, tb.x0), max(ext.y0, tb.y0), min(ext.x1, tb.x1), min(ext.y1, tb.y1))
    if ov.w > 0 and ov.h > 0:
        covered -= ov.area
    return covered / drawable_area(sheet.paper)


NOTE_WIDTH = 72  # characters a line of a block's notes is wrapped at
NOTE_PITCH = 2 * GRID  # between lines


def with_notes(sheet: Sheet, text: str, where: str, width: int = NOTE_WIDTH) -> Sheet:
    """A copy of the sheet with the block's notes (its docstring) below or beside it."""
    import textwrap

    # only the texts change: the drawing's items are shared (the candidates are measured
    # on deep copies, and only the chosen one is moved onto its paper)
    out = copy.copy(sheet)
    out.texts = list(sheet.texts)
    if not text or where == "none":
        return out
    lines = []
    for para in text.split("\n\n"):
        lines += textwrap.wrap(" ".join(para.split()), width) + [""]
    lines = lines[:-1]
    ext = out.extent()
    if where == "below":
        x, y = ext.x0, ext.y1 + 3 * STEP
    else:
        x, y = ext.x1 + 4 * STEP, ext.y0 + STEP
    x, y = snap(x, GRID), snap(y, GRID)
    for i, line in enumerate(lines):
        if line:
            out.texts.append((line, x, r4(y + i * NOTE_PITCH)))
    return out


def smallest_paper(sheet: Sheet) -> str | None:
    return next((p for p in PAPERS if fit(sheet, p) is not None), None)


def draw_sheet(design: Design, name: str, parts: list[Part], plan_: Plan, rail_ports) -> Sheet:
    """Lay out a sheet on the smallest paper it fits at KiCad's scale, with the block's notes
    where they keep it smallest; groups are spread apart (up to twice their spacing) while
    the drawing fills less than FILL_TARGET of that paper (a block on A5 rather than a speck
    in the corner of an A4)."""
    # power enters a power source through its connectors: those read left to right
    source = any(name in sheets for sheets in plan_.producers.values())
    connector_side = "left" if source or plan_.side.get(name, "left") in ("left", "") else "right"
    ports = plan_.ports.get(name, {})
    notes = design.notes.get(name, "")
    best = None  # (paper index, -fill, sheet)
    tries = [(loose, spread) for loose in (1, 2, 3) for spread in (1.0, 1.5, 2.0)]
    lay = base = None
    for loose, spread in tries:
        if lay is None or lay.loose != loose:
            if best is not None and best[0][0] > 0:
                break  # drawing a bigger sheet looser does not help
            lay = L.SheetLayout(design, name, parts, ports, rail_ports, connector_side, loose)
            base = lay.run_blocks()
        arranged = L.arrange_blocks(lay, copy.deepcopy(base), spread)
        options = [("below", NOTE_WIDTH), ("right", NOTE_WIDTH), ("right", NOTE_WIDTH * 2 // 3),
                   ("below", NOTE_WIDTH * 2 // 3)] if notes else []
        for where, width in options + [("none", 0)]:
            sheet = with_notes(arranged, notes, where, width)
            paper = smallest_paper(sheet)
            if paper is None:
                continue
            f = fill(_placed(sheet, paper))
            # the smallest paper; then notes shown rather than left out; then the fuller
            score = (PAPERS.index(paper), where == "none", -f)
            if best is None or score < best[0]:
                best = (score, sheet)
        if best is not None and -best[0][2] >= FILL_TARGET:
            break
    if best is None:
        lay = L.SheetLayout(design, name, parts, ports, rail_ports, connector_side)
        sheet = L.arrange_blocks(lay, lay.run_blocks(), 1.0)
        place_on_paper(sheet)  # raises, naming the drawing's size
        return sheet
    sheet = best[1]
    place_on_paper(sheet)
    return sheet


def _placed(sheet: Sheet, paper: str) -> Sheet:
    s = copy.deepcopy(sheet)
    s.paper = paper
    s.move(*fit(s, paper))
    return s


# --- the whole project -----------------------------------------------------------------------
def sheet_file(project: str, sheet: str) -> str:
    return f"{project}_{sheet}.kicad_sch"


# --- drawing only what changed ---------------------------------------------------------------
# A sheet is drawn from its view of the design (sheet_view), and its file is a function of that
# view, the plan, its title, the number its power symbols start at and the drawing code: the
# key of all of them. A sheet whose key is the one recorded beside its file keeps the file, so a
# value changed on one block redraws that block alone. A forced build draws every sheet, so
# the check mode still proves the kept files equal a full drawing.
RECORD_VERSION = 1


def sheet_view(design: Design, name: str, own: set[str], nets_here: bool = False) -> Design:
    """The design as the drawing of sheet `name` sees it: the parts drawn on other sheets
    without their value, footprint and fields (the symbols and connectivity of the circuit,
    the words of this block alone). With `nets_here`, only the nets a part drawn here is on,
    and only the parts on them (a block's drawing reads nothing else; the top sheet's block
    diagram reads every net). `own` names the parts drawn here (its power flags included)."""
    keep = {n.name for n in design.nets
            if not nets_here or any(pin.part.ref in own for pin in n.pins)}
    nets = {n.name: Net(n.name, rail=n.rail) for n in design.nets if n.name in keep}
    parts, by_pin = [], {}
    for p in design.parts:
        if nets_here and p.ref not in own and \
                not any(pin.net is not None and pin.net.name in keep for pin in p.pins):
            continue
        mine = p.ref in own
        q = Part(p.ref, p.libsym, p.value if mine else "", p.footprint if mine else "",
                 dict(p.fields) if mine else {}, p.sheet)
        for pin in p.pins:
            net = nets.get(pin.net.name) if pin.net is not None else None
            q.pins.append(Pin(q, pin.lib, net))
            by_pin[id(pin)] = q.pins[-1]
        parts.append(q)
    for n in design.nets:
        if n.name in nets:
            nets[n.name].pins = [by_pin[id(pin)] for pin in n.pins]
    return Design(design.name, list(design.sheets), parts,
                  [nets[n.name] for n in design.nets if n.name in nets],
                  {name: design.notes[name]} if name in design.notes else {})


def plan_view(plan_: Plan, name: str) -> Plan:
    """What a block's drawing reads of the plan: its side, ports and rail ports, the rails
    it produces and its power flags."""
    return Plan(None, {name: plan_.side[name]} if name in plan_.side else {},
                {name: plan_.ports[name]} if name in plan_.ports else {},
                {name: plan_.rail_ports[name]} if name in plan_.rail_ports else {},
                {r: {name} for r, s in plan_.producers.items() if name in s},
                {f: s for f, s in plan_.flag_sheet.items() if s == name})


def _symbol_digest(sym) -> str:
    text = json.dumps(asdict(sym), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def sheet_key(view: Design, name: str, plan_: Plan, head: dict,
              symbols: dict[int, str] | None = None) -> str:
    """The digest of everything the file of sheet `name` is made from (see above); `head`
    holds the rest: project, title, first power number, code digest. `symbols` keeps the
    library symbols' digests (by id) from one sheet to the next."""
    symbols = {} if symbols is None else symbols
    for p in view.parts:
        if id(p.libsym) not in symbols:
            symbols[id(p.libsym)] = _symbol_digest(p.libsym)
    parts = [[p.ref, symbols[id(p.libsym)], p.value,
              p.footprint, sorted(p.fields.items()), p.sheet,
              [[pin.lib.number, pin.lib.unit, pin.net.name if pin.net else None]
               for pin in p.pins]] for p in view.parts]
    nets = [[n.name, n.rail, [[pin.part.ref, pin.lib.number] for pin in n.pins]]
            for n in view.nets]
    plan_facts = {k: sorted(v.items()) if isinstance(v, dict) else v
                  for k, v in asdict(plan_).items()}
    facts = {"version": RECORD_VERSION, "sheet": name, "design": view.name,
             "sheets": view.sheets, "notes": view.notes, "parts": parts, "nets": nets,
             "plan": plan_facts, **head}
    text = json.dumps(facts, sort_keys=True, default=lambda o: sorted(o) if isinstance(o, set)
                      else repr(o))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Drawn:
    """What the record beside the sheets says of one sheet file."""

    key: str  # sheet_key of what it was drawn from
    power_symbols: int  # how many #PWR numbers it takes
    text: str  # the file as it is now (held to the recorded digest by the caller)


def record_name(project: str) -> str:
    return f"{project}.sheets.json"


def _number_power(sheet: Sheet, first: int) -> int:
    """Number the sheet's power symbols from first + 1 on; returns how many it has."""
    n = first
    for sym in sheet.symbols:
        if sym.ref == "#PWR?":
            n += 1
            sym.ref = f"#PWR{n:03d}"
            sym.ref_field.text = sym.ref
    return n - first


def generate(design: Design, project: str, titles: dict[str, str] | None = None,
             kept: dict[str, Drawn] | None = None, code: str = "",
             log=None) -> dict[str, str]:
    """Every sheet of the design: {file name: .kicad_sch text}, and the record of what each
    sheet was drawn from ({project}.sheets.json). A sheet in `kept` (by file name) whose key
    is unchanged keeps its text instead of being drawn again; `code` is the digest of the drawing code."""
    from . import top as T
    from .writer import render, uid

    titles = titles or {}
    kept = kept or {}
    pl = plan(design)
    files = {name: sheet_file(project, name) for name in design.sheets}
    root_uuid = str(uid("root", project))
    page_of = {name: (str(uid("sheet", name)), str(i + 2)) for i, name in enumerate(design.sheets)}
    out, record, redrawn, symbols = {}, {}, [], {}

    def keep_or_draw(name: str, fname: str, own: list[str], head: dict, draw) -> int:
        """The sheet's text into out, kept or drawn (draw(view, plan, parts) -> Sheet);
        returns how many power numbers it takes."""
        view = sheet_view(design, name, set(own), nets_here=bool(name))
        plan_here = plan_view(pl, name) if name else pl
        key = sheet_key(view, name, plan_here, {"project": project, "code": code, **head}, symbols)
        old = kept.get(fname)
        if old is not None and old.key == key:
            text, count = old.text, old.power_symbols
        else:
            by_ref = {p.ref: p for p in view.parts}
            sh = draw(view, plan_here, [by_ref[r] for r in own])
            count = _number_power(sh, head["power_from"])
            sh.title = head["title"]
            text = render(sh, project=project, root_uuid=root_uuid,
                          sheet_uuid=page_of[name][0] if name else None,
                          page_of=None if name else page_of)
            redrawn.append(name or "top")
        out[fname] = text
        record[fname] = {"key": key, "power_symbols": count,
                         "sha256": hashlib.sha256(text.encode()).hexdigest()}
        return count

    def draw_top(view: Design, pl: Plan, root_parts: list[Part]) -> Sheet:
        top, rails = T.layout_top(pl, view, files)
        failed = T.route_top(top, rails)
        if failed:
            raise DesignError("top sheet: could not wire " + ", ".join(failed))
        # the top sheet's own parts (mounting holes, power flags of rails) under the diagram
        if root_parts:
            lay = L.SheetLayout(view, "", root_parts, {}, [], "left")
            blocks = lay.run_blocks()
            extra = L.arrange_blocks(lay, blocks, 1.0)
            ext_top, ext_extra = top.extent(), extra.extent()
            extra.move(snap(ext_top.x0 - ext_extra.x0, STEP),
                       snap(ext_top.y1 + 2 * STEP - ext_extra.y0, STEP))
            L.merge(top, extra)
        L.finish(top)
        place_on_paper(top)
        return top

    # power symbols numbered across the project, sheet by sheet, the top sheet first
    root = [p.ref for p in design.sheet_parts("")] + \
        [f.ref for f in design.flags() if pl.flag_sheet[f.ref] == ""]
    n = keep_or_draw("", f"{project}.kicad_sch", root,
                     {"title": titles.get("", design.name), "power_from": 0, "files": files},
                     draw_top)
    for name in design.sheets:
        own = [p.ref for p in design.sheet_parts(name)] + \
            [f.ref for f in design.flags() if pl.flag_sheet[f.ref] == name]
        n += keep_or_draw(name, files[name], own,
                          {"title": titles.get(name, name.replace("_", " ")), "power_from": n},
                          lambda view, plan_here, parts, name=name: draw_sheet(
                              view, name, parts, plan_here, plan_here.rail_ports.get(name, [])))
    out[record_name(project)] = json.dumps(
        {"version": RECORD_VERSION, "why": "what each sheet was drawn from (openmetering."
         "schematic.project): a sheet whose inputs are unchanged is not drawn again",
         "sheets": record}, indent=2, sort_keys=True) + "\n"
    if log:
        total = len(design.sheets) + 1
        log(f"schematic: drew {len(redrawn)} of {total} sheets"
            + (f" ({', '.join(redrawn)})" if 0 < len(redrawn) < total else "")
            + ("; the others' inputs are unchanged" if len(redrawn) < total else ""))
    return out
