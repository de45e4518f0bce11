"""Wires between groups: A* on the 50 mil grid, around every body and text.

Used where a net joins two groups of a sheet (say a connector and the chip its lines go
to) and for the top sheet's block diagram. A path may cross another net's wire at a right
angle (no junction, so no connection) but never runs along it, never touches another net's
connection point, and keeps off bodies and texts; bends and crossings cost extra, so the
wires come out straight where they can.
"""

from __future__ import annotations

import heapq
import itertools

from .canvas import Canvas, Ink
from .drawing import Wire
from .geometry import GRID, Rect, key, r4

BEND = 6.0
CROSS = 8.0
HUG = 1.5  # running right next to another net's wire
DIRS = ((1, 0), (-1, 0), (0, 1), (0, -1))


class RouteError(Exception):
    pass


class Grid:
    def __init__(self, canvas: Canvas, area: Rect):
        self.canvas = canvas
        self.x0 = int(area.x0 // GRID) - 1
        self.y0 = int(area.y0 // GRID) - 1
        self.nx = int(area.x1 // GRID) - self.x0 + 2
        self.ny = int(area.y1 // GRID) - self.y0 + 2
        self.blocked: set[tuple[int, int]] = set()
        self.pin_net: dict[tuple[int, int], str | None] = {}
        self.h_occ: dict[tuple[int, int], set] = {}  # unit edge (i,j)-(i+1,j) -> nets
        self.v_occ: dict[tuple[int, int], set] = {}  # unit edge (i,j)-(i,j+1) -> nets
        self.point_net: dict[tuple[int, int], set] = {}
        for ink in canvas.inks:
            self._block(ink)
        for w in canvas.wires:
            self._wire(w)
        for (px, py), nets in canvas.points.items():
            c = self.cell(px / 1e4, py / 1e4)
            if c is not None:
                self.point_net.setdefault(c, set()).update(nets)

    def cell(self, x: float, y: float) -> tuple[int, int] | None:
        i, j = x / GRID, y / GRID
        if abs(i - round(i)) > 1e-6 or abs(j - round(j)) > 1e-6:
            return None
        return round(i), round(j)

    def pt(self, c: tuple[int, int]) -> tuple[float, float]:
        return r4(c[0] * GRID), r4(c[1] * GRID)

    def _block(self, ink: Ink) -> None:
        if ink.kind == "wire":
            return
        gap = 0.3 if ink.kind != "pin" else 0.05
        r = ink.rect.grow(gap)
        for i in range(int(r.x0 // GRID), int(r.x1 // GRID) + 2):
            for j in range(int(r.y0 // GRID), int(r.y1 // GRID) + 2):
                x, y = i * GRID, j * GRID
                if r.x0 <= x <= r.x1 and r.y0 <= y <= r.y1:
                    if ink.kind == "pin":
                        self.pin_net[(i, j)] = ink.net if (i, j) not in self.pin_net else "#"
                    else:
                        self.blocked.add((i, j))

    def _wire(self, w: Wire) -> None:
        a, b = self.cell(*w.a), self.cell(*w.b)
        if a is None or b is None:
            return
        if a[1] == b[1]:
            for i in range(min(a[0], b[0]), max(a[0], b[0])):
                self.h_occ.setdefault((i, a[1]), set()).add(w.net)
        else:
            for j in range(min(a[1], b[1]), max(a[1], b[1])):
                self.v_occ.setdefault((a[0], j), set()).add(w.net)

    def net_cells(self, net: str) -> set[tuple[int, int]]:
        """Where a new wire may join the net: on its wires; only where it has none yet, at its
        connection points (a pin with a stub is joined at the stub's end, not the pin)."""
        out = set()
        for (i, j), nets in self.h_occ.items():
            if net in nets:
                out |= {(i, j), (i + 1, j)}
        for (i, j), nets in self.v_occ.items():
            if net in nets:
                out |= {(i, j), (i, j + 1)}
        out -= set(self.pin_net)  # not onto a pin's end: onto the wire beyond it
        if out:
            return out
        for c, nets in self.point_net.items():
            if net in nets:
                out.add(c)
        return out

    def _on_foreign_wire(self, c, net) -> tuple[bool, bool]:
        """(horizontal, vertical): c lies on another net's horizontal / vertical wire."""
        i, j = c
        h = bool((self.h_occ.get((i, j), set()) | self.h_occ.get((i - 1, j), set())) - {net})
        v = bool((self.v_occ.get((i, j), set()) | self.v_occ.get((i, j - 1), set())) - {net})
        return h, v

    def route(self, net: str, sources: list[tuple[tuple[int, int], tuple[int, int] | None]],
              targets: set[tuple[int, int]], max_nodes: int = 400000) -> list[tuple[int, int]]:
        """Cheapest path from one of the sources (cell, first direction or None) to a target."""
        if not targets:
            raise RouteError(f"{net}: nothing to connect to")
        tx0 = min(t[0] for t in targets)
        tx1 = max(t[0] for t in targets)
        ty0 = min(t[1] for t in targets)
        ty1 = max(t[1] for t in targets)

        def h(c):
            dx = max(tx0 - c[0], 0, c[0] - tx1)
            dy = max(ty0 - c[1], 0, c[1] - ty1)
            return dx + dy

        heap = []
        tie = itertools.count()
        best: dict[tuple, float] = {}
        prev: dict[tuple, tuple | None] = {}
        for c, d in sources:
            st = (c, d)
            best[st] = 0.0
            prev[st] = None
            heapq.heappush(heap, (h(c), 0.0, next(tie), c, d))
        seen = 0
        while heap:
            _f, g, _t, c, d = heapq.heappop(heap)
            if g > best.get((c, d), 1e18):
                continue
            if c in targets and prev[(c, d)] is not None:
                path = [c]
                st = (c, d)
                while prev[st] is not None:
                    st = prev[st]
                    path.append(st[0])
                return path[::-1]
            seen += 1
            if seen > max_nodes:
                break
            for nd in DIRS:
                if d is not None and nd == (-d[0], -d[1]):
                    continue
                n = (c[0] + nd[0], c[1] + nd[1])
                if not (self.x0 <= n[0] < self.x0 + self.nx and self.y0 <= n[1] < self.y0 + self.ny):
                    continue
                if n in self.blocked:
                    continue
                pn = self.pin_net.get(n)
                if pn is not None and (pn != net or n not in targets):
                    continue  # over a pin: only onto its own connection point
                if self.point_net.get(n, set()) - {net}:
                    continue
                edge = (min(c[0], n[0]), c[1]) if nd[1] == 0 else (c[0], min(c[1], n[1]))
                occ = (self.h_occ if nd[1] == 0 else self.v_occ).get(edge, set())
                if occ - {net}:
                    continue  # would run along another net's wire
                fh, fv = self._on_foreign_wire(n, net)
                cost = 1.0
                if nd[1] == 0 and fv or nd[0] == 0 and fh:
                    cost += CROSS
                    if n in targets:
                        continue
                # turning or stopping on a foreign wire would connect to it
                if d is not None and nd != d:
                    cost += BEND
                    fh_c, fv_c = self._on_foreign_wire(c, net)
                    if fh_c or fv_c:
                        continue
                # keep a grid step from other nets' parallel wires where possible
                side = ((n[0], n[1] - 1), (n[0], n[1] + 1)) if nd[1] == 0 else \
                    ((n[0] - 1, n[1]), (n[0] + 1, n[1]))
                for s in side:
                    if s in self.blocked:
                        cost += HUG * 0.5
                    e = (s[0], s[1]) if nd[1] == 0 else s
                    occ2 = (self.h_occ if nd[1] == 0 else self.v_occ).get(e, set())
                    if occ2 - {net}:
                        cost += HUG
                ng = g + cost
                st = (n, nd)
                if ng < best.get(st, 1e18):
                    best[st] = ng
                    prev[st] = (c, d)
                    heapq.heappush(heap, (ng + h(n), ng, next(tie), n, nd))
        raise RouteError(f"{net}: no path")

    def commit(self, net: str, path: list[tuple[int, int]]) -> list[Wire]:
        """Wires along `path` (collinear steps merged), registered on the grid."""
        wires = []
        start = path[0]
        for k in range(1, len(path)):
            last = k == len(path) - 1
            turn = not last and (path[k + 1][0] - path[k][0], path[k + 1][1] - path[k][1]) != \
                (path[k][0] - path[k - 1][0], path[k][1] - path[k - 1][1])
            if last or turn:
                w = Wire(self.pt(start), self.pt(path[k]), net)
                wires.append(w)
                self._wire(w)
                start = path[k]
        for c in path:
            self.point_net.setdefault(c, set())
        return wires


def _component(grid: Grid, net: str, start: tuple[int, int]) -> set[tuple[int, int]]:
    """Cells joined to `start` by the net's wires."""
    seen = {start}
    todo = [start]
    while todo:
        i, j = todo.pop()
        for (a, b), edge, occ in (((i + 1, j), (i, j), grid.h_occ), ((i - 1, j), (i - 1, j), grid.h_occ),
                                  ((i, j + 1), (i, j), grid.v_occ), ((i, j - 1), (i, j - 1), grid.v_occ)):
            if (a, b) not in seen and net in occ.get(edge, ()):
                seen.add((a, b))
                todo.append((a, b))
    return seen


def route_net(grid: Grid, net: str, requests: list[tuple[tuple[float, float], tuple[int, int]]]) -> list[Wire]:
    """Join each request (a stub end and its outward direction) to the rest of its net."""
    out: list[Wire] = []
    for point, d in requests:
        c = grid.cell(*point)
        if c is None:
            raise RouteError(f"{net}: {point} is off the grid")
        own = _component(grid, net, c)
        targets = grid.net_cells(net) - own
        if not targets:
            continue  # already joined (or nothing else of the net on the sheet yet)
        path = grid.route(net, [(c, d), (c, None)], targets)
        out += grid.commit(net, path)
    return out


__all__ = ["Grid", "RouteError", "route_net", "key"]
