"""The occupied parts of a sheet while it is being drawn, and whether something new fits.

Everything placed registers the rectangles of its ink (bodies, pins, texts, wires) and its
connection points. A candidate placement is accepted only if its texts keep clear of every
other text, body, pin and wire, bodies keep clear of each other, and a wire neither runs
through a body or a text nor touches a connection point of another net: so a sheet that is
drawn at all is drawn without overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .drawing import Label, NoConnect, SymbolItem, Wire
from .geometry import Rect, key, on_segment, segment_rect

TEXT_GAP = 0.6  # mm between a text and anything else (so two texts do not read as one)
BODY_GAP = 0.5  # mm between two symbol bodies
WIRE_GAP = 0.3  # mm between a wire and a body or text it does not belong to


@dataclass
class Ink:
    rect: Rect
    kind: str  # body, pin, text, ptext (pin name/number), wire, label
    owner: object
    net: str | None = None


@dataclass
class Group:
    """Items to be placed together (a part with its rail symbol and wires)."""

    inks: list[Ink] = field(default_factory=list)
    points: list[tuple[tuple[float, float], str | None]] = field(default_factory=list)
    wires: list[Wire] = field(default_factory=list)


def symbol_inks(s: SymbolItem, owner=None) -> list[Ink]:
    owner = owner if owner is not None else s
    inks = [Ink(r, "body", owner) for r in s.body_rects()]
    inks += [Ink(r, "pin", owner) for r in s.pin_rects()]
    inks += [Ink(r, "ptext", owner) for r in s.pin_text_rects()]
    inks += [Ink(r, "text", owner) for r in s.field_rects()]
    return inks


def wire_ink(w: Wire) -> Ink:
    return Ink(w.rect(), "wire", w, w.net)


def label_ink(lb: Label, net: str) -> Ink:
    return Ink(lb.rect(), "label", lb, net)


def _clearance(a: Ink, b: Ink) -> float | None:
    """Required gap between a and b, or None when they may touch or overlap."""
    same = a.owner is b.owner
    ka, kb = a.kind, b.kind
    if same:
        # a symbol's own pins, pin texts and body belong together; its fields must still
        # stay off its body and pins
        if {ka, kb} <= {"body", "pin", "ptext"}:
            return None
        if "text" in (ka, kb) and {ka, kb} & {"body", "pin", "ptext"}:
            return 0.0
        return None
    kinds = {ka, kb}
    if "lane" in kinds:
        # room kept free for a pin's line that is still to be drawn
        lane, other = (a, b) if ka == "lane" else (b, a)
        if other.kind == "lane" or other.net == lane.net:
            return None
        return 0.0
    if kinds == {"pin", "label"} and a.net is not None and a.net == b.net:
        return 0.0  # a label of the pin's own net may come close, but not over the pin
    if kinds == {"pin", "body"}:
        body, pin = (a, b) if ka == "body" else (b, a)
        if body.net is not None and body.net == pin.net:
            return None  # a power symbol standing on the pin it names
    if kinds == {"wire"}:
        return None  # wire against wire is judged by geometry (collinear overlap, points)
    if "wire" in kinds:
        other = b if ka == "wire" else a
        wire = a if ka == "wire" else b
        if other.kind == "pin":
            return None if other.net in (None, wire.net) else 0.0
        if other.kind == "label":
            return None if other.net == wire.net else WIRE_GAP
        if other.kind == "body" and other.net is not None and other.net == wire.net:
            return None  # a power symbol's drawing starts at its own pin
        return WIRE_GAP
    if kinds == {"body"}:
        return BODY_GAP
    if kinds == {"pin"}:
        return None  # pins meet pins at shared connection points
    if kinds <= {"body", "pin"}:
        return TEXT_GAP
    if kinds & {"text", "ptext", "label"}:
        return TEXT_GAP
    return 0.0


class Canvas:
    def __init__(self):
        self.inks: list[Ink] = []
        self.points: dict[tuple[int, int], set] = {}
        self.wires: list[Wire] = []
        self._cell = 10.0
        self._grid: dict[tuple[int, int], list[int]] = {}

    # --- registration -----------------------------------------------------------------
    def _index(self, i: int, r: Rect) -> None:
        c = self._cell
        for gx in range(int(r.x0 // c), int(r.x1 // c) + 1):
            for gy in range(int(r.y0 // c), int(r.y1 // c) + 1):
                self._grid.setdefault((gx, gy), []).append(i)

    def near(self, r: Rect) -> list[Ink]:
        c = self._cell
        seen: set[int] = set()
        out = []
        for gx in range(int(r.x0 // c), int(r.x1 // c) + 1):
            for gy in range(int(r.y0 // c), int(r.y1 // c) + 1):
                for i in self._grid.get((gx, gy), ()):
                    if i not in seen:
                        seen.add(i)
                        out.append(self.inks[i])
        return out

    def add_ink(self, ink: Ink) -> None:
        self.inks.append(ink)
        self._index(len(self.inks) - 1, ink.rect)

    def remove_owner(self, owner) -> None:
        self.inks = [i for i in self.inks if not (i.owner is owner or
                                                  (isinstance(owner, tuple) and i.owner == owner))]
        self._grid = {}
        for n, ink in enumerate(self.inks):
            self._index(n, ink.rect)

    def add_point(self, p, net) -> None:
        self.points.setdefault(key(*p), set()).add(net)

    def add_group(self, g: Group) -> None:
        for ink in g.inks:
            self.add_ink(ink)
        for p, net in g.points:
            self.add_point(p, net)
        for w in g.wires:
            self.wires.append(w)

    def add_symbol(self, s: SymbolItem, pin_nets: dict[str, str | None], owner=None) -> None:
        self.add_group(symbol_group(s, pin_nets, owner))

    def add_wire(self, w: Wire) -> None:
        g = Group(inks=[wire_ink(w)], points=[(w.a, w.net), (w.b, w.net)], wires=[w])
        self.add_group(g)

    # --- checks -----------------------------------------------------------------------------
    def ink_ok(self, ink: Ink, extra: list[Ink] = ()) -> bool:
        probe = ink.rect.grow(BODY_GAP)
        for other in list(self.near(probe)) + list(extra):
            if other is ink:
                continue
            gap = _clearance(ink, other)
            if gap is None:
                continue
            if gap == 0.0:
                if ink.rect.hits(other.rect):
                    return False
            elif ink.rect.grow(gap / 2).hits(other.rect.grow(gap / 2)):
                return False
        return True

    def wire_ok(self, w: Wire, extra_wires: list[Wire] = (), crossings: bool = True) -> bool:
        """A wire may cross another net's wire at right angles (no dot), but never run along
        it, end on it, or pass over another net's connection point."""
        for other in list(self.wires) + list(extra_wires):
            if other.net == w.net:
                continue
            if _collinear_overlap(w, other):
                return False
            for p in (w.a, w.b):
                if on_segment(p, other.a, other.b):
                    return False
            for p in (other.a, other.b):
                if on_segment(p, w.a, w.b):
                    return False
            if not crossings and _crosses(w, other):
                return False
        r = segment_rect(w.a, w.b)
        for (px, py), nets in self.points.items():
            if nets - {w.net} and _point_in(px, py, r) and on_segment((px / 1e4, py / 1e4), w.a, w.b):
                return False
        return True

    def group_ok(self, g: Group, crossings: bool = False) -> bool:
        for i, ink in enumerate(g.inks):
            others = [o for j, o in enumerate(g.inks) if j != i]
            if not self.ink_ok(ink, [o for o in others if _clearance(ink, o) is not None]):
                return False
        for w in g.wires:
            if not self.wire_ok(w, [x for x in g.wires if x is not w], crossings):
                return False
        # the group's own connection points must not land on foreign wires or points
        for p, net in g.points:
            k = key(*p)
            if self.points.get(k, set()) - {net}:
                return False
            for other in self.wires:
                if other.net != net and on_segment(p, other.a, other.b):
                    return False
        return True


def _point_in(px: int, py: int, r: Rect) -> bool:
    return r.x0 * 1e4 - 1 <= px <= r.x1 * 1e4 + 1 and r.y0 * 1e4 - 1 <= py <= r.y1 * 1e4 + 1


def _collinear_overlap(a: Wire, b: Wire) -> bool:
    (ax0, ay0), (ax1, ay1) = key(*a.a), key(*a.b)
    (bx0, by0), (bx1, by1) = key(*b.a), key(*b.b)
    if ay0 == ay1 == by0 == by1:
        lo, hi = max(min(ax0, ax1), min(bx0, bx1)), min(max(ax0, ax1), max(bx0, bx1))
        return hi >= lo
    if ax0 == ax1 == bx0 == bx1:
        lo, hi = max(min(ay0, ay1), min(by0, by1)), min(max(ay0, ay1), max(by0, by1))
        return hi >= lo
    return False


def _crosses(a: Wire, b: Wire) -> bool:
    ra, rb = segment_rect(a.a, a.b), segment_rect(b.a, b.b)
    return ra.x0 <= rb.x1 and rb.x0 <= ra.x1 and ra.y0 <= rb.y1 and rb.y0 <= ra.y1


def symbol_group(s: SymbolItem, pin_nets: dict[str, str | None], owner=None) -> Group:
    inks = symbol_inks(s, owner)
    # a pin's ink carries its net, so a wire of the same net may touch it
    pin_inks = [i for i in inks if i.kind == "pin"]
    visible = [p for p in s.pins if not p.hidden]
    for ink, p in zip(pin_inks, visible, strict=True):
        ink.net = pin_nets.get(p.number)
    points = [(s.pin_point(p), pin_nets.get(p.number)) for p in s.pins]
    if s.libsym.power:
        # a power symbol's (or flag's) drawing starts at its one pin: it may touch that net
        nets = {pin_nets.get(p.number) for p in s.pins}
        for ink in inks:
            if ink.kind == "body" and len(nets) == 1:
                ink.net = next(iter(nets))
    return Group(inks=inks, points=points)


def nc_group(nc: NoConnect) -> Group:
    return Group(inks=[Ink(nc.rect(), "pin", nc, None)])


def explain(canvas: Canvas, g: Group) -> list[str]:
    """Why a group does not fit (for debugging placement rules)."""
    out = []
    for i, ink in enumerate(g.inks):
        probe = ink.rect.grow(BODY_GAP)
        for other in list(canvas.near(probe)) + [o for j, o in enumerate(g.inks) if j != i]:
            gap = _clearance(ink, other)
            if gap is None:
                continue
            bad = ink.rect.hits(other.rect) if gap == 0.0 else \
                ink.rect.grow(gap / 2).hits(other.rect.grow(gap / 2))
            if bad:
                out.append(f"{ink.kind} {ink.rect} of {type(ink.owner).__name__} vs {other.kind} "
                           f"{other.rect} of {getattr(other.owner, 'ref', type(other.owner).__name__)}")
    for w in g.wires:
        if not canvas.wire_ok(w, [x for x in g.wires if x is not w]):
            out.append(f"wire {w} blocked")
    for p, net in g.points:
        if canvas.points.get(key(*p), set()) - {net}:
            out.append(f"point {p} ({net}) on {canvas.points.get(key(*p))}")
    return out
