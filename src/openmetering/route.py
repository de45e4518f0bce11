"""A small two-layer grid router that is clearance-correct by construction.

Why our own: the routers that install here (freeroute's engines, tscircuit's capacity
autorouter) leave shorts, clearance errors or unrouted fine-pitch nets on this kind of board
(see docs/generated/router-comparison.md). This one is deliberately simple:

* the board is a grid of pitch ``h`` on F.Cu and B.Cu, with a third "via" plane between them
  that can only be crossed (never travelled along, since that always costs more than
  travelling on a copper plane);
* every piece of copper (pad polygon, track capsule, via disc) keeps an *exact* distance
  patch: distance from each grid-cell centre to that copper; for a net, a cell is free on a
  layer when the distance to all *other* nets' copper is at least width/2 + clearance + a
  margin that covers the straight track between two neighbouring cell centres (h/sqrt(2)),
  and at least via radius + clearance on both layers for a via;
* each connection is a minimum-cost path (Dijkstra on the grid, 8 directions, so 0/45/90
  degree tracks) from the net's routed tree to the nearest unconnected pad (pad-to-tree); the
  search is skimage.graph.MCP_Geometric's, compiled with numba (see ``lowest_path``);
* a connection that finds no path searches again treating foreign *tracks* as expensive
  instead of solid, rips up the nets it crossed and queues them again (bounded).

Everything is in millimetres; y grows downwards as in KiCad. The router imports no pcbnew (only
the benchmark does, through the board stage, to place the board it routes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np

VERSION = "omd-route 1"  # part of the board's input hash: bump when routing output changes

F, B = 0, 1  # copper layers


@dataclass
class Pad:
    ref: str
    number: str
    net: str
    layers: tuple[int, ...]  # (F,), (B,) or (F, B) for plated through holes
    polygon: np.ndarray  # (N, 2) outline in mm, closed implicitly
    center: tuple[float, float]


@dataclass
class Track:
    net: str
    layer: int
    a: tuple[float, float]
    b: tuple[float, float]
    width: float


@dataclass
class Via:
    net: str
    at: tuple[float, float]
    diameter: float
    drill: float


@dataclass
class NetRule:
    width: float  # preferred track width
    min_width: float  # narrowest neck-down allowed when the preferred width does not fit
    priority: int = 0  # lower routes first
    pair: str | None = None  # partner net of a differential pair: routed alongside it
    keep_away: dict[str, float] = field(default_factory=dict)  # net -> extra distance (mm)
    fanout: bool = False  # plane net: each pad only gets a short stub to a via (pours join them)
    track_pads: tuple[str, ...] = ()  # "REF.PAD" of a fanout net that get a track to the net instead


@dataclass
class Problem:
    origin: tuple[float, float]  # mm of grid cell (0, 0)
    shape: tuple[int, int]  # (rows, cols)
    h: float  # grid pitch, mm
    inside: np.ndarray  # bool (rows, cols): cell centre may carry copper (outline, keep-outs)
    edge_dist: np.ndarray  # float (rows, cols): mm from cell centre to the nearest non-inside area
    pads: list[Pad]
    rules: dict[str, NetRule]
    clearance: float = 0.2
    edge_clearance: float = 0.3
    via_diameter: float = 0.6
    via_drill: float = 0.3
    hole_to_hole: float = 0.5  # drill edge to drill edge: a new via keeps this from the net's own
    via_cost: float = 1.5  # mm of track a via is worth
    obstacles: list[tuple[tuple[int, ...], np.ndarray]] = field(default_factory=list)
    # ^ copper-free areas as (layers, polygon), e.g. holes with their clearance


@dataclass
class Result:
    tracks: list[Track]
    vias: list[Via]
    unrouted: list[str]  # "NET: REF.PAD" for every pad left unconnected
    stats: dict

    def digest(self) -> str:
        """sha256 of everything the board receives: equal digests, equal routed boards."""
        h = hashlib.sha256()
        for t in self.tracks:
            h.update(repr((t.net, t.layer, t.a, t.b, t.width)).encode())
        for v in self.vias:
            h.update(repr((v.net, v.at, v.diameter, v.drill)).encode())
        h.update(repr(self.unrouted).encode())
        return h.hexdigest()


# ---------------------------------------------------------------- path search

# the router's step costs (indices into Router.step_costs): a copper cell, one near a foreign
# track that a rip-up search may cross, one beside the pair partner, a via, a via near a track
_TRACK, _SOFT, _BESIDE, _VIA, _VIA_SOFT = range(5)


def _pathsearch():
    from openmetering import pathsearch  # numba: loaded with the first search, not on import

    return pathsearch


def lowest_path(cost, starts, is_end):
    """The search every connection makes (see pathsearch.lowest_path): the cheapest path from
    the starts to the first end reached, as skimage's MCP_Geometric finds it, tie for tie."""
    return _pathsearch().lowest_path(cost, starts, is_end)


# ---------------------------------------------------------------- geometry


def _seg_dist(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    if ll == 0:
        return np.hypot(px - ax, py - ay)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / ll, 0.0, 1.0)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _poly_dist(px, py, poly):
    """Distance from points to a simple polygon, 0 inside."""
    d = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, dtype=bool)
    n = len(poly)
    for i in range(n):
        ax, ay = poly[i]
        bx, by = poly[(i + 1) % n]
        d = np.minimum(d, _seg_dist(px, py, ax, ay, bx, by))
        cond = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= cond & (px < xint)
    d[inside] = 0.0
    return d


class _Patch:
    """Exact distance from a piece of copper to the cell centres around it."""

    __slots__ = ("net", "layers", "r0", "c0", "d", "kind", "owner")

    def __init__(self, net, layers, r0, c0, d, kind, owner=None):
        self.net, self.layers, self.r0, self.c0, self.d = net, layers, r0, c0, d
        self.kind, self.owner = kind, owner

    @property
    def r1(self):
        return self.r0 + self.d.shape[0]

    @property
    def c1(self):
        return self.c0 + self.d.shape[1]


class Router:
    def __init__(self, prob: Problem, reach: float | None = None):
        self.p = prob
        self.h = prob.h
        rmax = max(r.width for r in prob.rules.values()) / 2 if prob.rules else 0.25
        rmax = max(rmax, prob.via_diameter / 2)
        extra = max((d for r in prob.rules.values() for d in r.keep_away.values()), default=0.0)
        # how far a patch must reach: the largest distance any blocking test asks about
        self.reach = reach or (rmax + prob.clearance + self.h + extra + 0.1)
        self.patches: list[_Patch] = []
        self.pad_patches: dict[int, _Patch] = {}
        self.track_patches: dict[str, list[_Patch]] = {}
        self.tracks: dict[str, list[Track]] = {}
        self.vias: dict[str, list[Via]] = {}
        for i, pad in enumerate(prob.pads):
            pt = self._make_patch(pad.net, pad.layers, pad.polygon, kind="pad")
            pt.owner = i
            self.pad_patches[i] = pt
        # an obstacle with a net blocks every other net: a quiet area where only that net
        # (GND) may go, so no track splits the ground under it
        for layers, poly, *net in prob.obstacles:
            self.patches.append(self._make_patch(net[0] if net else None, layers, poly,
                                                 kind="obstacle"))
        self.patches.extend(self.pad_patches.values())
        self._patch_edits = 0  # removals from self.patches (appends show in its length)
        self._boxes = None  # (the list, its length, edits, (n, 4) r0, r1, c0, c1 of each)
        self.stats = {"ripups": 0, "connections": 0, "neckdowns": []}
        via = prob.via_cost / self.h
        self.step_costs = np.full(256, np.inf)
        self.step_costs[[_TRACK, _SOFT, _BESIDE, _VIA, _VIA_SOFT]] = (1.0, 60.0, 0.6, via, 60.0 + via)

    # ------------------------------------------------------------ patches
    def _cells(self, x0, y0, x1, y1):
        h, (ox, oy) = self.h, self.p.origin
        rows, cols = self.p.shape
        r0 = max(0, int(math.floor((y0 - self.reach - oy) / h)))
        r1 = min(rows, int(math.ceil((y1 + self.reach - oy) / h)) + 1)
        c0 = max(0, int(math.floor((x0 - self.reach - ox) / h)))
        c1 = min(cols, int(math.ceil((x1 + self.reach - ox) / h)) + 1)
        ys = oy + h * np.arange(r0, r1)
        xs = ox + h * np.arange(c0, c1)
        px, py = np.meshgrid(xs, ys)
        return r0, c0, px, py

    def _make_patch(self, net, layers, poly, kind):
        poly = np.asarray(poly, dtype=float)
        x0, y0 = poly.min(axis=0)
        x1, y1 = poly.max(axis=0)
        r0, c0, px, py = self._cells(x0, y0, x1, y1)
        d = _poly_dist(px, py, poly) if px.size else np.zeros((0, 0))
        return _Patch(net, tuple(layers), r0, c0, d.astype(np.float32), kind)

    def _capsule_patch(self, net, layers, a, b, radius, kind):
        x0, x1 = sorted((a[0], b[0]))
        y0, y1 = sorted((a[1], b[1]))
        r0, c0, px, py = self._cells(x0 - radius, y0 - radius, x1 + radius, y1 + radius)
        d = _seg_dist(px, py, a[0], a[1], b[0], b[1]) - radius
        return _Patch(net, tuple(layers), r0, c0, np.maximum(d, 0).astype(np.float32), kind)

    # ------------------------------------------------------------ fields
    def _patch_boxes(self):
        """Each patch's cell box as rows of one array, so a window finds the patches it
        overlaps at once instead of asking every patch (a board holds thousands). Patches are
        appended at the end, so the array grows with the list; a removal, or another list
        (clearance_map swaps one in), builds it again."""
        pts, got = self.patches, self._boxes
        if got is None or got[0] is not pts or got[2] != self._patch_edits or got[1] > len(pts):
            got = (pts, 0, self._patch_edits, np.zeros((0, 4), np.int64))
        if got[1] < len(pts):
            new = np.array([(pt.r0, pt.r1, pt.c0, pt.c1) for pt in pts[got[1]:]], np.int64)
            got = (pts, len(pts), self._patch_edits, np.concatenate([got[3], new]))
        self._boxes = got
        return got[3]

    def _foreign(self, net, win, only=None, kinds=None):
        """Per-layer distance to copper of other nets inside window (r0, r1, c0, c1)."""
        r0, r1, c0, c1 = win
        out = np.full((2, r1 - r0, c1 - c0), np.inf, dtype=np.float32)
        box = self._patch_boxes()
        near = np.flatnonzero((box[:, 0] < r1) & (box[:, 1] > r0)
                              & (box[:, 2] < c1) & (box[:, 3] > c0))
        pts = self.patches
        for i in near.tolist():
            pt = pts[i]
            if pt.net == net and pt.net is not None:
                continue
            if only is not None and pt.net not in only:
                continue
            if kinds is not None and pt.kind not in kinds:
                continue
            a0, a1 = max(r0, pt.r0), min(r1, pt.r1)
            b0, b1 = max(c0, pt.c0), min(c1, pt.c1)
            if a0 >= a1 or b0 >= b1:
                continue
            sub = pt.d[a0 - pt.r0 : a1 - pt.r0, b0 - pt.c0 : b1 - pt.c0]
            for L in pt.layers:
                o = out[L, a0 - r0 : a1 - r0, b0 - c0 : b1 - c0]
                np.minimum(o, sub, out=o)
        return out

    def _window(self, pts, margin):
        h, (ox, oy) = self.h, self.p.origin
        rows, cols = self.p.shape
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        r0 = max(0, int((min(ys) - margin - oy) / h))
        r1 = min(rows, int((max(ys) + margin - oy) / h) + 1)
        c0 = max(0, int((min(xs) - margin - ox) / h))
        c1 = min(cols, int((max(xs) + margin - ox) / h) + 1)
        return r0, r1, c0, c1

    # ------------------------------------------------------------ routing
    def _terminals(self):
        """Pads of a net, with pads of one footprint pad number that overlap merged into one
        terminal (the module's exposed pad and its thermal vias are one piece of copper)."""
        nets: dict[str, list[list[int]]] = {}
        for i, pad in enumerate(self.p.pads):
            if not pad.net:
                continue
            groups = nets.setdefault(pad.net, [])
            lo, hi = pad.polygon.min(axis=0), pad.polygon.max(axis=0)
            for g in groups:
                q = self.p.pads[g[0]]
                if (q.ref, q.number) != (pad.ref, pad.number):
                    continue
                if any(self._overlap(lo, hi, self.p.pads[k]) for k in g):
                    g.append(i)
                    break
            else:
                groups.append([i])
        return nets

    def _overlap(self, lo, hi, q):
        qlo, qhi = q.polygon.min(axis=0), q.polygon.max(axis=0)
        return bool(np.all(lo <= qhi) and np.all(qlo <= hi))

    def route(self, max_ripups=60) -> Result:
        nets = self._terminals()
        order = sorted(
            (n for n, ps in nets.items() if len(ps) > 1 and n in self.p.rules),
            key=lambda n: (self.p.rules[n].priority, self._span(nets[n]), n),
        )
        queue = list(order)
        failed: dict[str, list[int]] = {}
        ripped_count: dict[str, int] = {}
        while queue:
            net = queue.pop(0)
            missing, blockers = self._route_net(net, nets[net])
            if not missing:
                failed.pop(net, None)
                continue
            victims = [
                b
                for b in blockers
                if ripped_count.get(b, 0) < 3
            ]
            if victims and self.stats["ripups"] < max_ripups:
                self._unroute(net)
                for v in victims:
                    self._unroute(v)
                    ripped_count[v] = ripped_count.get(v, 0) + 1
                    self.stats["ripups"] += 1
                    if v in queue:
                        queue.remove(v)
                queue = [net] + victims + queue
                ripped_count[net] = ripped_count.get(net, 0) + 1
                continue
            failed[net] = missing
        tracks = [t for n in sorted(self.tracks) for t in self.tracks[n]]
        vias = [v for n in sorted(self.vias) for v in self.vias[n]]
        unrouted = []
        for net, missing in sorted(failed.items()):
            for i in missing:
                pad = self.p.pads[i]
                unrouted.append(f"{net}: {pad.ref}.{pad.number}")
        return Result(tracks, vias, unrouted, dict(self.stats))

    def _span(self, groups):
        cs = np.array([self.p.pads[g[0]].center for g in groups])
        return float((cs.max(axis=0) - cs.min(axis=0)).sum())

    def _unroute(self, net):
        for pt in self.track_patches.pop(net, []):
            self.patches.remove(pt)
            self._patch_edits += 1
        self.tracks.pop(net, None)
        self.vias.pop(net, None)

    def _route_net(self, net, groups):
        """Pad-to-tree. Returns (pads left unconnected, nets whose tracks were in the way)."""
        rule = self.p.rules[net]
        if rule.fanout:
            return self._fanout(net, groups)
        pads = self.p.pads
        first = {g[0]: g for g in groups}
        pad_idx = sorted(first)
        # grow the tree from the roomiest pad (a regulator tab rather than an FPC contact)
        def area(i):
            lo, hi = pads[i].polygon.min(axis=0), pads[i].polygon.max(axis=0)
            return float(np.prod(hi - lo))

        start = max(pad_idx, key=lambda i: (area(i) * len(pads[i].layers), -i))
        tree_pads = list(first[start])
        todo = [i for i in pad_idx if i != start]
        tree_cells: list[tuple[int, int, int]] = []  # (layer, row, col) global
        blockers: set[str] = set()
        missing: list[int] = []
        retried = False
        while todo:
            # nearest remaining pad to the tree (by centre) first: keeps windows small
            tc = np.array([pads[i].center for i in tree_pads])
            todo.sort(key=lambda i: (float(np.min(np.hypot(*(tc - pads[i].center).T))), i))
            target = todo.pop(0)
            if self._connect_pad(net, rule, tree_pads, tree_cells, first[target]):
                tree_pads.extend(first[target])
            else:
                missing.append(target)
            if not todo and missing and not retried:
                # the tree has grown since: a pad that failed early may reach it now
                todo, missing, retried = missing, [], True
        for target in missing:
            path = self._connect(net, rule.min_width, tree_pads, tree_cells, first[target], rule,
                                 strict=False)
            if path is not None:
                blockers |= self._crossed(net, path, rule.min_width)
        return missing, sorted(blockers)

    def _connect_pad(self, net, rule, tree_pads, tree_cells, group):
        for width in self._widths(rule):
            path = self._connect(net, width, tree_pads, tree_cells, group, rule, strict=True)
            if path is not None:
                if width < rule.width:
                    self.stats["neckdowns"].append(f"{net} {width:.2f}")
                self._commit(net, path, width, tree_cells)
                self.stats["connections"] += 1
                return True
        return False

    def _fanout(self, net, groups):
        """Each surface pad of a plane net: shortest stub to a via (through-hole pads already
        reach both pours). Returns the pads that found no via site."""
        rule = self.p.rules[net]
        missing = []
        blockers: set[str] = set()
        tracked = []
        for g in groups:
            if any(len(self.p.pads[i].layers) == 2 for i in g):
                continue
            if any(f"{self.p.pads[i].ref}.{self.p.pads[i].number}" in rule.track_pads for i in g):
                tracked.append(g)
                continue
            done = False
            for width in self._widths(rule):
                pts = [self.p.pads[i].center for i in g]
                win = self._window(pts, 3.0)
                path, _ = self._search(net, width, g, [], None, rule, win, strict=True)
                if path is not None:
                    self._commit(net, path, width, [])
                    self.stats["connections"] += 1
                    done = True
                    break
            if not done:
                # no via site near it: run a track to the nearest other pad of the net instead
                others = [h for h in groups if h is not g]
                others.sort(key=lambda h: float(np.hypot(*np.subtract(self.p.pads[h[0]].center,
                                                                      self.p.pads[g[0]].center))))
                for h in others[:4]:
                    if self._connect_pad(net, rule, list(h), [], g):
                        done = True
                        break
            if not done:
                missing.append(g[0])
                pts = [self.p.pads[i].center for i in g]
                path, _ = self._search(net, rule.min_width, g, [], None, rule,
                                       self._window(pts, 3.0), strict=False)
                if path is not None:
                    blockers |= self._crossed(net, path, rule.min_width)
        for g in tracked:
            # a track from the pad to the nearest copper of the net that is not another
            # tracked pad (so it lands on something the pours hold)
            others = [i for h in groups if h is not g and h not in tracked for i in h]
            if not self._connect_pad(net, rule, others, [], g):
                missing.append(g[0])
                path = self._connect(net, rule.min_width, others, [], g, rule, strict=False)
                if path is not None:
                    blockers |= self._crossed(net, path, rule.min_width)
        return missing, sorted(blockers)

    @staticmethod
    def _widths(rule):
        ws = [rule.width]
        for w in (0.3, 0.25, 0.2, 0.15):
            if rule.min_width <= w < ws[-1] - 1e-9:
                ws.append(w)
        return ws

    def _need(self, width):
        # distance a cell centre must keep from foreign copper for a track of this width:
        # the segment to a neighbouring centre strays at most h/sqrt(2) from its end cells
        return width / 2 + self.p.clearance + self.h * 0.7072

    def _connect(self, net, width, tree_pads, tree_cells, target, rule, strict):
        pads = self.p.pads
        pts = [pads[i].center for i in tree_pads + list(target)]
        pts += [self._xy(r, c) for _, r, c in tree_cells]
        # a small window first; when that fails, the whole board at once (a middle size
        # rarely helps and each failed search costs a full flood of the window)
        # (the whole board is searched only when the small window could be too small: not
        # when its failure is sealed inside it)
        for margin in (4.0, 1e9):
            win = self._window(pts, margin)
            path, sealed = self._search(net, width, tree_pads, tree_cells, target, rule, win,
                                        strict)
            if path is not None or sealed or win == (0, self.p.shape[0], 0, self.p.shape[1]):
                return path
        return None

    def _xy(self, r, c):
        return (self.p.origin[0] + c * self.h, self.p.origin[1] + r * self.h)

    def _search(self, net, width, tree_pads, tree_cells, target, rule, win, strict):
        """(path, sealed): the connection's path in window `win`, or None; sealed True when
        there is none and a larger window would find none either. A cell's cost here depends
        on the cell alone, not on the window (every patch holds its copper's distances over
        its own extent), so what decides that is whether the terminals' pads lie inside the
        window and whether the way out of it is shut (see pathsearch._sealed)."""
        r0, r1, c0, c1 = win
        need = self._need(width)
        vneed = self.p.via_diameter / 2 + self.p.clearance + 0.01
        if strict:
            fd = self._foreign(net, win)
            soft = None
        else:
            fd = self._foreign(net, win, kinds=("pad", "obstacle"))
            soft = self._foreign(net, win, kinds=("track", "via"))
        inside = self.p.inside[r0:r1, c0:c1]
        edge = self.p.edge_dist[r0:r1, c0:c1]
        edge_ok = inside & (edge >= width / 2 + self.p.edge_clearance + self.h * 0.7072)
        via_edge_ok = inside & (edge >= self.p.via_diameter / 2 + self.p.edge_clearance)
        free = (fd >= need) & edge_ok[None]
        # keep-away nets (analog inputs from camera clocks) as hard extra distance
        for other, extra in rule.keep_away.items():
            kd = self._foreign(net, win, only={other})
            free &= kd >= need + extra
        # the search's cost of a unit step through each cell, as indices into self.step_costs;
        # planes 0 and 2 are F.Cu and B.Cu, plane 1 the via plane between them
        ps = _pathsearch()
        codes = np.full((3, r1 - r0, c1 - c0), ps.BLOCKED, dtype=np.uint8)
        copper = codes[0::2]
        np.copyto(copper, _TRACK, where=free)
        if soft is not None:
            np.copyto(copper, _SOFT, where=(soft < need) & free)
        # own pads: cells inside them are where a connection may start or end
        own = np.zeros((2, r1 - r0, c1 - c0), dtype=bool)
        tht_own = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        for pt in self.pad_patches.values():
            if pt.net != net:
                continue
            a0, a1 = max(r0, pt.r0), min(r1, pt.r1)
            b0, b1 = max(c0, pt.c0), min(c1, pt.c1)
            if a0 >= a1 or b0 >= b1:
                continue
            sub = pt.d[a0 - pt.r0 : a1 - pt.r0, b0 - pt.c0 : b1 - pt.c0] <= 0
            for L in pt.layers:
                own[L, a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] |= sub
            if len(pt.layers) == 2:
                tht_own[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] |= sub
        # a pair partner: cheaper to run beside it (keeps the USB pair together)
        if rule.pair and rule.pair in self.tracks:
            pd = self._foreign(net, win, only={rule.pair}, kinds=("track",))
            beside = (pd >= need) & (pd < need + 2 * self.h)
            np.copyto(copper, _BESIDE, where=beside & free)
        vcells = (fd[0] >= vneed) & (fd[1] >= vneed) & via_edge_ok
        self._space_from_own_vias(net, win, vcells)
        vias = codes[1]
        np.copyto(vias, _VIA, where=vcells)
        if soft is not None:
            np.copyto(vias, _VIA_SOFT, where=vcells & ((soft[0] < vneed) | (soft[1] < vneed)))
        np.copyto(vias, _TRACK, where=tht_own & free[0] & free[1])  # a plated hole: free
        # start: the tree; end: the target pad's free cells
        starts = [self._pad_cells(i, win, free) for i in tree_pads]
        if tree_cells:
            tc = np.array(tree_cells, dtype=np.intp)
            tc = tc[(tc[:, 1] >= r0) & (tc[:, 1] < r1) & (tc[:, 2] >= c0) & (tc[:, 2] < c1)]
            starts.append(tc * (2, 1, 1) - (0, r0, c0))
        if target is None:
            other = 2 * (1 - self.p.pads[tree_pads[0]].layers[0])
            rr, cc = np.nonzero(free[other // 2] & ~own[other // 2])
            ends = [np.stack([np.full(len(rr), other), rr, cc], axis=1)]
        else:
            ends = [self._pad_cells(i, win, free) for i in (target if isinstance(target, list) else [target])]
        starts = np.concatenate(starts) if starts else np.zeros((0, 3), np.intp)
        ends = np.concatenate(ends) if ends else np.zeros((0, 3), np.intp)
        # tree cells lie inside the window (it is drawn around them); pads may not
        pads_inside = target is not None and all(
            self._holds(win, self.pad_patches[i])
            for i in list(tree_pads) + (target if isinstance(target, list) else [target]))
        if not len(starts) or not len(ends):
            return None, pads_inside
        starts = starts[codes[tuple(starts.T)] != ps.BLOCKED]
        if not len(starts):
            return None, pads_inside
        is_end = np.zeros(codes.shape, dtype=bool)
        is_end[tuple(ends.T)] = True
        rows, cols = self.p.shape
        open_sides = (r0 > 0, r1 < rows, c0 > 0, c1 < cols)
        path, sealed = ps.search_window(codes, self.step_costs, starts, is_end, open_sides)
        if not len(path):
            return None, pads_inside and sealed
        # back to global (layer 0/1, row, col); drop the via-plane steps
        out = []
        for z, r, c in path.tolist():
            if z == 1:
                continue
            out.append((z // 2, r + r0, c + c0))
        return self._smooth(out, free, win), False

    @staticmethod
    def _holds(win, pt):
        r0, r1, c0, c1 = win
        return r0 <= pt.r0 and pt.r1 <= r1 and c0 <= pt.c0 and pt.c1 <= c1

    def _space_from_own_vias(self, net, win, vcells):
        """The net's own vias are not foreign copper, so nothing else keeps a new via from
        drilling beside (or onto) one: cells nearer than the fab's hole spacing become no via
        site, except the via's own cell, where a path reuses it (_commit adds no second)."""
        r0, r1, c0, c1 = win
        spacing = self.p.via_drill + self.p.hole_to_hole
        k = int(np.ceil(spacing / self.h))
        for v in self.vias.get(net, []):
            vc = (v.at[0] - self.p.origin[0]) / self.h
            vr = (v.at[1] - self.p.origin[1]) / self.h
            a0, a1 = max(r0, int(vr) - k), min(r1, int(vr) + k + 2)
            b0, b1 = max(c0, int(vc) - k), min(c1, int(vc) + k + 2)
            if a0 >= a1 or b0 >= b1:
                continue
            rr, cc = np.mgrid[a0:a1, b0:b1]
            d = np.hypot(rr - vr, cc - vc) * self.h
            near = (d < spacing) & (d > self.h * 0.5)
            vcells[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] &= ~near

    def _pad_cells(self, i, win, free):
        """(n, 3) search cells (plane, row, col in the window) inside pad i that are free."""
        r0, r1, c0, c1 = win
        pt = self.pad_patches[i]
        a0, a1 = max(r0, pt.r0), min(r1, pt.r1)
        b0, b1 = max(c0, pt.c0), min(c1, pt.c1)
        if a0 >= a1 or b0 >= b1:
            return np.zeros((0, 3), np.intp)
        inside = pt.d[a0 - pt.r0 : a1 - pt.r0, b0 - pt.c0 : b1 - pt.c0] <= 0
        cells = []
        for L in pt.layers:
            rr, cc = np.nonzero(inside & free[L, a0 - r0 : a1 - r0, b0 - c0 : b1 - c0])
            cells.append(np.stack([np.full(len(rr), 2 * L), rr + (a0 - r0), cc + (b0 - c0)], axis=1))
        return np.concatenate(cells)

    def _smooth(self, path, free, win):
        """Replace staircases by at most two octilinear legs where the cells allow it."""
        r0, _, c0, _ = win
        if len(path) < 3:
            return path

        def clear(L, a, b):
            (ra, ca), (rb, cb) = a, b
            n = max(abs(rb - ra), abs(cb - ca))
            if n == 0:
                return True
            sr = (rb - ra) // n if rb != ra else 0
            sc = (cb - ca) // n if cb != ca else 0
            if sr * n != rb - ra or sc * n != cb - ca:
                return False
            for k in range(n + 1):
                if not free[L, ra + sr * k - r0, ca + sc * k - c0]:
                    return False
            return True

        def bend(a, b):
            dr, dc = b[0] - a[0], b[1] - a[1]
            m = min(abs(dr), abs(dc))
            sr = (dr > 0) - (dr < 0)
            sc = (dc > 0) - (dc < 0)
            diag_first = (a[0] + sr * m, a[1] + sc * m)
            orth_first = (b[0] - sr * m, b[1] - sc * m)
            return [diag_first, orth_first]

        out = [path[0]]
        i = 0
        n = len(path)
        while i < n - 1:
            L = path[i][0]
            j_best, mid_best = i + 1, None
            j = i + 1
            while j < n and path[j][0] == L:
                j += 1
            for j2 in range(j - 1, i + 1, -1):
                a, b = path[i][1:], path[j2][1:]
                for m in bend(a, b):
                    if clear(L, a, m) and clear(L, m, b):
                        j_best, mid_best = j2, m
                        break
                if mid_best is not None:
                    break
            if mid_best is not None and mid_best not in (path[i][1:], path[j_best][1:]):
                out.append((L, *mid_best))
            out.append(path[j_best])
            i = j_best
        return out

    def _commit(self, net, path, width, tree_cells):
        tr = self.tracks.setdefault(net, [])
        vs = self.vias.setdefault(net, [])
        pats = self.track_patches.setdefault(net, [])
        for (la, ra, ca), (lb, rb, cb) in zip(path, path[1:], strict=False):
            a, b = self._xy(ra, ca), self._xy(rb, cb)
            if la != lb:
                if not self._in_tht(net, ra, ca) and not any(
                        np.hypot(a[0] - w.at[0], a[1] - w.at[1]) < 1e-6 for w in vs):
                    v = Via(net, a, self.p.via_diameter, self.p.via_drill)
                    vs.append(v)
                    pt = self._capsule_patch(net, (F, B), a, a, v.diameter / 2, "via")
                    pats.append(pt)
                    self.patches.append(pt)
                continue
            if (ra, ca) == (rb, cb):
                continue
            t = Track(net, la, a, b, width)
            tr.append(t)
            pt = self._capsule_patch(net, (la,), a, b, width / 2, "track")
            pats.append(pt)
            self.patches.append(pt)
        # the tree may branch anywhere along the new path
        full = []
        for (la, ra, ca), (lb, rb, cb) in zip(path, path[1:], strict=False):
            n = max(abs(rb - ra), abs(cb - ca), 1)
            for k in range(n + 1):
                full.append((la if la == lb else la, ra + (rb - ra) * k // n, ca + (cb - ca) * k // n))
        full.append(path[-1])
        tree_cells.extend(full)

    def _in_tht(self, net, r, c):
        for pt in self.pad_patches.values():
            if pt.net == net and len(pt.layers) == 2 and pt.r0 <= r < pt.r1 and pt.c0 <= c < pt.c1:
                if pt.d[r - pt.r0, c - pt.c0] <= 0:
                    return True
        return False

    def _crossed(self, net, path, width):
        need = self._need(width)
        hit = set()
        cells = []
        for (la, ra, ca), (lb, rb, cb) in zip(path, path[1:], strict=False):
            n = max(abs(rb - ra), abs(cb - ca), 1)
            cells += [(la, ra + (rb - ra) * k // n, ca + (cb - ca) * k // n) for k in range(n + 1)]
            if la != lb:
                cells.append((lb, rb, cb))
        vias = [(ra, ca) for (la, ra, ca), (lb, _, _) in zip(path, path[1:], strict=False) if la != lb]
        vneed = self.p.via_diameter / 2 + self.p.clearance + 0.01
        checks = [(L, r, c, need) for L, r, c in cells or path]
        checks += [(L, r, c, vneed) for r, c in vias for L in (F, B)]
        for L, r, c, dmin in checks:
            for pt in self.patches:
                if pt.kind not in ("track", "via") or pt.net == net or L not in pt.layers:
                    continue
                if pt.r0 <= r < pt.r1 and pt.c0 <= c < pt.c1 and pt.d[r - pt.r0, c - pt.c0] < dmin:
                    hit.add(pt.net)
        return hit


def route(prob: Problem, max_ripups: int = 60) -> Result:
    return Router(prob).route(max_ripups=max_ripups)


# ---------------------------------------------------------------- public clearance API
# What the board builder needs beyond routing: a thin layer over the internals above, so
# callers do not reach into them.


def polygon_distance(px, py, poly) -> np.ndarray:
    """Distance (mm) from points (arrays px, py) to a simple polygon, 0 inside."""
    return _poly_dist(px, py, poly)


def clearance_map(rt: Router, net: str | None = None, open_to: str | None = None) -> np.ndarray:
    """Distance (mm) from every grid cell centre to the nearest copper of nets other than
    `net` (None: all copper, obstacles included), per layer: shape (2, rows, cols). The areas
    only `open_to` may enter (quiet ground areas) do not count as copper."""
    rows, cols = rt.p.shape
    if open_to is None:
        return rt._foreign(net, (0, rows, 0, cols))
    every = rt.patches
    rt.patches = [pt for pt in every if not (pt.kind == "obstacle" and pt.net == open_to)]
    try:
        return rt._foreign(net, (0, rows, 0, cols))
    finally:
        rt.patches = every


# ---------------------------------------------------------------- benchmark


def board_problem():
    """The committed board's routing problem, placed as `board build` places it (needs pcbnew)."""
    from openmetering.board import build, routing
    from openmetering.board.layout import load_spec
    from openmetering.paths import project

    paths = project()
    spec = load_spec(paths.placement)
    lay = build.place_board(spec, paths.netlist)
    return routing.problem(lay, h=spec["routing"]["grid"]), spec["routing"]["max_ripups"]


def bench(runs: int = 3, problem=None, max_ripups: int = 60, log=print) -> dict:
    """Route a problem from scratch `runs` times (the board's when none is given) and return
    the seconds of each run (wall and CPU of this process), their medians and the result
    digests; two digests that differ mean the router is not deterministic."""
    t = time.perf_counter()
    if problem is None:
        problem, max_ripups = board_problem()
    prepare = time.perf_counter() - t
    t = time.perf_counter()
    lowest_path(np.ones((3, 2, 2)), [(0, 0, 0)], np.ones((3, 2, 2), dtype=bool))
    compile_s = time.perf_counter() - t  # importing numba, and its compile or loading its cache
    load = os.getloadavg()[0]
    rows = []
    for k in range(runs):
        w, c = time.perf_counter(), time.process_time()
        res = Router(problem).route(max_ripups=max_ripups)
        w, c = time.perf_counter() - w, time.process_time() - c
        rows.append({"wall_s": round(w, 2), "cpu_s": round(c, 2), "tracks": len(res.tracks),
                     "vias": len(res.vias), "unrouted": len(res.unrouted), "digest": res.digest()})
        log(f"run {k + 1}: {w:.1f} s wall, {c:.1f} s CPU, {len(res.tracks)} tracks, "
            f"{len(res.vias)} vias, {len(res.unrouted)} unrouted, result {res.digest()[:12]}")
    out = {
        "router": VERSION, "grid": list(problem.shape), "nets": len(problem.rules),
        "prepare_s": round(prepare, 2), "kernel_compile_s": round(compile_s, 2),
        "load_average_before": round(load, 2), "load_average_after": round(os.getloadavg()[0], 2),
        "runs": rows,
        "median_wall_s": round(statistics.median(r["wall_s"] for r in rows), 2),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in rows), 2),
        "deterministic": len({r["digest"] for r in rows}) == 1,
    }
    log(f"median {out['median_wall_s']:.1f} s wall, {out['median_cpu_s']:.1f} s CPU over {runs} runs "
        f"(problem {prepare:.1f} s, kernel compile/load {compile_s:.1f} s, load average "
        f"{load:.2f} before, {out['load_average_after']:.2f} after; {os.cpu_count()} cores)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openmetering.route",
                                 description="the board's grid router (its benchmark)")
    ap.add_argument("--bench", action="store_true", required=True,
                    help="route the board from scratch and print the routing time")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=str, default=None, help="also write the figures to this file")
    a = ap.parse_args(argv)
    out = bench(runs=a.runs, log=lambda m: print(m, flush=True))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2, sort_keys=True)
            f.write("\n")
    if not out["deterministic"]:
        print("runs gave different routes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
