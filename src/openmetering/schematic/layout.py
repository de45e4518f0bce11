"""Drawing one function block the way a person would.

The rules work from the circuit's structure, never from references:

- An *anchor* is a chip or a connector (a part with three or more pins, or any connector).
  Every other part is a *satellite* and hangs off an anchor's pin:
  - between two rails (a decoupling capacitor): on the rail line of the chip's power pin it
    serves, wired, with its ground symbol under it;
  - between a net and a rail (pull-up, pull-down, filter capacitor, LED to ground): standing
    on that net's line, above it for a supply, below it for ground;
  - between two nets (a series resistor, a fuse, a diode): in line, the line going on past it.
- A rail is drawn with power symbols (supplies up, grounds down) at the end of short stubs.
- A net that leaves the sheet ends in a hierarchical label at the end of its line; a net
  that joins two anchors of the sheet is routed as a wire.
- Connectors stand at the sheet's outer edge, their pins facing inwards; the labels of a
  block face the sheet it talks to on the top sheet, so signals read left to right there.

Each anchor is drawn with everything that hangs off it as one group, on its own canvas;
the groups are then arranged in columns and the nets between them routed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DesignError
from . import library
from .canvas import Canvas, Group, Ink, nc_group, symbol_group, wire_ink
from .drawing import Field, Label, NoConnect, Sheet, SymbolItem, Wire
from .geometry import GRID, Rect, Transform, key, r4, snap, union_all
from .model import POWER_TYPES, Design, Net, Part, Pin
from .router import Grid, RouteError, route_net

STEP = 2 * GRID  # 100 mil: the spacing of stubs, parts and rows
STUB = STEP
MAX_REACH = 48  # steps a part may sit away from the point it hangs off
FIELD_GAP = 0.5


def power_symbol(net: Net) -> library.LibSymbol:
    """The library power symbol of a rail: the one named after it, else a generic one that
    KiCad names by its value."""
    if library.has_symbol("power", net.name):
        return library.load("power", net.name)
    return library.load("power", "GND" if net.ground else "VCC")


def is_connector(part: Part) -> bool:
    """A connector: from a connector library or with a connector's designator; a one-pin
    part (a test point) is drawn as the thing it touches, not as an edge connector."""
    if len({p.number for p in part.pins}) < 2:
        return False
    return part.libsym.lib.startswith("Connector") or part.prefix in ("J", "P", "CN", "X")


def is_anchor(part: Part) -> bool:
    return is_connector(part) or len({p.number for p in part.pins}) >= 3


def rot_for(lib_dir: tuple[int, int], want: tuple[int, int], mirror: bool = False) -> int:
    """Rotation that turns library direction lib_dir (y up) into sheet direction want."""
    for rot in (0, 90, 180, 270):
        if Transform(0, 0, rot, mirror).direction(*lib_dir) == want:
            return rot
    raise ValueError((lib_dir, want))


@dataclass(eq=False)
class Terminal:
    """One connection point of an anchor (stacked pins share one)."""

    inst: SymbolItem
    pins: list[Pin]
    point: tuple[float, float]
    dir: tuple[int, int]  # outward, on the sheet

    @property
    def net(self) -> Net | None:
        return self.pins[0].net


@dataclass
class Request:
    """A wire still to be routed: from `point` (a stub end), leaving towards `dir`."""

    net: str
    point: tuple[float, float]
    dir: tuple[int, int]


@dataclass
class Block:
    """One group: an anchor with what hangs off it, drawn on its own canvas."""

    name: str
    sheet: Sheet
    canvas: Canvas
    requests: list[Request] = field(default_factory=list)
    col: int = 0
    edge: str = ""  # "left"/"right": stands at that sheet edge
    links: set = field(default_factory=set)  # nets it shares with other blocks

    def rect(self) -> Rect:
        return self.sheet.extent() or Rect(0, 0, 0, 0)


class PlacementError(DesignError):
    pass


class NoRoomForDecoupling(PlacementError):
    def __init__(self, message: str, net: str):
        super().__init__(message)
        self.net = net


class SheetLayout:
    """Lays out the parts of one sheet."""

    def __init__(self, design: Design, sheet_name: str, parts: list[Part],
                 ports: dict[str, str], rail_ports: list[str], connector_side: str = "left",
                 loose: int = 1):
        self.design = design
        self.name = sheet_name
        self.parts = parts
        self.ports = dict(ports)  # net -> shape of the hierarchical label
        self.rail_ports = rail_ports
        self.connector_side = connector_side
        self.pwr_count = 0
        self.drawn_parts: set[str] = set()
        self.drawn_nets: set[str] = set()
        self.labelled: set[str] = set()
        self.blocks: list[Block] = []
        self.anchors = [p for p in parts if is_anchor(p)]
        self.anchors.sort(key=lambda p: (-len(p.pins), is_connector(p), p.ref))
        self.sats = [p for p in parts if not is_anchor(p)]
        self.decoupling: dict[int, list[Part]] = {}  # id(terminal) -> caps
        self.terminals: dict[str, list[Terminal]] = {}
        self.reach = MAX_REACH
        # steps between a part and what it hangs off: 1 draws tight; a tiny block is drawn
        # looser so that it does not sit as a speck on its sheet
        self.loose = loose

    # --- what hangs where -------------------------------------------------------------------
    def net_pins(self, net: Net) -> list[Pin]:
        names = {p.ref for p in self.parts}
        return [p for p in net.pins if p.part.ref in names]

    def sat_nets(self, part: Part) -> list[Net | None]:
        return [p.net for p in part.pins]

    def classify_sat(self, part: Part) -> str:
        nets = self.sat_nets(part)
        real = [n for n in nets if n is not None]
        rails = [n for n in real if n.rail]
        if len(part.pins) == 1:
            return "free" if not real or rails else "shunt"
        if len(real) == 2 and len(rails) == 2:
            return "decoupling"
        if len(rails) == 1 or (len(real) == 1):
            return "shunt"
        if not real:
            return "free"
        return "series"

    def signal_net_of_shunt(self, part: Part) -> Net | None:
        for n in self.sat_nets(part):
            if n is not None and not n.rail:
                return n
        return None

    # --- pins of an anchor -----------------------------------------------------------------------
    def anchor_item(self, part: Part, unit: int) -> SymbolItem:
        mirror = False
        if is_connector(part):
            dirs = [p.outward for p in part.libsym.unit_pins(unit) if not p.hidden]
            facing = max(set(dirs), key=dirs.count) if dirs else (1, 0)
            inward = (1, 0) if self.connector_side == "left" else (-1, 0)
            mirror = facing[1] == 0 and facing[0] != inward[0]
        return SymbolItem(part.libsym, part.ref, part.value, Transform(0, 0, 0, mirror),
                          unit=unit, footprint=part.footprint, extra=dict(part.fields),
                          key=part.ref)

    def make_terminals(self, item: SymbolItem, part: Part) -> list[Terminal]:
        by_point: dict[tuple, Terminal] = {}
        for pin in part.pins:
            if pin.lib.unit not in (0, item.unit):
                continue
            pt = item.pin_point(pin.lib)
            k = key(*pt)
            if k in by_point:
                t = by_point[k]
                if t.net is not pin.net:
                    raise PlacementError(f"{part.ref}: pins {t.pins[0].number} and {pin.number} "
                                         f"share a position but not a net")
                t.pins.append(pin)
            else:
                by_point[k] = Terminal(item, [pin], pt, item.pin_dir(pin.lib))
        return list(by_point.values())

    def assign_decoupling(self) -> None:
        """Each rail-to-rail part goes to an anchor pin on its supply rail: a chip's power
        pin first, fewest parts already there, then any anchor pin on that rail."""
        caps = [p for p in self.sats if self.classify_sat(p) == "decoupling" or
                (p.flag and p.pins[0].net is not None and p.pins[0].net.rail)]
        for cap in sorted(caps, key=lambda p: (p.flag, p.ref)):
            nets = [n for n in self.sat_nets(cap)]
            supply = next((n for n in nets if not n.ground), nets[0])
            cands = [t for ts in self.terminals.values() for t in ts if t.net is supply]

            def rank(t: Terminal):
                power = any(p.etype in POWER_TYPES for p in t.pins)
                conn = is_connector(t.pins[0].part)
                return (not power, conn, len(self.decoupling.get(id(t), [])))
            if cands:
                best = min(cands, key=rank)
                self.decoupling.setdefault(id(best), []).append(cap)
                self.drawn_parts.add(cap.ref)

    # --- small drawing helpers ---------------------------------------------------------------
    def pwr_ref(self) -> str:
        return "#PWR?"  # numbered once the whole project is drawn

    def rail_symbol(self, net: Net, point, want: tuple[int, int] | None = None) -> SymbolItem:
        """A power symbol on `point`, pointing `want` (default: supplies up, grounds down)."""
        sym = power_symbol(net)
        if want is None:
            want = (0, 1) if net.ground else (0, -1)
        lib_dir = (0, -1) if net.ground else (0, 1)
        rot = rot_for(lib_dir, want)
        s = SymbolItem(sym, self.pwr_ref(), net.name, Transform(point[0], point[1], rot),
                       key=f"pwr:{net.name}:{key(*point)}", in_bom=False)
        s.ref_field.hidden = True
        self.place_power_value(s, want)
        return s

    @staticmethod
    def place_power_value(s: SymbolItem, want) -> None:
        b = s.body()
        f = s.value_field
        w = Rect(*_box(f.text, 0, 0)).w
        x, y = s.t.x, s.t.y
        if want == (0, -1):
            f.x, f.y = x, b.y0 - FIELD_GAP - 0.45
        elif want == (0, 1):
            f.x, f.y = x, b.y1 + FIELD_GAP + 0.95
        elif want == (1, 0):
            f.x, f.y = b.x1 + FIELD_GAP + w / 2, y
        else:
            f.x, f.y = b.x0 - FIELD_GAP - w / 2, y

    def sat_item(self, part: Part, near: Pin | None, near_point, toward: tuple[int, int]) -> SymbolItem:
        """The 2-pin (or 1-pin) part placed so that pin `near` sits on near_point and the
        part extends in direction `toward` from it."""
        lp = near.lib if near is not None else part.pins[0].lib
        # the near pin's outward direction must point back at the point it hangs from
        want = (-toward[0], -toward[1])
        rot = rot_for(lp.outward, want)
        t0 = Transform(0, 0, rot)
        px, py = t0.apply(lp.x, lp.y)
        t = Transform(r4(near_point[0] - px), r4(near_point[1] - py), rot)
        return SymbolItem(part.libsym, part.ref, part.value, t, footprint=part.footprint,
                          extra=dict(part.fields), key=part.ref)

    def field_options(self, s: SymbolItem) -> list[list[tuple[float, float]]]:
        """Candidate (ref, value) centres around a symbol's body: beside a vertical part,
        above/below a horizontal one, around the corners of a chip."""
        b = s.body()
        wr = Rect(*_box(s.ref_field.text, 0, 0)).w
        wv = Rect(*_box(s.value_field.text, 0, 0)).w
        wmax = max(wr, wv)
        opts = []
        if s.libsym.power:  # a flag: only its value shows, beside it
            for side in (1, -1):
                x = (b.x1 + FIELD_GAP + wv / 2) if side > 0 else (b.x0 - FIELD_GAP - wv / 2)
                opts.append([(s.ref_field.x, s.ref_field.y), (x, b.cy)])
            opts.append([(s.ref_field.x, s.ref_field.y), (b.cx, b.y0 - FIELD_GAP - 0.45)])
            return opts
        pts = [s.pin_point(p) for p in s.pins]
        tall = len(pts) == 2 and abs(pts[0][0] - pts[1][0]) < 1e-6
        if len(s.pins) <= 2 and tall:
            for side in (1, -1):
                x = (b.x1 + FIELD_GAP + wmax / 2) if side > 0 else (b.x0 - FIELD_GAP - wmax / 2)
                opts.append([(x, b.cy - 0.9), (x, b.cy + 1.5)])
        elif len(s.pins) <= 2:
            opts.append([(b.cx, b.y0 - FIELD_GAP - 0.45), (b.cx, b.y1 + FIELD_GAP + 0.95)])
            opts.append([(b.cx, b.y0 - FIELD_GAP - 2.95), (b.cx, b.y0 - FIELD_GAP - 0.45)])
            opts.append([(b.cx, b.y1 + FIELD_GAP + 0.95), (b.cx, b.y1 + FIELD_GAP + 3.45)])
        # around the body's corners, stacked
        for dy in (0.0, -STEP, -2 * STEP, STEP, 2 * STEP):
            opts.append([(b.x0 + wr / 2, b.y0 - FIELD_GAP - 2.95 + dy),
                         (b.x0 + wv / 2, b.y0 - FIELD_GAP - 0.45 + dy)])
            opts.append([(b.x0 + wr / 2, b.y1 + FIELD_GAP + 0.95 - dy),
                         (b.x0 + wv / 2, b.y1 + FIELD_GAP + 3.45 - dy)])
            opts.append([(b.x1 - wr / 2, b.y0 - FIELD_GAP - 2.95 + dy),
                         (b.x1 - wv / 2, b.y0 - FIELD_GAP - 0.45 + dy)])
            opts.append([(b.x1 - wr / 2, b.y1 + FIELD_GAP + 0.95 - dy),
                         (b.x1 - wv / 2, b.y1 + FIELD_GAP + 3.45 - dy)])
        for side in (1, -1):
            for k in range(0, 8):
                x = (b.x1 + FIELD_GAP + wmax / 2 + k * STEP) if side > 0 else \
                    (b.x0 - FIELD_GAP - wmax / 2 - k * STEP)
                opts.append([(x, b.cy - 0.9), (x, b.cy + 1.5)])
        return opts

    def pin_nets(self, s: SymbolItem, part: Part | None) -> dict[str, str | None]:
        if part is None:  # power symbol
            return {p.number: s.value for p in s.pins}
        return {p.number: (p.net.name if p.net else None) for p in part.pins}

    def try_group(self, canvas: Canvas, syms: list[tuple[SymbolItem, Part | None]],
                  wires: list[Wire], labels: list[tuple[Label, str]] = (),
                  ncs: list[NoConnect] = (), field_syms: list[SymbolItem] = ()) -> bool:
        """Add the items if they fit, choosing field positions for `field_syms`."""
        base = Group()
        for s, part in syms:
            if s in field_syms:
                continue
            g = symbol_group(s, self.pin_nets(s, part))
            base.inks += g.inks
            base.points += g.points
        for w in wires:
            base.inks.append(wire_ink(w))
            base.points += [(w.a, w.net), (w.b, w.net)]
            base.wires.append(w)
        for lb, net in labels:
            base.inks.append(Ink(lb.rect(), "label", lb, net))
            base.points.append(((lb.x, lb.y), net))
        for nc in ncs:
            base.inks += nc_group(nc).inks
        if not canvas.group_ok(base):
            return False
        chosen = Group(inks=list(base.inks), points=list(base.points), wires=list(base.wires))
        for s in field_syms:
            part = next(p for q, p in syms if q is s)
            ok = False
            for opt in self.field_options(s):
                (s.ref_field.x, s.ref_field.y), (s.value_field.x, s.value_field.y) = opt
                g = symbol_group(s, self.pin_nets(s, part))
                trial = Group(inks=chosen.inks + g.inks, points=chosen.points + g.points,
                              wires=chosen.wires)
                if canvas.group_ok(trial):
                    chosen = trial
                    ok = True
                    break
            if not ok:
                return False
        canvas.add_group(chosen)
        return True

    # --- one anchor and everything hanging off it -----------------------------------------
    def draw_anchor(self, part: Part, unit: int) -> Block:
        """The anchor with its groups; a rail whose decoupling finds no room once the pin's
        other lines are drawn is drawn again first, its parts in line with the pin."""
        early: dict[str, bool] = {}  # rail -> its parts in line first; in the order they failed
        while True:
            state = (set(self.drawn_parts), set(self.drawn_nets), set(self.labelled))
            try:
                return self._draw_anchor(part, unit, early)
            except NoRoomForDecoupling as e:
                if early.get(e.net):
                    raise
                self.drawn_parts, self.drawn_nets, self.labelled = state
                # the first to fail goes in line; the others first, the usual way
                early[e.net] = e.net in early or not early

    def _draw_anchor(self, part: Part, unit: int, early: dict[str, bool]) -> Block:
        sheet = Sheet(name=self.name, title="")
        canvas = Canvas()
        block = Block(f"{part.ref}.{unit}", sheet, canvas)
        item = self.anchor_item(part, unit)
        item.ref_field.hidden = item.value_field.hidden = False
        sheet.symbols.append(item)
        g = symbol_group(item, self.pin_nets(item, part))
        g.inks = [i for i in g.inks if i.kind != "text"]  # its fields go where room is left
        canvas.add_group(g)
        self.drawn_parts.add(part.ref)
        terms = self.terminals[f"{part.ref}.{unit}"]
        # NC flags first, then a stub on every other terminal so no tree blocks a neighbour
        stubs: dict[int, tuple] = {}
        for t in terms:
            if t.net is None:
                nc = NoConnect(*t.point)
                sheet.no_connects.append(nc)
                canvas.add_group(nc_group(nc))
        bundles = self.bundles(terms)
        for bundle in bundles:
            ends = []
            for t in bundle:
                end = (r4(t.point[0] + t.dir[0] * STUB), r4(t.point[1] + t.dir[1] * STUB))
                w = Wire(t.point, end, t.net.name)
                sheet.wires.append(w)
                canvas.add_wire(w)
                ends.append(end)
            for a, b in zip(ends, ends[1:], strict=False):
                w = Wire(a, b, bundle[0].net.name)
                sheet.wires.append(w)
                canvas.add_wire(w)
            net = bundle[0].net
            if net.rail:
                root = max(ends, key=lambda e: e[1]) if net.ground else min(ends, key=lambda e: e[1])
            else:
                root = ends[0]
            stubs[id(bundle[0])] = (root, bundle[0].dir)
        # the simple things first (a label, a power symbol), so that what needs room to
        # grow (pull-ups, filters, decoupling) grows around them rather than over them
        def order(b):
            net = b[0].net
            if not net.rail:
                size = self.tree_size(net)
                return (0 if size == 0 else 2, size, b[0].point[1], b[0].point[0])
            caps = len(self.caps_of(b))
            if net.name in early:
                return (0.5, -list(early).index(net.name), b[0].point[1], b[0].point[0])
            return (1 if caps == 0 else 3, caps, b[0].point[1], b[0].point[0])
        lanes_made = False
        for bundle in sorted(bundles, key=order):
            net = bundle[0].net
            root, d = stubs[id(bundle[0])]
            if order(bundle)[0] >= (0.5 if early else 2) and not lanes_made:
                self.reserve_lanes(block, item, [b for b in bundles if order(b)[0] >= order(bundle)[0]], stubs,
                                   long={b[0].net.name for b in bundles} & set(early))
                lanes_made = True
            block.canvas.remove_owner(("lane", id(bundle[0])))
            if net.rail:
                caps = self.caps_of(bundle)
                if caps:
                    self.draw_comb(block, net, root, d, caps, inline_first=early.get(net.name, False))
                else:
                    self.draw_rail_end(block, net, root, d)
                continue
            if net.name in self.drawn_nets or self.owner(net) is not bundle[0]:
                block.requests.append(Request(net.name, root, d))
                block.links.add(net.name)
                continue
            self.drawn_nets.add(net.name)
            if d[1] != 0 and self.tree_size(net):
                # leaves a top/bottom pin: turn to the side with fewer neighbours on that
                # edge (away from the body's middle when even), so the line passes none
                same = [t.point[0] for t in terms if t.dir == d and t is not bundle[0]]
                right = sum(1 for x in same if x > root[0])
                left_n = sum(1 for x in same if x < root[0])
                if right != left_n:
                    turn = (1, 0) if right < left_n else (-1, 0)
                else:
                    turn = (1, 0) if root[0] >= item.body().cx else (-1, 0)
                root = self.extend(block, net.name, root, d, 1)
                d = turn
            snap = self.snapshot(block)
            try:
                self.grow_tree(block, net, root, d, came_from=None)
            except PlacementError:
                # hemmed in by its neighbours' parts (pull-ups and pull-downs on a dense
                # connector): the pin's parts are drawn as a group of their own, wired to it
                self.restore(block, snap)
                self.drawn_nets.discard(net.name)
                block.requests.append(Request(net.name, root, d))
                block.links.add(net.name)
        self.place_fields(block, item, part)
        return block

    def reserve_lanes(self, block: Block, item: SymbolItem, bundles, stubs,
                      long: set[str] = frozenset()) -> None:
        """Keep each pin that still grows a tree a straight way out past the labels of its
        side, so the first trees drawn cannot stand in the way of the later ones."""
        canvas = block.canvas
        for bundle in bundles:
            root, d = stubs[id(bundle[0])]
            if d[1] != 0:
                continue
            # how far out the things already drawn on this side reach
            span = Rect(root[0] - 60 if d[0] < 0 else root[0], root[1] - 4 * STEP,
                        root[0] if d[0] < 0 else root[0] + 60, root[1] + 4 * STEP)
            reach = 0.0
            for ink in canvas.near(span):
                r = ink.rect
                if r.hits(span) and ink.kind in ("label", "text", "body"):
                    reach = max(reach, (root[0] - r.x0) if d[0] < 0 else (r.x1 - root[0]))
            length = snap(reach + STEP, STEP) + STEP
            if bundle[0].net.name in long:  # room for a part in line with the pin
                length = max(length, snap(reach, STEP) + 6 * STEP)
            end = (r4(root[0] + d[0] * length), root[1])
            r = Rect(min(root[0], end[0]), root[1] - 0.5, max(root[0], end[0]), root[1] + 0.5)
            canvas.add_ink(Ink(r, "lane", ("lane", id(bundle[0])), bundle[0].net.name))

    def caps_of(self, bundle: list[Terminal]) -> list[Part]:
        out = []
        for t in bundle:
            out += self.decoupling.get(id(t), [])
        return out

    def bundles(self, terms: list[Terminal]) -> list[list[Terminal]]:
        """Neighbouring terminals on one side that share a net are joined at their stubs."""
        out: list[list[Terminal]] = []
        by_side: dict[tuple, list[Terminal]] = {}
        for t in terms:
            if t.net is not None:
                by_side.setdefault(t.dir, []).append(t)
        for d, ts in sorted(by_side.items()):
            along = 1 if d[1] == 0 else 0  # coordinate along the side
            ts.sort(key=lambda t: t.point[along])
            allpts = sorted((t for t in self.all_terms_on_side(ts[0], d)), key=lambda t: t.point[along])
            cur: list[Terminal] = []
            for t in allpts:
                if t.net is None:
                    if cur:
                        out.append(cur)
                    cur = []
                    continue
                if cur and cur[-1].net is t.net and abs(t.point[along] - cur[-1].point[along]) <= 2 * STEP:
                    cur.append(t)
                else:
                    if cur:
                        out.append(cur)
                    cur = [t]
            if cur:
                out.append(cur)
        return out

    def all_terms_on_side(self, t0: Terminal, d) -> list[Terminal]:
        key_ = f"{t0.inst.ref}.{t0.inst.unit}"
        return [t for t in self.terminals[key_] if t.dir == d]

    def owner(self, net: Net) -> Terminal | None:
        """The anchor terminal a net's tree is drawn from: the biggest anchor's first one."""
        for a in self.anchors:
            for k, ts in self.terminals.items():
                if not k.startswith(a.ref + "."):
                    continue
                for t in ts:
                    if t.net is net:
                        return t
        return None

    def tree_size(self, net: Net) -> int:
        n = 0
        for p in self.net_pins(net):
            if p.part.ref not in self.drawn_parts and not is_anchor(p.part):
                n += 1
        return n

    def extend(self, block: Block, net: str, point, d, steps: int) -> tuple[float, float]:
        end = (r4(point[0] + d[0] * STEP * steps), r4(point[1] + d[1] * STEP * steps))
        w = Wire(point, end, net)
        if not block.canvas.wire_ok(w):
            raise PlacementError(f"{net}: no room to extend")
        block.sheet.wires.append(w)
        block.canvas.add_wire(w)
        return end

    def draw_rail_end(self, block: Block, net: Net, root, d) -> None:
        """A power symbol at the end of a rail stub: upright where it fits, further out or
        turned outwards where the neighbours are close."""
        canvas, sheet = block.canvas, block.sheet
        upright = (0, 1) if net.ground else (0, -1)
        tries = [(self.loose - 1, upright)]
        if d[1] == 0:
            tries += [(k, upright) for k in range(1, 4)] + [(0, d)] + \
                     [(k, upright) for k in range(4, MAX_REACH)]
        else:
            tries += [(0, d)] + [(k, upright) for k in range(1, MAX_REACH)]
        for k, want in tries:
            end = (r4(root[0] + d[0] * STEP * k), r4(root[1] + d[1] * STEP * k))
            wires = [Wire(root, end, net.name)] if k else []
            if want == (-d[0], -d[1]):
                continue  # would point back over its own stub
            sym = self.rail_symbol(net, end, want)
            if self.try_group(canvas, [(sym, None)], wires):
                sheet.symbols.append(sym)
                sheet.wires += wires
                return
        raise PlacementError(f"{self.name}: no room for the {net.name} symbol at {root}")

    def draw_comb(self, block: Block, net: Net, root, d, caps: list[Part],
                  inline_first: bool = False) -> None:
        """Decoupling parts on a rail line from the pin: the line runs out from the stub
        (or, from a top/bottom pin, sideways), each part standing on it with its other rail's
        symbol at its far end, and the rail's own symbol at the line's start."""
        horizontal_pin = d[1] == 0
        if inline_first and horizontal_pin and self._inline_try(block, net, root, d, caps):
            return
        # close to the pin first: a short lift and a short line before a long either
        for near_k, lifts in ((6, range(0, 12)), (MAX_REACH, range(0, MAX_REACH))):
            for lift in lifts:
                if horizontal_pin:
                    # the line rises (a supply) or drops (a ground) out of the pin's row
                    rise = (0, 1) if net.ground else (0, -1)
                    tries = [(rise, d)]
                else:
                    tries = [(d, (1, 0)), (d, (-1, 0))]
                for lift_dir, along in tries:
                    if self._comb_try(block, net, root, lift_dir, along, lift, caps, near_k,
                                      both=not horizontal_pin):
                        return
        # a side pin hemmed in by its neighbours' rows: the last part in line with the pin,
        # its other rail's symbol at its far end
        if horizontal_pin and self._inline_try(block, net, root, d, caps):
            return
        raise NoRoomForDecoupling(f"{self.name}: no room for the decoupling of {net.name} at {root}",
                                  net.name)

    def _inline_try(self, block, net, root, d, caps) -> bool:
        hang = (0, 1) if not net.ground else (0, -1)
        *standing, last = caps
        for j in range(0, MAX_REACH // 2):
            snap = self.snapshot(block)
            # the rail's symbol on the line, j steps out, pointing the rail's usual way
            at = (r4(root[0] + d[0] * STEP * j), root[1])
            wires = [Wire(root, at, net.name)] if j else []
            sym = self.rail_symbol(net, at)
            if not self.try_group(block.canvas, [(sym, None)], wires):
                continue
            block.sheet.symbols.append(sym)
            block.sheet.wires += wires
            pos, ok = at, True
            for cap in standing + [last]:
                near = next(p for p in cap.pins if p.net is net)
                far = next(p for p in cap.pins if p is not near)
                placed = False
                for k in range(1, MAX_REACH // 2):
                    pt = (r4(pos[0] + d[0] * STEP * k), pos[1])
                    toward = d if cap is last else hang
                    c = self.sat_item(cap, near, pt, toward)
                    fpt = c.pin_point(far.lib)
                    rs = self.rail_symbol(far.net, fpt)
                    w = Wire(pos, pt, net.name)
                    if self.try_group(block.canvas, [(c, cap), (rs, None)], [w], field_syms=[c]):
                        block.sheet.symbols += [c, rs]
                        block.sheet.wires.append(w)
                        pos, placed = pt, True
                        break
                if not placed:
                    ok = False
                    break
            if ok:
                return True
            self.restore(block, snap)
        return False

    def _comb_try(self, block, net, root, d, along, lift, caps, near_k=MAX_REACH,
                  both: bool = False) -> bool:
        canvas, sheet = block.canvas, block.sheet
        # the rail line: from the stub end (lifted further along d), then along `along`
        start = (r4(root[0] + d[0] * STEP * lift), r4(root[1] + d[1] * STEP * lift))
        wires: list[Wire] = []
        if lift:
            wires.append(Wire(root, start, net.name))
        hang = (0, 1) if not net.ground else (0, -1)  # caps hang below a supply line
        trial = Canvas()
        trial.inks, trial.points, trial.wires = list(canvas.inks), dict(canvas.points), list(canvas.wires)
        trial._grid = {k: list(v) for k, v in canvas._grid.items()}
        chosen = []
        # from a top or bottom pin the line runs both ways: the parts alternate sides, so
        # that each stays as close to the pin as the one before it
        sides = [along, (-along[0], -along[1])] if both else [along]
        ends = {side: start for side in sides}
        for i, cap in enumerate(caps):
            near = next(p for p in cap.pins if p.net is net)
            far = next((p for p in cap.pins if p is not near), None)
            ok = False
            order = sides[i % len(sides):] + sides[:i % len(sides)]
            for along, k in ((a, k) for a in order for k in range(1, near_k)):
                pos = ends[along]
                pt = (r4(pos[0] + along[0] * STEP * k), r4(pos[1] + along[1] * STEP * k))
                if cap.flag:  # a power flag stands on the rail line
                    s = self.sat_item(cap, near, pt, (0, -1))
                    s.ref_field.hidden = True
                    s.in_bom = False
                    group, fields = [(s, cap)], [s]
                    rs = None
                else:
                    s = self.sat_item(cap, near, pt, hang)
                    rs = self.rail_symbol(far.net, s.pin_point(far.lib))
                    group, fields = [(s, cap), (rs, None)], [s]
                w = Wire(pos, pt, net.name)
                if self.try_group(trial, group, wires + [w], field_syms=fields):
                    chosen.append((s, rs, w))
                    wires = []
                    ends[along] = pt
                    ok = True
                    break
            if not ok:
                return False
        # the rail's own symbol at the line's start (pointing up for a supply)
        # the rail's own symbol: at the line's start, pointing its usual way or along the
        # stub; else a step past the line's far end
        along = sides[0]
        pos = ends[along]
        beyond = (r4(pos[0] + along[0] * STEP), r4(pos[1] + along[1] * STEP))
        placed_sym = None
        for at, want, extra in ((start, None, []), (start, d, []),
                                (beyond, None, [Wire(pos, beyond, net.name)])):
            if want is not None and want == (-d[0], -d[1]):
                continue
            sym = self.rail_symbol(net, at, want)
            if self.try_group(trial, [(sym, None)], extra):
                placed_sym = sym
                sheet_extra = extra
                break
        if placed_sym is None:
            return False
        sym = placed_sym
        # accepted: copy the trial canvas back
        canvas.inks, canvas.points, canvas.wires, canvas._grid = trial.inks, trial.points, trial.wires, trial._grid
        if lift:
            sheet.wires.append(Wire(root, start, net.name))
        for s, rs, w in chosen:
            sheet.symbols += [s] + ([rs] if rs is not None else [])
            sheet.wires.append(w)
        sheet.symbols.append(sym)
        sheet.wires += sheet_extra
        return True

    # --- trees on signal nets ------------------------------------------------------------------
    def members(self, net: Net, came_from: Part | None):
        shunts, series = [], []
        for p in self.net_pins(net):
            part = p.part
            if part is came_from or is_anchor(part) or part.ref in self.drawn_parts:
                continue
            kind = self.classify_sat(part)
            if kind == "series":
                series.append((part, p))
            elif kind == "shunt":
                shunts.append((part, p))
        # supply-side shunts (pull-ups) first, then filters and pull-downs
        shunts.sort(key=lambda x: (self._far_ground(x[0], x[1]), x[0].ref))
        series.sort(key=lambda x: x[0].ref)
        return shunts, series

    @staticmethod
    def _far_ground(part: Part, near: Pin) -> bool:
        far = [p for p in part.pins if p is not near]
        return bool(far and far[0].net is not None and far[0].net.ground)

    def snapshot(self, block: Block):
        c, sh = block.canvas, block.sheet
        return (list(c.inks), dict((k, set(v)) for k, v in c.points.items()), list(c.wires),
                {k: list(v) for k, v in c._grid.items()},
                [list(x) for x in (sh.symbols, sh.wires, sh.labels, sh.no_connects)],
                set(self.drawn_parts), set(self.drawn_nets), set(self.labelled),
                list(block.requests), set(block.links))

    def restore(self, block: Block, snap) -> None:
        c, sh = block.canvas, block.sheet
        c.inks, c.points, c.wires, c._grid = snap[0], snap[1], snap[2], snap[3]
        sh.symbols, sh.wires, sh.labels, sh.no_connects = snap[4]
        self.drawn_parts, self.drawn_nets, self.labelled = snap[5], snap[6], snap[7]
        block.requests, block.links = snap[8], snap[9]

    def grow_tree(self, block: Block, net: Net, root, d, came_from: Part | None) -> None:
        """draw_tree, and where the straight line is blocked near the pin (dense pins on
        one side of a chip), a jog out of the pin's row: out a few steps, then up or down
        to where the tree has room."""
        tries = [(0, 0, 14)]
        jogs = []
        for out in range(0, 16):
            for j in range(1, 12):
                for sign in (-1, 1):
                    jogs.append((out + 1.5 * j, out, sign * j))
        tries += [(o, j, 10) for _c, o, j in sorted(jogs)] + [(0, 0, MAX_REACH)]
        for out, jog, reach in tries:
            snap = self.snapshot(block)
            try:
                start = root
                if jog:
                    corner = (r4(root[0] + d[0] * STEP * out), r4(root[1] + d[1] * STEP * out))
                    # the jog runs across d
                    perp = (abs(d[1]), abs(d[0]))
                    end = (r4(corner[0] + perp[0] * STEP * jog), r4(corner[1] + perp[1] * STEP * jog))
                    w1, w2 = Wire(root, corner, net.name), Wire(corner, end, net.name)
                    g = Group(inks=[wire_ink(w1), wire_ink(w2)],
                              points=[(root, net.name), (corner, net.name), (end, net.name)],
                              wires=[w1, w2])
                    if not block.canvas.group_ok(g):
                        continue
                    block.canvas.add_group(g)
                    block.sheet.wires += [w1, w2]
                    start = end
                self.reach = reach
                self.draw_tree(block, net, start, d, came_from)
                self.reach = MAX_REACH
                return
            except PlacementError:
                self.restore(block, snap)
            finally:
                self.reach = MAX_REACH
        raise PlacementError(f"{self.name}: no room for the parts on {net.name}")

    def draw_tree(self, block: Block, net: Net, root, d, came_from: Part | None) -> None:
        """From `root`, a line towards d: shunts standing on it, then the series part in line
        (and its own net beyond it), or the hierarchical label if the net leaves the sheet."""
        shunts, series = self.members(net, came_from)
        if len(shunts) == 1 and not series and net.name not in self.ports:
            part, near = shunts[0]
            far = [p for p in part.pins if p is not near]
            if far and far[0].net is not None and not far[0].net.ground and len(part.pins) == 2:
                # the end of a chain into a supply (a diode, a switch): in line, not standing
                shunts, series = [], [(part, near)]
        end = root
        if net.name not in self.ports and net.name not in self.labelled and d[1] == 0:
            # a local net is named where its line starts (further out where neighbouring
            # labels crowd the pin); the parts keep clear of the text
            for k in range(0, 10):
                pt = (r4(root[0] + d[0] * STEP * k), root[1])
                lb = Label("local", net.name, pt[0], pt[1], "right" if d[0] > 0 else "left")
                wires = [Wire(root, pt, net.name)] if k else []
                if self.try_group(block.canvas, [], wires, labels=[(lb, net.name)]):
                    block.sheet.labels.append(lb)
                    block.sheet.wires += wires
                    self.labelled.add(net.name)
                    end = root = pt
                    break
        for part, near in shunts:
            end = self.place_shunt(block, net, end, d, part, near)
        if series:
            part, near = series[0]
            end2 = self.place_series(block, net, end, d, part, near)
            for part2, near2 in series[1:]:
                self.place_branch_series(block, net, end, d, part2, near2)
            if net.name in self.ports and net.name not in self.labelled:
                self.place_branch_port(block, net, end, d)
            del end2
        elif net.name in self.ports and net.name not in self.labelled:
            self.place_port(block, net, end, d)

    def place_shunt(self, block: Block, net: Net, start, d, part: Part, near: Pin):
        far = [p for p in part.pins if p is not near]
        far_net = far[0].net if far else None
        up = far_net is None or not far_net.ground
        hang = (0, -1) if up else (0, 1)
        self.drawn_parts.add(part.ref)
        for k in range(0 if start is None else self.loose, self.reach):
            pt = (r4(start[0] + d[0] * STEP * k), r4(start[1] + d[1] * STEP * k))
            # the rail symbol right on the far pin, or a step out where the part's own
            # drawing (an LED's arrows) would touch it
            for ext in (0, 1):
                s = self.sat_item(part, near, pt, hang)
                syms = [(s, part)]
                ncs = []
                wires = [Wire(start, pt, net.name)] if k else []
                if far:
                    fpt = s.pin_point(far[0].lib)
                    if far_net is None:
                        if ext:
                            continue
                        ncs.append(NoConnect(*fpt))
                    else:
                        rpt = (fpt[0], r4(fpt[1] + hang[1] * STEP * ext))
                        if ext:
                            wires.append(Wire(fpt, rpt, far_net.name))
                        syms.append((self.rail_symbol(far_net, rpt), None))
                elif ext:
                    continue
                if self.try_group(block.canvas, syms, wires, ncs=ncs, field_syms=[s]):
                    block.sheet.symbols += [x for x, _ in syms]
                    block.sheet.wires += wires
                    block.sheet.no_connects += ncs
                    return pt
        raise PlacementError(f"{self.name}: no room for {part.ref} on {net.name}")

    def place_series(self, block: Block, net: Net, start, d, part: Part, near: Pin):
        far = next(p for p in part.pins if p is not near)
        self.drawn_parts.add(part.ref)
        for k in range(self.loose, self.reach):
            pt = (r4(start[0] + d[0] * STEP * k), r4(start[1] + d[1] * STEP * k))
            s = self.sat_item(part, near, pt, d)
            wires = [Wire(start, pt, net.name)]
            if self.try_group(block.canvas, [(s, part)], wires, field_syms=[s]):
                block.sheet.symbols.append(s)
                block.sheet.wires += wires
                fpt = s.pin_point(far.lib)
                fnet = far.net
                if fnet is None:
                    nc = NoConnect(*fpt)
                    block.sheet.no_connects.append(nc)
                    block.canvas.add_group(nc_group(nc))
                elif fnet.rail:
                    self.draw_rail_end(block, fnet, fpt, d)
                elif fnet.name in self.drawn_nets or self.anchor_grows(fnet):
                    # drawn already, or a chip of the sheet grows it from its own pin (a
                    # transistor's source among its resistors): the two are wired later
                    block.requests.append(Request(fnet.name, fpt, d))
                    block.links.add(fnet.name)
                else:
                    self.drawn_nets.add(fnet.name)
                    if self.has_remote(fnet):
                        block.links.add(fnet.name)
                    self.draw_tree(block, fnet, fpt, d, came_from=part)
                return pt
        raise PlacementError(f"{self.name}: no room for {part.ref} on {net.name}")

    def anchor_grows(self, net: Net) -> bool:
        """A net that an anchor of the sheet draws from its pin, with more hanging on it
        than the one part in line (its tree is the anchor's, not the satellite's) or nothing
        else (the two are wired)."""
        return self.owner(net) is not None and self.tree_size(net) != 1

    def has_remote(self, net: Net) -> bool:
        return any(is_anchor(p.part) for p in self.net_pins(net))

    def place_branch_series(self, block, net, start, d, part, near):
        """A second series part: a branch off the line (below it, else above it where a
        part hanging off the line to ground stands in the way), then out in direction d."""
        sides = [(0, 1), (0, -1)] if d[1] == 0 else [(1, 0), (-1, 0)]
        for side in sides:
            for drop in range(1, MAX_REACH):
                corner = (r4(start[0] + side[0] * STEP * drop), r4(start[1] + side[1] * STEP * drop))
                w = Wire(start, corner, net.name)
                if not block.canvas.wire_ok(w, crossings=False):
                    continue
                snap = self.snapshot(block)
                block.canvas.add_wire(w)
                block.sheet.wires.append(w)
                try:
                    self.place_series(block, net, corner, d, part, near)
                    return
                except PlacementError:
                    self.restore(block, snap)
        raise PlacementError(f"{self.name}: no room for {part.ref}")

    def port_label(self, net: Net, point, d) -> Label:
        side = {(1, 0): "right", (-1, 0): "left", (0, -1): "up", (0, 1): "down"}[d]
        return Label("hier", net.name, point[0], point[1], side, self.ports[net.name])

    def place_port(self, block: Block, net: Net, start, d) -> None:
        bare = self._point_has_pin(block, start) == 0 and self._point_has_wire_end(block, start) == 1
        for k in range(0 if bare else self.loose, self.reach):
            pt = (r4(start[0] + d[0] * STEP * k), r4(start[1] + d[1] * STEP * k))
            wires = [Wire(start, pt, net.name)] if k else []
            lb = self.port_label(net, pt, d)
            if self.try_group(block.canvas, [], wires, labels=[(lb, net.name)]):
                block.sheet.wires += wires
                block.sheet.labels.append(lb)
                self.labelled.add(net.name)
                return
        raise PlacementError(f"{self.name}: no room for the label {net.name}")

    @staticmethod
    def _point_has_pin(block, p) -> int:
        k = key(*p)
        return sum(1 for s in block.sheet.symbols for q in s.pins if key(*s.pin_point(q)) == k)

    def _point_has_wire_end(self, block, p) -> int:
        k = key(*p)
        return sum(1 for w in block.canvas.wires if key(*w.a) == k or key(*w.b) == k)

    def place_branch_port(self, block, net, start, d) -> None:
        """The net leaves the sheet and also goes on in line: the label on a branch above."""
        for rise in range(1, MAX_REACH):
            corner = (start[0], r4(start[1] - STEP * rise))
            w = Wire(start, corner, net.name)
            if not block.canvas.wire_ok(w, crossings=False):
                continue
            for k in range(1, MAX_REACH // 2):
                pt = (r4(corner[0] + d[0] * STEP * k), corner[1])
                w2 = Wire(corner, pt, net.name)
                lb = self.port_label(net, pt, d)
                if self.try_group(block.canvas, [], [w, w2], labels=[(lb, net.name)]):
                    block.sheet.wires += [w, w2]
                    block.sheet.labels.append(lb)
                    self.labelled.add(net.name)
                    return
        raise PlacementError(f"{self.name}: no room for the label {net.name}")

    def place_fields(self, block: Block, item: SymbolItem, part: Part) -> None:
        canvas = block.canvas
        lib_default = _lib_field_centres(item)
        for opt in [lib_default] + self.field_options(item):
            (item.ref_field.x, item.ref_field.y), (item.value_field.x, item.value_field.y) = opt
            inks = [Ink(r, "text", item) for r in item.field_rects()]
            if all(canvas.ink_ok(i, [o for o in inks if o is not i]) for i in inks):
                for i in inks:
                    canvas.add_ink(i)
                return
        raise PlacementError(f"{self.name}: no room for the reference and value of {part.ref}")

    # --- groups without an anchor ---------------------------------------------------------------
    def draw_port_chain(self, net: Net, d) -> Block:
        """A net that enters the sheet and only meets satellites here (an LED and its
        resistor): the label stands at the sheet edge and the chain goes on from it."""
        sheet = Sheet(name=self.name, title="")
        block = Block(f"port:{net.name}", sheet, Canvas())
        self.drawn_nets.add(net.name)
        side = "left" if d == (1, 0) else "right"
        lb = Label("hier", net.name, 0.0, 0.0, side, self.ports[net.name])
        block.canvas.add_ink(Ink(lb.rect(), "label", lb, net.name))
        block.canvas.add_point((0.0, 0.0), net.name)
        sheet.labels.append(lb)
        self.labelled.add(net.name)
        start = (0.0, 0.0)
        first = (r4(d[0] * STEP), 0.0)
        w = Wire(start, first, net.name)
        block.canvas.add_wire(w)
        sheet.wires.append(w)
        self.draw_tree(block, net, first, d, came_from=None)
        block.edge = "left" if d == (1, 0) else "right"
        return block

    def draw_free(self, part: Part) -> Block:
        """A part on rails only (a test point) or on nothing (a mounting hole)."""
        sheet = Sheet(name=self.name, title="")
        block = Block(f"free:{part.ref}", sheet, Canvas())
        self.drawn_parts.add(part.ref)
        real = [p for p in part.pins if p.net is not None]
        if part.flag and real:
            # a power flag beside its rail's symbol, joined by a short wire
            net = real[0].net
            flag = SymbolItem(part.libsym, part.ref, part.value, Transform(3 * STEP, 0.0),
                              key=part.ref, in_bom=False)
            flag.ref_field.hidden = True
            wv = Rect(*_box(part.value, 0, 0)).w
            flag.value_field.x, flag.value_field.y = r4(3 * STEP + 1.6 + wv / 2), -1.6
            rs = self.rail_symbol(net, (0.0, 0.0)) if net.rail else None
            w = Wire((0.0, 0.0), (3 * STEP, 0.0), net.name)
            syms = [(flag, part)] + ([(rs, None)] if rs else [])
            if not self.try_group(block.canvas, syms, [w]):
                raise PlacementError(f"{self.name}: cannot draw {part.ref}")
            sheet.symbols += [x for x, _ in syms]
            sheet.wires.append(w)
        elif len(part.pins) == 1 and real:
            net = real[0].net
            toward = (0, 1) if net.ground else (0, -1)
            # stand the part off its rail: the pin faces the rail symbol
            s = self.sat_item(part, real[0], (0.0, 0.0), (-toward[0], -toward[1]))
            end = (0.0, r4(toward[1] * STEP))
            rs = self.rail_symbol(net, end)
            w = Wire((0.0, 0.0), end, net.name)
            if not self.try_group(block.canvas, [(s, part), (rs, None)], [w], field_syms=[s]):
                raise PlacementError(f"{self.name}: cannot draw {part.ref}")
            sheet.symbols += [s, rs]
            sheet.wires.append(w)
        elif len(part.pins) == 2 and len(real) == 2:
            # a two-rail part with no anchor pin on its rail: standing between its symbols
            near = next((p for p in part.pins if not p.net.ground), part.pins[0])
            far = next(p for p in part.pins if p is not near)
            s = self.sat_item(part, near, (0.0, 0.0), (0, 1))
            rs1 = self.rail_symbol(near.net, (0.0, 0.0))
            rs2 = self.rail_symbol(far.net, s.pin_point(far.lib))
            if not self.try_group(block.canvas, [(s, part), (rs1, None), (rs2, None)], [],
                                  field_syms=[s]):
                raise PlacementError(f"{self.name}: cannot draw {part.ref}")
            sheet.symbols += [s, rs1, rs2]
        else:
            s = SymbolItem(part.libsym, part.ref, part.value, Transform(0, 0), footprint=part.footprint,
                           extra=dict(part.fields), key=part.ref)
            ncs = [NoConnect(*s.pin_point(p.lib)) for p in part.pins]
            if not self.try_group(block.canvas, [(s, part)], [], ncs=ncs, field_syms=[s]):
                raise PlacementError(f"{self.name}: cannot draw {part.ref}")
            sheet.symbols.append(s)
            sheet.no_connects += ncs
        return block

    def draw_orphan(self, net: Net) -> Block:
        """Satellites joined by a net no anchor or port reaches: drawn from a free line."""
        sheet = Sheet(name=self.name, title="")
        block = Block(f"net:{net.name}", sheet, Canvas())
        self.drawn_nets.add(net.name)
        a, b = (0.0, 0.0), (STEP, 0.0)
        w = Wire(a, b, net.name)
        block.canvas.add_wire(w)
        sheet.wires.append(w)
        self.draw_tree(block, net, b, (1, 0), came_from=None)
        return block

    def attach_rail_ports(self, sheet: Sheet, canvas: Canvas) -> list[tuple[str, str]]:
        """The rails this sheet takes from (or gives to) the others get a hierarchical label,
        so that the top sheet can show where power flows: wired to one of the rail's power
        symbols already drawn (the top-most that has room). Returns the rails left over."""
        left = []
        for name, shape in self.rail_ports:
            syms = sorted((s for s in sheet.symbols if s.libsym.power and s.value == name
                           and not s.ref.startswith("#FLG")),
                          key=lambda s: (s.t.y, s.t.x))
            # at one of its power symbols, else at an end of one of its wires (the far end
            # of a decoupling line): an output on the right, an input on the left
            ends = sorted({w_end for w in sheet.wires if w.net == name for w_end in (w.a, w.b)},
                          key=lambda q: (-q[0] if shape == "output" else q[0], q[1]))
            points = [s.pin_point(s.pins[0]) for s in syms] + ends
            done = False
            for p in points:
                busy = {d for w in sheet.wires if w.net == name for d in _dirs_at(w, p)}
                for s_ in sheet.symbols:
                    for q in s_.pins:
                        if key(*s_.pin_point(q)) == key(*p):
                            ox, oy = s_.pin_dir(q)
                            busy.add((-ox, -oy))  # the pin (or the power symbol) runs that way
                up = None
                for k in (2, 3, 4):
                    for d in (((1, 0), (-1, 0)) if shape == "output" else ((-1, 0), (1, 0))):
                        if d in busy or d == up:
                            continue
                        end = (r4(p[0] + d[0] * STEP * k), r4(p[1] + d[1] * STEP * k))
                        side = {(1, 0): "right", (-1, 0): "left", (0, -1): "up", (0, 1): "down"}[d]
                        if side in ("up", "down"):
                            continue  # labels read level
                        lb = Label("hier", name, end[0], end[1], side, shape)
                        w = Wire(p, end, name)
                        if self.try_group(canvas, [], [w], labels=[(lb, name)]):
                            sheet.wires.append(w)
                            sheet.labels.append(lb)
                            done = True
                            break
                    if done:
                        break
                if done:
                    break
            if not done:
                left.append((name, shape))
        return left

    def draw_power_entry(self, rails=None) -> Block | None:
        """Rails with no power symbol that has room for their label: a hierarchical label on
        each, wired to a symbol of the rail, in a corner of the sheet."""
        if rails is not None:
            self.rail_ports = rails
        if not self.rail_ports:
            return None
        sheet = Sheet(name=self.name, title="")
        block = Block("power-entry", sheet, Canvas())
        y = 0.0
        for name, shape in self.rail_ports:
            net = self.design.net(name)
            lb = Label("hier", name, 0.0, y, "left", shape)
            end = (STEP * 2, y)
            w = Wire((0.0, y), end, name)
            rs = self.rail_symbol(net, end)
            for _ in range(20):
                if self.try_group(block.canvas, [(rs, None)], [w], labels=[(lb, name)]):
                    break
                y += STEP
                lb = Label("hier", name, 0.0, y, "left", shape)
                end = (STEP * 2, y)
                w = Wire((0.0, y), end, name)
                rs = self.rail_symbol(net, end)
            else:
                raise PlacementError(f"{self.name}: no room for the {name} entry")
            sheet.labels.append(lb)
            sheet.wires.append(w)
            sheet.symbols.append(rs)
            y += 3 * STEP
        block.edge = "top"
        return block

    # --- the whole sheet ---------------------------------------------------------------------------
    def run(self) -> Sheet:
        for a in self.anchors:
            units = sorted({p.lib.unit for p in a.pins} - {0}) or [1]
            for u in units:
                item = self.anchor_item(a, u)
                self.terminals[f"{a.ref}.{u}"] = self.make_terminals(item, a)
        self.assign_decoupling()
        for a in self.anchors:
            units = sorted({p.lib.unit for p in a.pins} - {0}) or [1]
            for u in units:
                b = self.draw_anchor(a, u)
                if is_connector(a):
                    b.edge = self.connector_side
                self.blocks.append(b)
        inward = (1, 0) if self.port_side == "left" else (-1, 0)
        for net_name in sorted(self.ports):
            net = self.design.net(net_name)
            if net_name not in self.drawn_nets and self.net_pins(net):
                self.blocks.append(self.draw_port_chain(net, inward))
        for part in sorted(self.sats, key=lambda p: p.ref):
            if part.ref in self.drawn_parts:
                continue
            kind = self.classify_sat(part)
            if kind in ("free", "decoupling"):
                self.blocks.append(self.draw_free(part))
        for part in sorted(self.sats, key=lambda p: p.ref):
            if part.ref in self.drawn_parts:
                continue
            net = next(p.net for p in part.pins if p.net is not None and not p.net.rail)
            self.blocks.append(self.draw_orphan(net))
        return self.blocks

    def run_blocks(self) -> list[Block]:
        blocks = self.run()
        for b in blocks:
            b.canvas = None  # only the drawing and its open ends go on to the arrangement
        return blocks

    @property
    def port_side(self) -> str:
        return "right" if self.connector_side == "left" else "left"


def font_label_len(text: str) -> float:
    from .font import label_box

    x0, _y0, x1, _y1 = label_box("local", text, 0.0, 0.0, "right")
    return x1


def _dirs_at(w: Wire, p) -> list[tuple[int, int]]:
    """Directions in which wire w leaves point p (if it touches p at an end)."""
    out = []
    for a, b in ((w.a, w.b), (w.b, w.a)):
        if key(*a) == key(*p):
            dx, dy = b[0] - a[0], b[1] - a[1]
            out.append(((dx > 0) - (dx < 0), (dy > 0) - (dy < 0)))
    return out


def _box(text, x, y):
    from .font import ink_box

    return ink_box(text, x, y)


def _lib_field_centres(item: SymbolItem) -> list[tuple[float, float]]:
    """The library's field positions, as centres of the text (the library gives anchors
    with a justification; the sheet uses centred fields)."""
    out = []
    for f in (item.ref_field, item.value_field):
        lx, ly, _a = item.libsym.fields.get(f.name, (0.0, 0.0, 0))
        just = _lib_justify(item.libsym, f.name)
        w = Rect(*_box(f.text, 0, 0)).w
        if item.t.mirror_y:
            just = {"left": "right", "right": "left"}.get(just, just)
        x, y = item.t.apply(lx, ly)
        if just == "left":
            x += w / 2
        elif just == "right":
            x -= w / 2
        out.append((r4(x), r4(y)))
    return out


def _lib_justify(sym: library.LibSymbol, name: str) -> str:
    from .. import sexpr

    for prop in sexpr.children(sym.tree, "property"):
        if prop[1] == name:
            eff = sexpr.child(prop, "effects")
            j = sexpr.child(eff, "justify") if eff is not None else None
            if j is not None:
                for v in j[1:]:
                    if v in ("left", "right"):
                        return v
    return "center"


# --- arranging the groups on the sheet ------------------------------------------------------------
COL_GAP = 4 * STEP
ROW_GAP = 2 * STEP


def arrange_blocks(lay: SheetLayout, blocks: list[Block], spread: float = 1.0) -> Sheet:
    col_gap = COL_GAP * spread
    row_gap = ROW_GAP * spread
    # columns: connectors at their edge, chips after them in the order the nets reach them,
    # groups that start at a port at the port edge, loose parts at the bottom
    link_of: dict[str, set[int]] = {}
    for i, b in enumerate(blocks):
        for n in b.links | {r.net for r in b.requests}:
            link_of.setdefault(n, set()).add(i)
    adj = {i: set() for i in range(len(blocks))}
    for ids in link_of.values():
        for i in ids:
            adj[i] |= ids - {i}
    edge_l = [i for i, b in enumerate(blocks) if b.edge == "left"]
    edge_r = [i for i, b in enumerate(blocks) if b.edge == "right"]
    free = [i for i, b in enumerate(blocks) if b.name.startswith("free:")]
    inner = [i for i in range(len(blocks)) if i not in edge_l + edge_r + free]
    # distance from the left-edge groups through the links
    start = edge_l or ([] if not inner else [inner[0]])
    dist = {i: 0 for i in start}
    frontier = list(start)
    while frontier:
        nxt = []
        for i in frontier:
            for j in sorted(adj[i]):
                if j not in dist:
                    dist[j] = dist[i] + 1
                    nxt.append(j)
        frontier = nxt
    cols: dict[int, list[int]] = {}
    base = 1 if edge_l else 0
    for i in inner:
        c = dist.get(i, base) if edge_l else dist.get(i, 0)
        cols.setdefault(max(c, base), []).append(i)
    if edge_l:
        cols[0] = edge_l
    last = max(cols) + 1 if cols else 0
    if edge_r:
        cols[last] = edge_r
    ordered = [cols[c] for c in sorted(cols)]

    sheet = Sheet(name=lay.name, title="")

    def net_ys(b: Block) -> dict[str, float]:
        """Where (local y) each net leaves a group: its open ends, else its wires."""
        ys: dict[str, list[float]] = {}
        for r in b.requests:
            ys.setdefault(r.net, []).append(r.point[1])
        for w in b.sheet.wires:
            if w.net in b.links and w.net not in {r.net for r in b.requests}:
                ys.setdefault(w.net, []).append((w.a[1] + w.b[1]) / 2)
        return {n: sum(v) / len(v) for n, v in ys.items()}

    x = 0.0
    placed: list[tuple[Block, float, float]] = []
    at_y: dict[str, list[float]] = {}  # net -> sheet y of its placed open ends
    for col in ordered:
        rects = {i: blocks[i].rect() for i in col}
        width = max(r.w for r in rects.values())
        # a group sits level with the groups it is wired to, as far as the others allow
        wants = {}
        for i in col:
            ys = net_ys(blocks[i])
            pairs = [(sum(at_y[n]) / len(at_y[n]), y) for n, y in ys.items() if n in at_y]
            if pairs:
                wants[i] = sum(a - b for a, b in pairs) / len(pairs)
        order = sorted(col, key=lambda i: (wants.get(i, 1e9), col.index(i)))
        y = None
        for i in order:
            b, r = blocks[i], rects[i]
            top = (wants[i] + r.y0) if i in wants else (0.0 if y is None else y)
            if y is not None:
                top = max(top, y)
            bx = x + (width - r.w if b.edge == "right" else 0.0)
            dx, dy = snap(bx - r.x0, STEP), snap(top - r.y0, STEP)
            placed.append((b, dx, dy))
            for n, ly in net_ys(b).items():
                at_y.setdefault(n, []).append(ly + dy)
            y = r.y1 + dy + row_gap + STEP
        x += width + col_gap + STEP * max(1, len({n for i in col for n in blocks[i].links}) // 2)
    # loose parts in a row under everything
    if free:
        bottom = max((blocks[i].rect().move(dx, dy).y1 for b_, dx, dy in placed
                      for i in [blocks.index(b_)]), default=0.0) + row_gap * 2
        fx = 0.0
        for i in free:
            r = blocks[i].rect()
            placed.append((blocks[i], snap(fx - r.x0, STEP), snap(bottom - r.y0, STEP)))
            fx += r.w + 3 * STEP * spread * lay.loose
    canvas = Canvas()
    requests: list[Request] = []
    for b, dx, dy in placed:
        b.sheet.move(dx, dy)
        merge(sheet, b.sheet)
        for r in b.requests:
            requests.append(Request(r.net, (r4(r.point[0] + dx), r4(r.point[1] + dy)), r.dir))
    rebuild_canvas(lay, sheet, canvas)
    rest = lay.attach_rail_ports(sheet, canvas)
    if rest:
        saved = lay.rail_ports
        entry = lay.draw_power_entry(rest)
        lay.rail_ports = saved
        entry.canvas = None
        r = entry.rect()
        ext = sheet.extent() or Rect(0, 0, 0, 0)
        entry.sheet.move(snap(ext.x0 - r.x0, STEP), snap(ext.y0 - ROW_GAP * 2 - r.y1, STEP))
        merge(sheet, entry.sheet)
        canvas = Canvas()
        rebuild_canvas(lay, sheet, canvas)
    route_requests(lay, sheet, canvas, requests)
    name_nets(lay, sheet, canvas)
    finish(sheet)
    return sheet


def merge(into: Sheet, other: Sheet) -> None:
    into.symbols += other.symbols
    into.wires += other.wires
    into.junctions += other.junctions
    into.no_connects += other.no_connects
    into.labels += other.labels
    into.texts += other.texts


def rebuild_canvas(lay: SheetLayout, sheet: Sheet, canvas: Canvas) -> None:
    parts = {p.ref: p for p in lay.parts}
    for s in sheet.symbols:
        part = parts.get(s.ref) if not s.libsym.power else None
        canvas.add_symbol(s, lay.pin_nets(s, part))
    for w in sheet.wires:
        canvas.add_wire(w)
    for lb in sheet.labels:
        canvas.add_ink(Ink(lb.rect(), "label", lb, lb.text))
        canvas.add_point((lb.x, lb.y), lb.text)
    for nc in sheet.no_connects:
        canvas.add_group(nc_group(nc))


def route_requests(lay: SheetLayout, sheet: Sheet, canvas: Canvas, requests: list[Request]) -> None:
    if not requests:
        return
    area = (sheet.extent() or Rect(0, 0, 10, 10)).grow(12 * STEP)
    grid = Grid(canvas, area)
    by_net: dict[str, list[Request]] = {}
    for r in requests:
        by_net.setdefault(r.net, []).append(r)
    for net in sorted(by_net, key=lambda n: (len(by_net[n]), n)):
        reqs = by_net[net]
        try:
            wires = route_net(grid, net, [(r.point, r.dir) for r in reqs])
        except RouteError:
            # no clean path: name both ends with a label instead of a tangle
            for r in reqs:
                label_stub(lay, sheet, canvas, net, r)
            label_pieces(net, sheet, canvas, lay.name)
            continue
        sheet.wires += wires
        for w in wires:
            canvas.add_wire(w)


def label_stub(lay, sheet, canvas, net, r: Request) -> None:
    side = {(1, 0): "right", (-1, 0): "left", (0, -1): "up", (0, 1): "down"}[r.dir]
    lb = Label("local", net, r.point[0], r.point[1], side)
    sheet.labels.append(lb)
    canvas.add_ink(Ink(lb.rect(), "label", lb, net))
    lay.labelled.add(net)


def name_nets(lay: SheetLayout, sheet: Sheet, canvas: Canvas) -> None:
    label_nets({n.name for n in lay.design.nets if n.rail}, sheet, canvas, lay.name)


def label_nets(rails: set[str], sheet: Sheet, canvas: Canvas, where: str) -> None:
    """KiCad names a net after a label on it: give every net that has none a local label,
    on a horizontal stretch of its wire where the text fits (so no net is auto-named)."""
    nets = {w.net for w in sheet.wires}
    have = {lb.text for lb in sheet.labels}
    for net in sorted(nets - rails - have):
        _label_wires(net, [w for w in sheet.wires if w.net == net], sheet, canvas, where)


def label_pieces(net: str, sheet: Sheet, canvas: Canvas, where: str) -> None:
    """A net drawn in pieces (a route that found no way): a label on each piece that has
    none, so that the pieces join by name."""
    wires = [w for w in sheet.wires if w.net == net]
    pieces: list[list[Wire]] = []
    for w in wires:
        touching = [p for p in pieces if any(_touch(w, o) for o in p)]
        merged = [w] + [o for p in touching for o in p]
        pieces = [p for p in pieces if p not in touching] + [merged]
    from .geometry import on_segment

    for piece in pieces:
        if not any(lb.text == net and any(on_segment((lb.x, lb.y), w.a, w.b) for w in piece)
                   for lb in sheet.labels):
            _label_wires(net, piece, sheet, canvas, where)


def _touch(a: Wire, b: Wire) -> bool:
    from .geometry import on_segment

    return any(on_segment(p, b.a, b.b) for p in (a.a, a.b)) or \
        any(on_segment(p, a.a, a.b) for p in (b.a, b.b))


def _label_wires(net: str, wires: list[Wire], sheet: Sheet, canvas: Canvas, where: str) -> None:
    if True:
        segs = sorted(wires, key=lambda w: -abs(w.a[0] - w.b[0]))
        done = False
        for w in segs:
            if w.a[1] != w.b[1]:
                continue
            x0, x1 = sorted((w.a[0], w.b[0]))
            xs = []
            x = snap(x0, GRID)
            while x <= x1 + 1e-6:
                xs.append(r4(x))
                x += GRID
            # centred on the stretch where it fits, else as near the middle as it can
            width = font_label_len(net)
            mid = (x0 + x1 - width) / 2
            xs.sort(key=lambda v: abs(v - mid))
            for x in xs:
                lb = Label("local", net, x, w.a[1], "right")
                ink = Ink(lb.rect(), "label", lb, net)
                if lb.rect().x1 > x1 + 0.01:
                    continue
                if canvas.ink_ok(ink):
                    sheet.labels.append(lb)
                    canvas.add_ink(ink)
                    done = True
                    break
            if done:
                break
        if not done:
            for w in segs:
                if w.a[0] != w.b[0]:
                    continue
                y0, y1 = sorted((w.a[1], w.b[1]))
                y = snap(y1, GRID)
                while y >= y0 - 1e-6:
                    lb = Label("local", net, w.a[0], r4(y), "up")
                    if lb.rect().y0 >= y0 - 0.01 and canvas.ink_ok(Ink(lb.rect(), "label", lb, net)):
                        sheet.labels.append(lb)
                        canvas.add_ink(Ink(lb.rect(), "label", lb, net))
                        done = True
                        break
                    y -= GRID
                if done:
                    break
        if not done:
            raise PlacementError(f"{where or 'top sheet'}: no room to name net {net}")


def finish(sheet: Sheet) -> None:
    """Split wires where something connects in their middle, and put a junction dot where
    three or more wire ends meet."""
    points: list[tuple[float, float]] = []
    for s in sheet.symbols:
        points += [s.pin_point(p) for p in s.pins]
    for w in sheet.wires:
        points += [w.a, w.b]
    points += [(lb.x, lb.y) for lb in sheet.labels]
    changed = True
    wires = list(sheet.wires)
    while changed:
        changed = False
        out = []
        for w in wires:
            cut = None
            for p in points:
                if key(*p) in (key(*w.a), key(*w.b)):
                    continue
                from .geometry import on_segment

                if on_segment(p, w.a, w.b):
                    cut = p
                    break
            if cut is None:
                out.append(w)
            else:
                out += [Wire(w.a, cut, w.net), Wire(cut, w.b, w.net)]
                changed = True
        wires = out
    # drop zero-length and duplicate wires
    seen = set()
    final = []
    for w in wires:
        k = tuple(sorted((key(*w.a), key(*w.b))))
        if k[0] == k[1] or k in seen:
            continue
        seen.add(k)
        final.append(w)
    # a wire end that meets nothing (a stub a route joined part-way along) is cut back
    anchors = {key(*s.pin_point(p)) for s in sheet.symbols for p in s.pins}
    anchors |= {key(lb.x, lb.y) for lb in sheet.labels}
    anchors |= {key(p.x, p.y) for b in sheet.boxes for p in b.pins}
    while True:
        ends: dict[tuple, int] = {}
        for w in final:
            for p in (w.a, w.b):
                ends[key(*p)] = ends.get(key(*p), 0) + 1
        dead = [w for w in final if any(ends[key(*p)] == 1 and key(*p) not in anchors
                                        for p in (w.a, w.b))]
        if not dead:
            break
        final = [w for w in final if w not in dead]
    sheet.wires = final
    count: dict[tuple, int] = {}
    for w in final:
        for p in (w.a, w.b):
            count[key(*p)] = count.get(key(*p), 0) + 1
    pins = {}
    for s in sheet.symbols:
        for p in s.pins:
            k = key(*s.pin_point(p))
            pins[k] = pins.get(k, 0) + 1
    sheet.junctions = []
    for k, n in sorted(count.items()):
        if n + (1 if k in pins else 0) >= 3:
            from .drawing import Junction

            sheet.junctions.append(Junction(r4(k[0] / 1e4), r4(k[1] / 1e4)))


__all__ = ["SheetLayout", "PlacementError", "union_all", "Field"]
