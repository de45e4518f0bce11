"""KiCad library symbols: the copy a sheet embeds, and the geometry placement works from.

Everything here comes from the installed KiCad libraries (/usr/share/kicad/symbols): the
body outline from the symbol's graphics, each pin's connection point, direction and length,
and the default field positions. Coordinates are the library's (mm, y up).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .. import sexpr
from ..errors import DesignError
from ..kicad import SYMBOL_DIR as KICAD_SYMBOL_DIR
from ..sexpr import Q

# KiCad's default pin name offset and text size, used where a symbol does not set them
DEFAULT_PIN_NAME_OFFSET = 0.508
DEFAULT_TEXT = 1.27
DEFAULT_LINE = 0.1524


@dataclass(frozen=True)
class LibPin:
    number: str
    name: str
    etype: str  # KiCad electrical type: power_in, passive, input, ...
    x: float  # connection point (the end a wire attaches to)
    y: float
    angle: int  # direction from the connection point towards the body: 0 right, 90 up, ...
    length: float
    hidden: bool
    unit: int  # 0: common to all units
    name_size: float = DEFAULT_TEXT
    number_size: float = DEFAULT_TEXT

    @property
    def outward(self) -> tuple[int, int]:
        """Unit vector (library axes, y up) pointing away from the body."""
        return {0: (-1, 0), 90: (0, -1), 180: (1, 0), 270: (0, 1)}[self.angle]

    @property
    def inner(self) -> tuple[float, float]:
        dx, dy = self.outward
        return self.x - dx * self.length, self.y - dy * self.length


@dataclass
class LibSymbol:
    lib: str
    name: str
    tree: list  # flattened s-expression, named "lib:name", ready to embed
    pins: list[LibPin]
    body: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax (library axes)
    body_rects: list[tuple[float, float, float, float]]  # the ink, item by item
    power: bool
    pin_names_hidden: bool
    pin_numbers_hidden: bool
    pin_name_offset: float
    units: int
    fields: dict[str, tuple[float, float, int]] = field(default_factory=dict)

    @property
    def lib_id(self) -> str:
        return f"{self.lib}:{self.name}"

    def unit_pins(self, unit: int) -> list[LibPin]:
        return [p for p in self.pins if p.unit in (0, unit)]


# Library files SKiDL actually read the circuit's symbols from (a project library beside
# KiCad's own, say); a library not listed here is looked up in KiCad's symbol folder.
_FILES: dict[str, Path] = {}


def use_library_file(lib: str, path: Path) -> None:
    """Read library `lib` from `path` (where the circuit found it)."""
    if _FILES.get(lib) != path:
        _FILES[lib] = path
        _library_text.cache_clear()
        _raw_symbol.cache_clear()
        load.cache_clear()


@cache
def _library_text(lib: str) -> str:
    path = _FILES.get(lib, KICAD_SYMBOL_DIR / f"{lib}.kicad_sym")
    if not path.exists():
        raise DesignError(f"KiCad symbol library '{lib}' not found ({path})")
    return path.read_text(encoding="utf-8")


@cache
def _raw_symbol(lib: str, name: str) -> list:
    text = _library_text(lib)
    m = re.search(r'^\s\(symbol "' + re.escape(name) + r'"\s*$', text, re.M)
    if not m:
        raise DesignError(f"symbol '{name}' not found in KiCad library '{lib}'")
    tree, _end = sexpr.parse_at(text, m.start(), source=f"{lib}.kicad_sym")
    return tree


def _flatten(lib: str, name: str) -> list:
    """The symbol with `extends` resolved the way KiCad flattens it: the parent's drawing and
    pins, the derived symbol's fields."""
    tree = copy.deepcopy(_raw_symbol(lib, name))
    ext = sexpr.child(tree, "extends")
    if ext is None:
        return tree
    parent = _flatten(lib, ext[1])
    out = [tree[0], Q(name)]
    child_props = {p[1]: p for p in sexpr.children(tree, "property")}
    used = set()
    for item in parent[2:]:
        if isinstance(item, list) and item[0] == "property":
            key = item[1]
            if key in child_props:
                out.append(child_props[key])
                used.add(key)
            else:
                out.append(item)
        elif isinstance(item, list) and item[0] == "symbol":
            sub = copy.deepcopy(item)
            suffix = re.search(r"_\d+_\d+$", sub[1]).group(0)
            sub[1] = Q(name + suffix)
            out.append(sub)
        else:
            out.append(item)
    # child-only fields go after the parent's fields, before the unit drawings
    extra = [p for k, p in child_props.items() if k not in used]
    first_unit = next(i for i, x in enumerate(out) if isinstance(x, list) and x[0] == "symbol")
    out[first_unit:first_unit] = extra
    return out


def _xy(node) -> tuple[float, float]:
    return float(node[1]), float(node[2])


def _arc_points(start, mid, end) -> list[tuple[float, float]]:
    """Points bounding a circular arc through start, mid, end (its extremes included)."""
    (x1, y1), (x2, y2), (x3, y3) = start, mid, end
    d = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    pts = [start, mid, end]
    if abs(d) < 1e-9:
        return pts
    ux = ((x1**2 + y1**2) * (y2 - y3) + (x2**2 + y2**2) * (y3 - y1) + (x3**2 + y3**2) * (y1 - y2)) / d
    uy = ((x1**2 + y1**2) * (x3 - x2) + (x2**2 + y2**2) * (x1 - x3) + (x3**2 + y3**2) * (x2 - x1)) / d
    r = math.hypot(x1 - ux, y1 - uy)

    def ang(p):
        return math.atan2(p[1] - uy, p[0] - ux) % (2 * math.pi)

    a1, a2, a3 = ang(start), ang(mid), ang(end)
    # sweep from start through mid to end
    ccw = (a2 - a1) % (2 * math.pi) < (a3 - a1) % (2 * math.pi)
    lo, hi = (a1, a3) if ccw else (a3, a1)
    for k in range(4):
        a = k * math.pi / 2
        if (a - lo) % (2 * math.pi) <= (hi - lo) % (2 * math.pi):
            pts.append((ux + r * math.cos(a), uy + r * math.sin(a)))
    return pts


def _graphic_rects(item) -> list[tuple[float, float, float, float]]:
    """Rectangles covering one graphic item's ink: a rectangle, circle or arc (or a filled
    polyline) as its box, an open polyline segment by segment, so a diode's arrows or a
    ground symbol's bars are not taken for a solid block."""
    kind = item[0]
    width = 0.0
    stroke = sexpr.child(item, "stroke")
    if stroke is not None and sexpr.child(stroke, "width") is not None:
        width = float(sexpr.child(stroke, "width")[1])
    width = width or DEFAULT_LINE  # 0 is KiCad's "default": drawn 6 mil wide
    fill = sexpr.child(item, "fill")
    filled = fill is not None and sexpr.child(fill, "type") is not None and \
        sexpr.child(fill, "type")[1] not in ("none",)
    groups: list[list[tuple[float, float]]] = []
    if kind == "rectangle":
        groups = [[_xy(sexpr.child(item, "start")), _xy(sexpr.child(item, "end"))]]
    elif kind in ("polyline", "bezier"):
        pts = [_xy(p) for p in sexpr.children(sexpr.child(item, "pts"), "xy")]
        if filled or kind == "bezier" or len(pts) < 2:
            groups = [pts]
        else:
            groups = [[a, b] for a, b in zip(pts, pts[1:], strict=False)]
    elif kind == "circle":
        cx, cy = _xy(sexpr.child(item, "center"))
        r = float(sexpr.child(item, "radius")[1])
        groups = [[(cx - r, cy - r), (cx + r, cy + r)]]
    elif kind == "arc":
        groups = [_arc_points(_xy(sexpr.child(item, "start")), _xy(sexpr.child(item, "mid")),
                              _xy(sexpr.child(item, "end")))]
    elif kind == "text":
        from .font import text_height, text_width

        at = sexpr.child(item, "at")
        x, y = float(at[1]), float(at[2])
        w, h = text_width(item[1]), text_height()
        if len(at) > 3 and float(at[3]) in (90.0, 270.0):
            w, h = h, w
        groups = [[(x - w / 2, y - h / 2), (x + w / 2, y + h / 2)]]
    half = width / 2
    out = []
    for g in groups:
        if not g:
            continue
        xs, ys = [p[0] for p in g], [p[1] for p in g]
        out.append((min(xs) - half, min(ys) - half, max(xs) + half, max(ys) + half))
    return out


def _bool_flag(node, name) -> bool:
    sub = sexpr.child(node, name)
    return sub is not None and sexpr.child(sub, "hide") is not None and sexpr.child(sub, "hide")[1] == "yes"


def _text_size(node) -> float:
    eff = sexpr.child(node, "effects") if node is not None else None
    font = sexpr.child(eff, "font") if eff is not None else None
    size = sexpr.child(font, "size") if font is not None else None
    return float(size[1]) if size is not None else DEFAULT_TEXT


@cache
def load(lib: str, name: str) -> LibSymbol:
    tree = _flatten(lib, name)
    tree[1] = Q(f"{lib}:{name}")
    pins: list[LibPin] = []
    rects: list[tuple[float, float, float, float]] = []
    units = 1
    for sub in sexpr.children(tree, "symbol"):
        unit, style = (int(v) for v in re.search(r"_(\d+)_(\d+)$", sub[1]).groups())
        if style not in (0, 1):
            continue  # De Morgan alternates are not drawn
        units = max(units, unit)
        for item in sub[2:]:
            if not isinstance(item, list):
                continue
            if item[0] == "pin":
                at = sexpr.child(item, "at")
                name_node, num_node = sexpr.child(item, "name"), sexpr.child(item, "number")
                hide = sexpr.child(item, "hide")
                pins.append(LibPin(
                    number=str(num_node[1]), name=str(name_node[1]), etype=str(item[1]),
                    x=float(at[1]), y=float(at[2]), angle=int(float(at[3])) % 360,
                    length=float(sexpr.child(item, "length")[1]),
                    hidden=hide is not None and hide[1] == "yes", unit=unit,
                    name_size=_text_size(name_node), number_size=_text_size(num_node)))
            elif item[0] in ("rectangle", "polyline", "bezier", "circle", "arc", "text"):
                rects += _graphic_rects(item)
    if not rects:  # a symbol drawn by its pins only: its body is where the pins meet
        pts = [p.inner for p in pins] or [(0.0, 0.0)]
        rects = [(min(p[0] for p in pts), min(p[1] for p in pts),
                  max(p[0] for p in pts), max(p[1] for p in pts))]
    xs = [r[0] for r in rects] + [r[2] for r in rects]
    ys = [r[1] for r in rects] + [r[3] for r in rects]
    pn = sexpr.child(tree, "pin_names")
    offset = DEFAULT_PIN_NAME_OFFSET
    if pn is not None and sexpr.child(pn, "offset") is not None:
        offset = float(sexpr.child(pn, "offset")[1])
    fields = {}
    for prop in sexpr.children(tree, "property"):
        at = sexpr.child(prop, "at")
        fields[str(prop[1])] = (float(at[1]), float(at[2]), int(float(at[3])) if len(at) > 3 else 0)
    return LibSymbol(
        lib=lib, name=name, tree=tree, pins=pins, body=(min(xs), min(ys), max(xs), max(ys)),
        body_rects=rects,
        power=sexpr.child(tree, "power") is not None,
        pin_names_hidden=_bool_flag(tree, "pin_names"),
        pin_numbers_hidden=_bool_flag(tree, "pin_numbers"),
        pin_name_offset=offset, units=units, fields=fields)


def has_symbol(lib: str, name: str) -> bool:
    try:
        _raw_symbol(lib, name)
    except DesignError:
        return False
    return True
