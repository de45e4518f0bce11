"""The top sheet: the function blocks as a block diagram.

Each block is a hierarchical sheet box. Its power pins sit on its top edge (supplies come
in from above, a producing block's output is marked as one), its signal pins on the edge
that faces the block it talks to. Blocks are arranged around the block most signals meet
(the hub): blocks that feed it on the left, the others on the right, blocks that only pass
power in a row above; every pin is then wired to its partners by the router, so the sheet
shows where power flows and which block talks to which.
"""

from __future__ import annotations

from .canvas import Canvas, Ink
from .drawing import Label, Sheet, SheetBox, SheetPin, SymbolItem, Wire
from .font import text_width
from .geometry import GRID, Rect, r4, snap
from .router import Grid, RouteError, route_net

STEP = 2 * GRID
PIN_PITCH = STEP
COL_GAP_MIN = 12 * STEP
ROW_GAP = 8 * STEP


def _box_size(name: str, left: list[str], right: list[str], top: list[str]) -> tuple[float, float]:
    wl = max((text_width(n) for n in left), default=0.0)
    wr = max((text_width(n) for n in right), default=0.0)
    wt = max((text_width(n) for n in top), default=0.0)
    w = max(text_width(name) + 2 * STEP, wl + wr + 4 * STEP, (len(top) + 1) * 2 * STEP, 12 * STEP)
    rows = max(len(left), len(right))
    h = max((rows + 1) * PIN_PITCH + (wt + STEP if top else 0.0), 6 * STEP)
    return snap(w + STEP, STEP), snap(h + STEP, STEP)


def layout_top(plan, design, sheet_files: dict[str, str]) -> tuple[Sheet, dict, list]:
    """The top sheet's boxes, pins and wires; returns (sheet, box positions, nets to route)."""
    sheets = design.sheets
    hub = plan.hub
    rails = sorted({r for rp in plan.rail_ports.values() for r, _ in rp},
                   key=lambda r: [n.name for n in design.nets].index(r))
    signal = {s: sorted(plan.ports.get(s, {})) for s in sheets}
    power_only = [s for s in sheets if not signal[s] and s != hub]
    left = [s for s in sheets if s not in power_only and s != hub and plan.side.get(s) == "left"]
    right = [s for s in sheets if s not in power_only and s != hub and plan.side.get(s) == "right"]
    # power producers first in their column
    def prod_rank(s):
        return -sum(1 for r in plan.producers.values() if s in r)
    left.sort(key=lambda s: (prod_rank(s), sheets.index(s)))
    right.sort(key=lambda s: (prod_rank(s), sheets.index(s)))
    power_only.sort(key=lambda s: (prod_rank(s), sheets.index(s)))

    # which edge each signal pin goes on
    def sig_side(s, net):
        if s == hub:
            partners = [t for t in sheets if t != s and net in plan.ports.get(t, {})]
            sides = [plan.side.get(t) for t in partners]
            return "left" if sides.count("left") >= sides.count("right") else "right"
        if s in left:
            return "right"
        if s in right:
            return "left"
        return "bottom"

    boxes: dict[str, SheetBox] = {}
    pins_of: dict[str, dict[str, list[str]]] = {}
    for s in sheets:
        edges = {"left": [], "right": [], "top": [], "bottom": []}
        for net in signal[s]:
            edges[sig_side(s, net)].append(net)
        # power comes along the outside of the diagram: the outer edge of a side column,
        # the top edge of the hub and of the blocks in the power row
        rail_edge = "left" if s in left else "right" if s in right else "top"
        for r, _shape in plan.rail_ports.get(s, []):
            edges[rail_edge].append(r)
        edges["top"].sort(key=rails.index)
        pins_of[s] = edges
        w, h = _box_size(s, edges["left"], edges["right"], edges["top"] + edges["bottom"])
        boxes[s] = SheetBox(s, sheet_files[s], 0.0, 0.0, w, h)

    # columns: left blocks, hub, right blocks; power-only blocks in a row above
    def stack(col: list[str], x: float, y0: float) -> float:
        y = y0
        width = max((boxes[s].w for s in col), default=0.0)
        for s in col:
            b = boxes[s]
            b.x, b.y = snap(x + (width - b.w) / 2, STEP), snap(y, STEP)
            y = b.y + b.h + ROW_GAP
        return width

    n_left = sum(len(pins_of[s]["right"]) for s in left)
    n_right = sum(len(pins_of[s]["left"]) for s in right)
    gap_l = max(COL_GAP_MIN, (n_left + len(rails) + 4) * STEP)
    gap_r = max(COL_GAP_MIN, (n_right + len(rails) + 4) * STEP)
    top_row_h = max((boxes[s].h for s in power_only), default=0.0)
    y_main = (top_row_h + ROW_GAP + len(rails) * STEP) if power_only else len(rails) * STEP + ROW_GAP
    x = 0.0
    wl = stack(left, x, y_main)
    x_hub = x + wl + gap_l if left else 0.0
    wh = stack([hub], x_hub, y_main) if hub else 0.0
    x_right = x_hub + wh + gap_r
    stack(right, x_right, y_main)
    # power-only blocks above, left to right in the order power flows
    px = 0.0
    for s in power_only:
        b = boxes[s]
        b.x, b.y = snap(px, STEP), 0.0
        px = b.x + b.w + COL_GAP_MIN

    # pins along their edges, in the order of their partners (fewer crossings)
    def partner_y(s, net):
        ys = [boxes[t].y + boxes[t].h / 2 for t in sheets if t != s and
              (net in plan.ports.get(t, {}) or any(net == r for r, _ in plan.rail_ports.get(t, [])))]
        return sum(ys) / len(ys) if ys else 0.0

    shapes = {}
    for s in sheets:
        for net, shp in plan.ports.get(s, {}).items():
            shapes[(s, net)] = shp
        for r, shp in plan.rail_ports.get(s, []):
            shapes[(s, r)] = shp
    for s in sheets:
        b = boxes[s]
        e = pins_of[s]
        for side in ("left", "right"):
            nets = sorted(e[side], key=lambda n: (partner_y(s, n), n))
            for i, net in enumerate(nets):
                x = b.x if side == "left" else b.x + b.w
                y = b.y + (i + 1) * PIN_PITCH
                b.pins.append(SheetPin(net, x, r4(y), side, shapes[(s, net)]))
        for side in ("top", "bottom"):
            for i, net in enumerate(e[side]):
                x = b.x + (i + 1) * 2 * STEP
                y = b.y if side == "top" else b.y + b.h
                b.pins.append(SheetPin(net, r4(x), y, side, shapes[(s, net)]))
    sheet = Sheet(name="", title="")
    sheet.boxes = [boxes[s] for s in sheets]
    return sheet, boxes, rails


def route_top(sheet: Sheet, rails: list[str], extra_canvas_items=()) -> list[str]:
    """Wire every sheet pin to the pins of the same name; returns the nets that could not be
    routed (their pins are then joined by labels)."""
    canvas = Canvas()
    for b in sheet.boxes:
        # the box, less a rim: its pins sit on its edge and wires must reach them
        canvas.add_ink(Ink(b.rect().grow(-0.6), "body", b))
        canvas.add_ink(Ink(b.name_rect(), "text", b))
        canvas.add_ink(Ink(b.file_rect(), "text", b))
        for p in b.pins:
            canvas.add_point((p.x, p.y), p.name)
    for s in sheet.symbols:
        from .canvas import symbol_group

        canvas.add_group(symbol_group(s, {p.number: s.value for p in s.pins}))
    for w in sheet.wires:
        canvas.add_wire(w)
    area = (sheet.extent() or Rect(0, 0, 10, 10)).grow(10 * STEP)
    grid = Grid(canvas, area)
    by_net: dict[str, list] = {}
    for b in sheet.boxes:
        for p in b.pins:
            d = {"left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1)}[p.side]
            by_net.setdefault(p.name, []).append(((p.x, p.y), d))
    failed = []
    order = sorted(by_net, key=lambda n: (n not in rails, -len(by_net[n]), n))
    for net in order:
        reqs = by_net[net]
        if len(reqs) < 2:
            continue
        try:
            # each pin joins the rest of its net (the first one joins the nearest pin)
            wires = []
            for point, d in reqs:
                wires += route_net(grid, net, [(point, d)])
        except RouteError:
            failed.append(net)
            continue
        sheet.wires += wires
    return failed


__all__ = ["layout_top", "route_top", "Label", "SymbolItem", "Wire"]
