"""The top sheet: the function blocks as a block diagram.

Each block is a hierarchical sheet box. The block most signals meet (the hub) stands in the
middle; the blocks that talk to its left-hand pins stand in a column on its left, the others
on its right, blocks that only take or give power below them. A block's signal pins face
the hub, at the height of the hub's pin they wire to, so every signal is one straight line
across the gap, named on that line. Power runs along the outside: one bus line per rail
above the diagram, with a riser down the outer side of each column that a block taps from
its outer edge (the hub from its top edge); a block that makes a rail has an output pin on
it. Nets the hub is not on (a rev-B chip talking to its own sensor block) are routed.
"""

from __future__ import annotations

from .canvas import Canvas, Ink, symbol_group
from .drawing import Sheet, SheetBox, SheetPin, Wire
from .font import label_box, text_width
from .geometry import GRID, Rect, r4, snap
from .router import Grid, RouteError, route_net

STEP = 2 * GRID
PIN_PITCH = STEP
BOX_GAP = 4 * STEP  # between boxes of a column (their names and file names sit there)


def _label_len(name: str) -> float:
    x0, _y0, x1, _y1 = label_box("hier", name, 0.0, 0.0, "right")
    return x1 - x0


def layout_top(plan, design, sheet_files: dict[str, str]) -> tuple[Sheet, list[str]]:
    sheets = design.sheets
    hub = plan.hub
    net_order = [n.name for n in design.nets]
    rails = sorted({r for rp in plan.rail_ports.values() for r, _ in rp}, key=net_order.index)
    signals = {s: sorted(plan.ports.get(s, {})) for s in sheets}
    shapes = {(s, n): shp for s in sheets for n, shp in plan.ports.get(s, {}).items()}
    shapes.update({(s, r): shp for s in sheets for r, shp in plan.rail_ports.get(s, [])})
    rails_of = {s: [r for r in rails if (s, r) in shapes] for s in sheets}

    def produces(s):
        return sum(1 for p in plan.producers.values() if s in p)

    left = [s for s in sheets if s != hub and plan.side.get(s) == "left" and signals[s]]
    right = [s for s in sheets if s != hub and plan.side.get(s) == "right" and signals[s]]
    power_only = [s for s in sheets if s != hub and not signals[s]]
    # power makers first in a column, blocks that only take power last
    for s in sorted(power_only, key=lambda s: (-produces(s), sheets.index(s))):
        (right if len(right) < len(left) else left).append(s)
    key_ = {s: (0 if produces(s) else 1 if signals[s] else 2, sheets.index(s)) for s in sheets}
    left.sort(key=key_.get)
    right.sort(key=key_.get)
    hub_nets = set(signals.get(hub, [])) if hub else set()
    for col in (left, right):
        col[:] = _beside_partners(col, signals, hub_nets)

    boxes: dict[str, SheetBox] = {}
    sheet = Sheet(name="", title="")

    def box_for(s: str, sig_side: str, rail_side: str) -> SheetBox:
        # the hub's lines first; below them the lines to a neighbour in the column, which
        # run down the gap beside it
        sig = sorted(signals[s], key=lambda n: n not in hub_nets)
        pins_l = sig if sig_side == "left" else []
        pins_r = sig if sig_side == "right" else []
        rl = rails_of[s]
        if rail_side == "left":
            pins_l = rl + pins_l
        elif rail_side == "right":
            pins_r = rl + pins_r
        wl = max((_label_len(n) for n in pins_l), default=0.0)
        wr = max((_label_len(n) for n in pins_r), default=0.0)
        w = snap(max(text_width(s) + 2 * STEP, wl + wr + 3 * STEP, 12 * STEP) + STEP / 2, STEP)
        rows = max(len(pins_l), len(pins_r))
        h = snap(max((rows + 1) * PIN_PITCH, 6 * STEP) + STEP / 2, STEP)
        b = SheetBox(s, sheet_files[s], 0.0, 0.0, w, h)
        for side, names in (("left", pins_l), ("right", pins_r)):
            for i, n in enumerate(names):
                b.pins.append(SheetPin(n, 0.0, r4((i + 1) * PIN_PITCH), side, shapes[(s, n)]))
        return b

    # the side columns: boxes stacked; their pins' heights decide the hub's
    col_w = {}
    for col, sig_side, rail_side in ((left, "right", "left"), (right, "left", "right")):
        y = 0.0
        for s in col:
            b = box_for(s, sig_side, rail_side)
            b.y = snap(y, STEP)
            boxes[s] = b
            y = b.y + b.h + BOX_GAP
        col_w[id(col)] = max((boxes[s].w for s in col), default=0.0)
    # the hub: as tall as the pins it must face, rails on its top edge
    hub_box = None
    if hub:
        hub_pins_l, hub_pins_r = [], []
        for col, into in ((left, hub_pins_l), (right, hub_pins_r)):
            for s in col:
                b = boxes[s]
                for p in b.pins:
                    if p.name in hub_nets and p.side == ("right" if col is left else "left"):
                        into.append((p.name, b.y + p.y))
        extra_l = [n for n in signals[hub] if plan.side.get(_partner(plan, n, hub)) != "right"
                   and n not in {x for x, _ in hub_pins_l + hub_pins_r}]
        extra_r = [n for n in signals[hub] if n not in {x for x, _ in hub_pins_l + hub_pins_r}
                   and n not in extra_l]
        wl = max((_label_len(n) for n, _ in hub_pins_l), default=0.0)
        wr = max((_label_len(n) for n, _ in hub_pins_r), default=0.0)
        top_pins = rails_of[hub]
        depth = max((_label_len(n) for n in top_pins), default=0.0)
        w = snap(max(text_width(hub) + 2 * STEP, wl + wr + 3 * STEP,
                     text_width(hub) + (len(top_pins) + 2) * 2 * STEP, 16 * STEP) + STEP / 2, STEP)
        ys = [y for _, y in hub_pins_l + hub_pins_r] or [0.0]
        top = snap(min(ys) - depth - 2 * STEP, STEP)
        last = max(ys)
        hub_box = SheetBox(hub, sheet_files[hub], 0.0, top, w, 0.0)
        for n, y in hub_pins_l:
            hub_box.pins.append(SheetPin(n, 0.0, r4(y - top), "left", shapes[(hub, n)]))
        for n, y in hub_pins_r:
            hub_box.pins.append(SheetPin(n, 0.0, r4(y - top), "right", shapes[(hub, n)]))
        for n in extra_l + extra_r:
            side = "left" if n in extra_l else "right"
            last += PIN_PITCH
            hub_box.pins.append(SheetPin(n, 0.0, r4(last - top), side, shapes[(hub, n)]))
        first = snap(text_width(hub) + 2 * STEP, STEP)  # clear of the sheet's name above
        for i, n in enumerate(top_pins):
            hub_box.pins.append(SheetPin(n, r4(first + i * 2 * STEP), 0.0, "top", shapes[(hub, n)]))
        hub_box.h = snap(last - top + 2 * STEP, STEP)
        boxes[hub] = hub_box
    # columns side by side: room in each gap for the longest net name on its lines
    def gap_for(col):
        names = [p.name for s in col for p in boxes[s].pins if p.name in hub_nets]
        return snap(max((text_width(n) for n in names), default=0.0) + 6 * STEP, STEP)

    x = 0.0
    for s in left:
        boxes[s].x = snap(x + col_w[id(left)] - boxes[s].w, STEP)  # flush against the gap
    if left:
        x += col_w[id(left)] + gap_for(left)
    if hub_box:
        hub_box.x = snap(x, STEP)
        x += hub_box.w + gap_for(right)
    for s in right:
        boxes[s].x = snap(x, STEP)
    # pins to sheet coordinates
    for b in boxes.values():
        for p in b.pins:
            if p.side == "left":
                p.x, p.y = b.x, r4(b.y + p.y)
            elif p.side == "right":
                p.x, p.y = r4(b.x + b.w), r4(b.y + p.y)
            else:
                p.x, p.y = r4(b.x + p.x), b.y
    sheet.boxes = [boxes[s] for s in sheets]
    draw_signals(sheet, boxes, hub, hub_nets)
    draw_power(sheet, boxes, left, right, hub, rails, rails_of)
    return sheet, rails


def _beside_partners(col: list[str], signals, hub_nets) -> list[str]:
    """The column's order, with each block that talks to a block of the column rather than
    to the hub (a chip's front end) right below that block."""
    partner = {}
    for s in col:
        if set(signals[s]) & hub_nets:
            continue
        talk = {o: len(set(signals[s]) & set(signals[o])) for o in col if o != s}
        best = max(talk, key=lambda o: (talk[o], -col.index(o)), default=None)
        if best is not None and talk[best]:
            partner[s] = best
    out: list[str] = []

    def put(s):
        if s in out:
            return
        out.append(s)
        for t in col:
            if partner.get(t) == s:
                put(t)
    for s in col:
        if s not in partner or partner[s] not in col:
            put(s)
    out += [s for s in col if s not in out]  # partners in a loop
    return out


def _partner(plan, net, hub):
    for s, ports in plan.ports.items():
        if s != hub and net in ports:
            return s
    return None


def draw_signals(sheet: Sheet, boxes, hub, hub_nets) -> None:
    """The hub's nets: straight lines between a block's pin and the hub's pin level with it."""
    if not hub:
        return
    hb = boxes[hub]
    by_name = {}
    for p in hb.pins:
        if p.side in ("left", "right"):
            by_name[p.name] = p
    for s, b in boxes.items():
        if s == hub:
            continue
        for p in b.pins:
            hp = by_name.get(p.name)
            if hp is not None and abs(hp.y - p.y) < 1e-6 and p.side != hp.side:
                sheet.wires.append(Wire((p.x, p.y), (hp.x, hp.y), p.name))


def draw_power(sheet: Sheet, boxes, left, right, hub, rails, rails_of) -> None:
    """A bus line per rail above the diagram, risers down the outer sides of the columns,
    taps into the blocks' outer edges and drops onto the hub's top edge."""
    if not rails:
        return
    top = min(b.y for b in boxes.values()) - 3 * STEP
    bus_y = {r: snap(top - (len(rails) - i) * STEP, STEP) for i, r in enumerate(rails)}
    x_left = min((boxes[s].x for s in left), default=None)
    x_right = max((boxes[s].x + boxes[s].w for s in right), default=None)
    for i, r in enumerate(rails):
        xs = []
        taps_l = [p for s in left for p in boxes[s].pins if p.name == r and p.side == "left"]
        taps_r = [p for s in right for p in boxes[s].pins if p.name == r and p.side == "right"]
        drops = [p for p in boxes[hub].pins if p.name == r and p.side == "top"] if hub else []
        y = bus_y[r]
        if taps_l:
            xr = snap(x_left - (len(rails) - i) * STEP - STEP, STEP)
            low = max(p.y for p in taps_l)
            sheet.wires.append(Wire((xr, y), (xr, low), r))
            for p in taps_l:
                sheet.wires.append(Wire((p.x, p.y), (xr, p.y), r))
            xs.append(xr)
        if taps_r:
            xr = snap(x_right + (len(rails) - i) * STEP + STEP, STEP)
            low = max(p.y for p in taps_r)
            sheet.wires.append(Wire((xr, y), (xr, low), r))
            for p in taps_r:
                sheet.wires.append(Wire((p.x, p.y), (xr, p.y), r))
            xs.append(xr)
        for p in drops:
            sheet.wires.append(Wire((p.x, p.y), (p.x, y), r))
            xs.append(p.x)
        if len(xs) > 1:
            sheet.wires.append(Wire((min(xs), y), (max(xs), y), r))



def route_top(sheet: Sheet, rails: list[str]) -> list[str]:
    """Route what the diagram does not draw (nets between two side blocks, a net on three
    blocks), then name every net between blocks on its wire. Returns nets left unrouted."""
    canvas = Canvas()
    for b in sheet.boxes:
        # the box, less a rim: its pins sit on its edge and wires must reach them
        canvas.add_ink(Ink(b.rect().grow(-0.6), "body", b))
        canvas.add_ink(Ink(b.name_rect(), "text", b))
        canvas.add_ink(Ink(b.file_rect(), "text", b))
        for p in b.pins:
            canvas.add_point((p.x, p.y), p.name)
            canvas.add_ink(Ink(p.rect(), "text", b))
    for s in sheet.symbols:
        canvas.add_group(symbol_group(s, {p.number: s.value for p in s.pins}))
    for w in sheet.wires:
        canvas.add_wire(w)
    area = (sheet.extent() or Rect(0, 0, 10, 10)).grow(10 * STEP)
    grid = Grid(canvas, area)
    for b in sheet.boxes:
        for p in b.pins:  # a pin's own text covers its point: the pin stays reachable
            c = grid.cell(p.x, p.y)
            if c is not None:
                grid.blocked.discard(c)
                grid.pin_net[c] = p.name
    by_net: dict[str, list] = {}
    for b in sheet.boxes:
        for p in b.pins:
            d = {"left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1)}[p.side]
            by_net.setdefault(p.name, []).append(((p.x, p.y), d))
    failed = []
    for net in sorted(by_net, key=lambda n: (-len(by_net[n]), n)):
        reqs = by_net[net]
        if len(reqs) < 2:
            continue
        wires = []
        if not grid.net_cells(net) - {grid.cell(*pt) for pt, _d in reqs}:
            # a net the diagram has not drawn: a straight run out of its first pin, long
            # enough to carry its name, then routed on from there
            (x, y), d = reqs[0]
            n = int(snap(_label_len(net) + 2 * GRID, GRID) / GRID)
            cells = [grid.cell(x + d[0] * GRID * k, y + d[1] * GRID * k) for k in range(1, n + 1)]
            if all(c is not None and c not in grid.blocked and c not in grid.point_net
                   and not any(grid._on_foreign_wire(c, net)) for c in cells):
                end = (r4(x + d[0] * GRID * n), r4(y + d[1] * GRID * n))
                stub = Wire((x, y), end, net)
                grid._wire(stub)
                grid.point_net.setdefault(grid.cell(*end), set()).add(net)
                wires.append(stub)
                reqs = [(end, d)] + reqs[1:]
        try:
            for point, d in reqs:
                wires += route_net(grid, net, [(point, d)])
        except RouteError:
            failed.append(net)
            continue
        sheet.wires += wires
        for w in wires:
            canvas.add_wire(w)
    from .layout import label_nets

    label_nets(set(rails), sheet, canvas, "")
    return failed


__all__ = ["layout_top", "route_top"]
