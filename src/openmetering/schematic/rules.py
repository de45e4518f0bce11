"""The rules a drawn schematic is held to, checked from the written files alone.

The sheets are read back with kiutils (a reader that is not ours) and KiCad's own netlist
export; the geometry is worked out again here from what the files embed (the library
symbols' graphics, each field's position and justification, each wire and label), not taken
from the generator. So a sheet that breaks a rule fails here however it was drawn.

Rules:
- text: no text (a reference, a value, a label, a pin's name or number, a power symbol's
  net name, a sheet's name) overlaps another text, a symbol's body or a wire;
- paper: A5, A4 or A3, the smallest of them that holds the drawing, and the drawing covers
  at least FILL_MIN of the paper's drawable area (inside the frame, less the title block);
  on A5, the smallest, a block of a few parts may cover less, down to FILL_MIN_A5;
- decoupling: a capacitor whose supply side shares a net with a chip's power pin on the same
  sheet is wired (by wires alone, no label or power symbol between) to such a pin, at most
  DECOUPLING_MAX away;
- names: every net of two or more pins has a name from the drawing (no Net-(...), no N$).
KiCad's own ERC is the further gate (netlist stage, tests).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import sexpr
from . import font
from .geometry import Rect

FILL_MIN = 0.20
FILL_MIN_A5 = 0.15
MARGIN = 5.08  # kept clear inside the frame
DECOUPLING_MAX = 20.0  # mm, capacitor pin to the power pin it serves
PAPER = {"A5": (210.0, 148.0), "A4": (297.0, 210.0), "A3": (420.0, 297.0)}
FRAME = 12.0
TITLE_BLOCK = (108.0, 32.0)
GROUND = re.compile(r"(^|/)(A|D|P|S)?(GND|VSS|0V)\w*$", re.I)
PEN = 0.1524


@dataclass
class Text:
    rect: Rect
    owner: str  # uuid of what the text belongs to
    what: str  # for messages: "R1 Reference", "label ADC_V", ...
    kind: str  # field, pin, label, sheet, sheetpin, note
    point: tuple[float, float] | None = None  # a label's connection point


@dataclass
class Body:
    rect: Rect
    owner: str


@dataclass
class SymbolPin:
    ref: str
    number: str
    etype: str
    point: tuple[float, float]
    owner: str


@dataclass
class SheetGeometry:
    path: Path
    paper: str
    texts: list[Text] = field(default_factory=list)
    bodies: list[Body] = field(default_factory=list)
    wires: list[tuple[tuple[float, float], tuple[float, float]]] = field(default_factory=list)
    pins: list[SymbolPin] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # symbol uuid -> reference
    extent: Rect | None = None


# --- geometry of the file ----------------------------------------------------------------
# KiCad's symbol orientation as a matrix on library coordinates (y up) -> sheet (y down)
_ORIENT = {0: (1, 0, 0, -1), 90: (0, -1, -1, 0), 180: (-1, 0, 0, 1), 270: (0, 1, 1, 0)}


def _matrix(angle: float, mirror: str | None):
    a, b, c, d = _ORIENT[int(round(angle)) % 360]
    if mirror == "y":  # x flips before the turn
        a, c = -a, -c
    elif mirror == "x":
        b, d = -b, -d
    return a, b, c, d


def _apply(m, x0, y0, px, py):
    a, b, c, d = m
    return x0 + a * px + b * py, y0 + c * px + d * py


def _f(node, name, i=1, default=0.0) -> float:
    c = sexpr.child(node, name)
    return float(c[i]) if c is not None and len(c) > i else default


def _xy(node) -> tuple[float, float]:
    return float(node[1]), float(node[2])


def _hidden(node) -> bool:
    """KiCad 9 writes (hide yes); older files a bare hide."""
    if node is None:
        return False
    h = sexpr.child(node, "hide")
    return (h is not None and (len(h) == 1 or h[1] == "yes")) or "hide" in node[1:]


def _effects(node):
    eff = sexpr.child(node, "effects")
    size = 1.27
    hj, vj = "center", "center"
    hide = _hidden(eff) if eff is not None else False
    if eff is not None:
        fnt = sexpr.child(eff, "font")
        if fnt is not None and sexpr.child(fnt, "size") is not None:
            size = float(sexpr.child(fnt, "size")[1])
        j = sexpr.child(eff, "justify")
        if j is not None:
            for v in j[1:]:
                if v in ("left", "right"):
                    hj = v
                elif v in ("top", "bottom"):
                    vj = v
    return size, hj, vj, hide


def _lib_rects(lib) -> list[tuple[float, float, float, float]]:
    """Ink of an embedded library symbol, item by item (library axes), unit by unit."""
    out = []
    for unit in sexpr.children(lib, "symbol"):
        u, style = (int(v) for v in re.search(r"_(\d+)_(\d+)$", unit[1]).groups())
        if style not in (0, 1):
            continue
        for g in unit[2:]:
            if not isinstance(g, list) or g[0] not in ("rectangle", "polyline", "bezier", "circle",
                                                        "arc", "text"):
                continue
            stroke = sexpr.child(g, "stroke")
            width = (_f(stroke, "width") if stroke is not None else 0.0) or PEN
            fill = sexpr.child(g, "fill")
            filled = fill is not None and sexpr.value(fill, "type", "none") != "none"
            groups = []
            if g[0] == "rectangle":
                groups = [[_xy(sexpr.child(g, "start")), _xy(sexpr.child(g, "end"))]]
            elif g[0] in ("polyline", "bezier"):
                p = [_xy(q) for q in sexpr.children(sexpr.child(g, "pts"), "xy")]
                groups = [p] if filled or g[0] == "bezier" or len(p) < 2 else \
                    [[a, b] for a, b in zip(p, p[1:], strict=False)]
            elif g[0] == "circle":
                cx, cy = _xy(sexpr.child(g, "center"))
                r = _f(g, "radius")
                groups = [[(cx - r, cy - r), (cx + r, cy + r)]]
            elif g[0] == "arc":
                groups = [_arc_box(_xy(sexpr.child(g, "start")), _xy(sexpr.child(g, "mid")),
                                   _xy(sexpr.child(g, "end")))]
            else:
                at = sexpr.child(g, "at")
                size = _effects(g)[0]
                w, hh = font.text_width(g[1], size), font.text_height(size)
                if len(at) > 3 and round(float(at[3])) % 180 == 90:
                    w, hh = hh, w
                x, y = _xy(at)
                groups = [[(x - w / 2, y - hh / 2), (x + w / 2, y + hh / 2)]]
            h = width / 2
            for grp in groups:
                xs, ys = [q[0] for q in grp], [q[1] for q in grp]
                out.append((u, min(xs) - h, min(ys) - h, max(xs) + h, max(ys) + h))
    return out


def _arc_box(s, m, e) -> list[tuple[float, float]]:
    (x1, y1), (x2, y2), (x3, y3) = s, m, e
    den = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    if abs(den) < 1e-9:
        return [s, m, e]
    ux = ((x1 ** 2 + y1 ** 2) * (y2 - y3) + (x2 ** 2 + y2 ** 2) * (y3 - y1) + (x3 ** 2 + y3 ** 2) * (y1 - y2)) / den
    uy = ((x1 ** 2 + y1 ** 2) * (x3 - x2) + (x2 ** 2 + y2 ** 2) * (x1 - x3) + (x3 ** 2 + y3 ** 2) * (x2 - x1)) / den
    r = math.hypot(x1 - ux, y1 - uy)
    return [(ux - r, uy - r), (ux + r, uy + r)]  # the whole circle: an arc never exceeds it


def _field_rect(text, x, y, size, angle, hj, vj, sym_angle, sym_mirror) -> Rect:
    """Where Eeschema draws a symbol's field: its text box, turned with the symbol."""
    vertical = (round(angle) % 180 == 90) != (round(sym_angle) % 180 == 90)
    if (hj, vj) != ("center", "center") and (round(sym_angle) % 360 or sym_mirror):
        raise ValueError(f"field '{text}': justified text on a turned symbol is not measured")
    return Rect(*font.ink_box(text, x, y, size, hj, vj, vertical))


def read_sheet(path: Path) -> SheetGeometry:
    """The geometry of one written sheet, from the file alone."""
    tree = sexpr.parse(Path(path).read_text(encoding="utf-8"), str(path))
    geo = SheetGeometry(path=Path(path), paper=sexpr.value(tree, "paper", "?"))
    libs = {s[1]: s for s in sexpr.children(sexpr.child(tree, "lib_symbols") or ["x"], "symbol")}
    for sym in sexpr.children(tree, "symbol"):
        lib = libs[sexpr.value(sym, "lib_id")]
        at = sexpr.child(sym, "at")
        x0, y0, ang = float(at[1]), float(at[2]), float(at[3]) if len(at) > 3 else 0.0
        mirror = sexpr.value(sym, "mirror", None)
        unit_no = int(sexpr.value(sym, "unit", "1"))
        m = _matrix(ang, mirror)
        owner = sexpr.value(sym, "uuid")
        props = sexpr.children(sym, "property")
        ref = next((p[2] for p in props if p[1] == "Reference"), "?")
        geo.refs[owner] = ref
        for u, *r in _lib_rects(lib):
            if u not in (0, unit_no):
                continue
            (ax, ay), (bx, by) = _apply(m, x0, y0, r[0], r[1]), _apply(m, x0, y0, r[2], r[3])
            geo.bodies.append(Body(Rect(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)), owner))
        names_hidden = _hidden(sexpr.child(lib, "pin_names"))
        numbers_hidden = _hidden(sexpr.child(lib, "pin_numbers"))
        pn = sexpr.child(lib, "pin_names")
        offset = _f(pn, "offset", default=0.508) if pn is not None and sexpr.child(pn, "offset") else 0.508
        for unit in sexpr.children(lib, "symbol"):
            u = int(re.search(r"_(\d+)_\d+$", unit[1]).group(1))
            if u not in (0, unit_no):
                continue
            for p in sexpr.children(unit, "pin"):
                pat = sexpr.child(p, "at")
                lx, ly, la = float(pat[1]), float(pat[2]), round(float(pat[3])) % 360
                length = _f(p, "length")
                number = sexpr.child(p, "number")[1]
                name = sexpr.child(p, "name")[1]
                px, py = _apply(m, x0, y0, lx, ly)
                dx, dy = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[la]
                ix, iy = _apply(m, x0, y0, lx + dx * length, ly + dy * length)
                geo.pins.append(SymbolPin(ref, number, p[1], (round(px, 4), round(py, 4)), owner))
                if _hidden(p):
                    continue
                geo.bodies.append(Body(Rect(min(px, ix) - PEN / 2, min(py, iy) - PEN / 2,
                                            max(px, ix) + PEN / 2, max(py, iy) + PEN / 2), owner))
                horizontal = abs(py - iy) < 1e-6
                ox_, oy_ = (px - ix) / (length or 1), (py - iy) / (length or 1)  # outward
                mx, my = (px + ix) / 2, (py + iy) / 2
                if not names_hidden and name not in ("~", ""):
                    if offset > 0:
                        nx, ny = ix - ox_ * offset, iy - oy_ * offset
                        hj = ("left" if ox_ < 0 else "right") if horizontal else \
                            ("left" if oy_ > 0 else "right")
                        r = font.ink_box(name, nx, ny, 1.27, hj, vertical=not horizontal)
                    elif horizontal:
                        r = font.ink_box(name, mx, my - 0.254, 1.27, vjust="bottom")
                    else:
                        r = font.ink_box(name, mx - 0.254, my, 1.27, vjust="bottom", vertical=True)
                    geo.texts.append(Text(Rect(*r), owner, f"{ref} pin {number} name", "pin"))
                if not numbers_hidden:
                    r = font.ink_box(number, mx, my - 0.254, 1.27, vjust="bottom") if horizontal \
                        else font.ink_box(number, mx - 0.254, my, 1.27, vjust="bottom", vertical=True)
                    geo.texts.append(Text(Rect(*r), owner, f"{ref} pin {number} number", "pin"))
        for prop in props:
            size, hj, vj, hide = _effects(prop)
            if hide or not prop[2]:
                continue
            pat = sexpr.child(prop, "at")
            r = _field_rect(prop[2], float(pat[1]), float(pat[2]), size,
                            float(pat[3]) if len(pat) > 3 else 0.0, hj, vj, ang, mirror)
            geo.texts.append(Text(r, owner, f"{ref} {prop[1]} '{prop[2]}'", "field"))
    for w in sexpr.children(tree, "wire"):
        pts = sexpr.children(sexpr.child(w, "pts"), "xy")
        a, b = _xy(pts[0]), _xy(pts[-1])
        geo.wires.append(((round(a[0], 4), round(a[1], 4)), (round(b[0], 4), round(b[1], 4))))
    for head, kind in (("label", "local"), ("hierarchical_label", "hier"), ("global_label", "global")):
        for lb in sexpr.children(tree, head):
            at = sexpr.child(lb, "at")
            x, y, a = float(at[1]), float(at[2]), round(float(at[3])) % 360
            d = {0: "right", 90: "up", 180: "left", 270: "down"}[a]
            r = Rect(*font.label_box(kind, lb[1], x, y, d))
            owner = sexpr.value(lb, "uuid")
            geo.texts.append(Text(r, owner, f"{kind} label '{lb[1]}'", "label",
                                  (round(x, 4), round(y, 4))))
    for sh in sexpr.children(tree, "sheet"):
        x, y = _xy(sexpr.child(sh, "at"))
        size = sexpr.child(sh, "size")
        box = Rect(x, y, x + float(size[1]), y + float(size[2]))
        owner = sexpr.value(sh, "uuid")
        geo.bodies.append(Body(box, owner))
        name = "?"
        for prop in sexpr.children(sh, "property"):
            fsize, hj, vj, hide = _effects(prop)
            if prop[1] == "Sheetname":
                name = prop[2]
            if hide:
                continue
            pat = sexpr.child(prop, "at")
            r = font.ink_box(prop[2], float(pat[1]), float(pat[2]), fsize, hj, vj)
            geo.texts.append(Text(Rect(*r), owner, f"sheet '{name}' {prop[1]}", "sheet"))
        for p in sexpr.children(sh, "pin"):
            pat = sexpr.child(p, "at")
            px, py, a = float(pat[1]), float(pat[2]), round(float(pat[3])) % 360
            inward = {180: "right", 0: "left", 90: "down", 270: "up"}[a]
            # a sheet pin is drawn as a hierarchical label inside the box
            r = Rect(*font.label_box("hier", p[1], px, py, inward))
            geo.texts.append(Text(r, owner, f"sheet '{name}' pin '{p[1]}'", "sheetpin",
                                  (round(px, 4), round(py, 4))))
    for t in sexpr.children(tree, "text"):
        size, hj, vj, hide = _effects(t)
        at = sexpr.child(t, "at")
        for i, line in enumerate(t[1].split("\n")):
            r = font.ink_box(line, float(at[1]), float(at[2]) + i * 2.54 * size / 1.27, size, hj, vj)
            geo.texts.append(Text(Rect(*r), sexpr.value(t, "uuid"), f"text '{line[:24]}'", "note"))
    rects = [t.rect for t in geo.texts] + [b.rect for b in geo.bodies]
    rects += [_wire_rect(a, b) for a, b in geo.wires]
    if rects:
        geo.extent = Rect(min(r.x0 for r in rects), min(r.y0 for r in rects),
                          max(r.x1 for r in rects), max(r.y1 for r in rects))
    return geo


# --- the rules ---------------------------------------------------------------------------------
def _wire_rect(a, b) -> Rect:
    return Rect(min(a[0], b[0]) - PEN / 2, min(a[1], b[1]) - PEN / 2,
                max(a[0], b[0]) + PEN / 2, max(a[1], b[1]) + PEN / 2)


def text_overlaps(geo: SheetGeometry) -> list[str]:
    bad = []
    texts = geo.texts
    for a, b in itertools.combinations(texts, 2):
        if a.rect.hits(b.rect):
            # a sheet box's pins and names belong to it; everything else must stand apart
            if a.owner == b.owner and a.kind in ("sheetpin", "sheet") and b.kind in ("sheetpin", "sheet"):
                if a.kind == b.kind == "sheetpin":
                    bad.append(f"{a.what} overlaps {b.what}")
                continue
            bad.append(f"{a.what} overlaps {b.what}")
    for t in texts:
        for body in geo.bodies:
            if t.rect.hits(body.rect):
                if body.owner == t.owner and t.kind in ("pin", "sheetpin"):
                    continue  # a pin's name inside its own symbol, a sheet pin in its box
                bad.append(f"{t.what} overlaps the body of {geo.refs.get(body.owner, 'a sheet')}")
        point = t.point
        for a, b in geo.wires:
            if point is not None and (point in (a, b) or _on(point, a, b)):
                continue  # a label on its own wire
            if t.rect.hits(_wire_rect(a, b)):
                bad.append(f"{t.what} overlaps a wire {a}-{b}")
    return sorted(set(bad))


def min_text_gap(geo: SheetGeometry) -> float:
    """Smallest distance between two texts of different items (mm)."""
    best = math.inf
    for a, b in itertools.combinations(geo.texts, 2):
        if a.owner == b.owner:
            continue
        best = min(best, a.rect.gap(b.rect))
    return best


def drawable(paper: str) -> tuple[Rect, Rect]:
    w, h = PAPER[paper]
    frame = Rect(FRAME, FRAME, w - FRAME, h - FRAME)
    tb = Rect(w - FRAME - TITLE_BLOCK[0], h - FRAME - TITLE_BLOCK[1], w - FRAME, h - FRAME)
    return frame, tb


def fill(geo: SheetGeometry) -> float:
    if geo.paper not in PAPER or geo.extent is None:
        return 0.0
    frame, tb = drawable(geo.paper)
    e = geo.extent
    covered = e.area
    ov = Rect(max(e.x0, tb.x0), max(e.y0, tb.y0), min(e.x1, tb.x1), min(e.y1, tb.y1))
    if ov.w > 0 and ov.h > 0:
        covered -= ov.area
    return covered / (frame.area - tb.area)


def fits_smaller(geo: SheetGeometry) -> str | None:
    """The next smaller paper the drawing's box would fit on (above or beside its title
    block), if any."""
    names = list(PAPER)
    if geo.paper not in PAPER or geo.extent is None or names.index(geo.paper) == 0:
        return None
    smaller = names[names.index(geo.paper) - 1]
    frame, tb = drawable(smaller)
    w, h = geo.extent.w, geo.extent.h
    inner_w, inner_h = frame.w - 2 * MARGIN, frame.h - 2 * MARGIN
    above = w <= inner_w and h <= inner_h - tb.h - MARGIN
    beside = w <= inner_w - tb.w - MARGIN and h <= inner_h
    return smaller if above or beside else None


def outside_frame(geo: SheetGeometry) -> list[str]:
    if geo.paper not in PAPER:
        return [f"paper {geo.paper} (A5, A4 or A3 only)"]
    frame, tb = drawable(geo.paper)
    bad = []
    for t in geo.texts:
        if not (frame.x0 <= t.rect.x0 and t.rect.x1 <= frame.x1 and frame.y0 <= t.rect.y0 and
                t.rect.y1 <= frame.y1) or t.rect.hits(tb):
            bad.append(f"{t.what} outside the drawable area")
    for b in geo.bodies:
        if b.rect.hits(tb):
            bad.append(f"body of {geo.refs.get(b.owner, 'a sheet')} on the title block")
    return bad


def _on(p, a, b) -> bool:
    (px, py), (ax, ay), (bx, by) = p, a, b
    if abs(ax - bx) < 1e-6 and abs(px - ax) < 1e-6:
        return min(ay, by) - 1e-6 <= py <= max(ay, by) + 1e-6
    if abs(ay - by) < 1e-6 and abs(py - ay) < 1e-6:
        return min(ax, bx) - 1e-6 <= px <= max(ax, bx) + 1e-6
    return False


def wired_groups(geo: SheetGeometry) -> dict[tuple[float, float], int]:
    """Group the points joined by wires alone (a wire end on another wire joins it)."""
    pts = set()
    for a, b in geo.wires:
        pts |= {a, b}
    for p in geo.pins:
        pts.add(p.point)
    parent = {p: p for p in pts}

    def find(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in geo.wires:
        parent[find(a)] = find(b)
        for p in pts:
            if _on(p, a, b):
                parent[find(p)] = find(a)
    groups = {}
    ids: dict = {}
    for p in pts:
        groups[p] = ids.setdefault(find(p), len(ids))
    return groups


def decoupling(geo: SheetGeometry, pin_net: dict[tuple[str, str], str]) -> tuple[list[str], dict]:
    """Capacitors on a chip's power net: wired to a power pin of that chip, close to it."""
    groups = wired_groups(geo)
    by_ref: dict[str, list[SymbolPin]] = {}
    for p in geo.pins:
        by_ref.setdefault(p.ref, []).append(p)
    chips = {r for r, ps in by_ref.items() if len({p.number for p in ps}) >= 3 and not r.startswith("#")}
    bad, distances = [], {}
    for ref, pins in sorted(by_ref.items()):
        if not re.match(r"^C\d", ref) or len(pins) != 2:
            continue
        for cp in pins:
            net = pin_net.get((ref, cp.number))
            if net is None or GROUND.search(net):
                continue
            power = [p for r in chips for p in by_ref[r]
                     if p.etype in ("power_in", "power_out") and pin_net.get((r, p.number)) == net]
            if not power:
                continue
            wired = [p for p in power if groups.get(p.point) == groups.get(cp.point)]
            if not wired:
                bad.append(f"{ref} on {net} is not wired to the power pin it serves "
                           f"({', '.join(f'{p.ref}.{p.number}' for p in power)})")
                continue
            near = min(wired, key=lambda p: math.dist(p.point, cp.point))
            dist = math.dist(near.point, cp.point)
            distances[ref] = (f"{near.ref}.{near.number}", round(dist, 2))
            if dist > DECOUPLING_MAX:
                bad.append(f"{ref} is {dist:.1f} mm from {near.ref}.{near.number} (at most "
                           f"{DECOUPLING_MAX:.0f} mm)")
    return bad, distances


def net_names(netlist_nets: dict[str, list[tuple[str, str]]]) -> list[str]:
    bad = []
    for name, nodes in sorted(netlist_nets.items()):
        real = [n for n in nodes if not n[0].startswith("#")]
        if len(real) >= 2 and (name.startswith("Net-(") or "N$" in name or
                               name.startswith("unconnected-")):
            bad.append(f"net {name} ({', '.join(f'{r}.{p}' for r, p in real)}) has no name")
    return bad


def check(sheets: list[Path], netlist_path: Path) -> dict:
    """Every rule on every sheet: {"violations": [...], "sheets": {file: figures}}."""
    from ..kicadnet import read_netlist

    net = read_netlist(netlist_path)
    report: dict = {"violations": [], "sheets": {}}
    report["violations"] += net_names(net.nets)
    by_sheet_pin = {}
    for name, nodes in net.nets.items():
        for ref, pin in nodes:
            by_sheet_pin[(ref, pin)] = name
    for path in sorted(sheets):
        geo = read_sheet(path)
        bad = [f"{path.name}: {m}" for m in text_overlaps(geo) + outside_frame(geo)]
        f = fill(geo)
        least = FILL_MIN_A5 if geo.paper == "A5" else FILL_MIN
        if f < least:
            bad.append(f"{path.name}: the drawing fills {f:.0%} of its {geo.paper} sheet "
                       f"(at least {least:.0%})")
        smaller = fits_smaller(geo)
        if smaller:
            bad.append(f"{path.name}: the drawing would fit {smaller}, it is on {geo.paper}")
        dbad, dist = decoupling(geo, by_sheet_pin)
        bad += [f"{path.name}: {m}" for m in dbad]
        report["violations"] += bad
        gap = min_text_gap(geo)
        report["sheets"][path.name] = {
            "paper": geo.paper, "fill": round(f, 3),
            "min_text_gap_mm": None if gap == math.inf else round(gap, 2),
            "decoupling_mm": {k: v[1] for k, v in sorted(dist.items())},
            "decoupling_pin": {k: v[0] for k, v in sorted(dist.items())},
        }
    return report


def summary(report: dict) -> dict:
    """The figures of a passing check, for hardware/reports/schematic.json."""
    sheets = report["sheets"]
    gaps = [v["min_text_gap_mm"] for v in sheets.values() if v["min_text_gap_mm"] is not None]
    dists = [d for v in sheets.values() for d in v["decoupling_mm"].values()]
    return {
        "rules": {"fill_min": FILL_MIN, "fill_min_a5": FILL_MIN_A5,
                  "decoupling_max_mm": DECOUPLING_MAX, "papers": list(PAPER)},
        "min_text_gap_mm": min(gaps) if gaps else None,
        "max_decoupling_mm": max(dists) if dists else None,
        "sheets": sheets,
    }
