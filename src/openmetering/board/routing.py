"""The adapter between the board and the router (`openmetering.route`, which knows nothing of
pcbnew): the placed board as a routing problem (grid, outline distance, pad polygons, hole
obstacles, a rule per net), and the router's tracks and vias back onto the board."""

from __future__ import annotations

import fnmatch
import math

import numpy as np

from .. import route as router
from ..errors import DesignError
from ..kicadnet import ref_key
from .layout import Layout, mm


def fnmatch_any(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def netclass_of(spec: dict, net: str) -> str:
    for cls, c in spec["netclass"].items():
        if fnmatch_any(net, c.get("nets", [])):
            return cls
    return "Default"


def problem(lay: Layout, h=0.05) -> router.Problem:
    pcbnew = lay.pcbnew
    spec = lay.spec
    rs = spec["routing"]
    rows, cols = int(round(lay.h / h)) + 1, int(round(lay.w / h)) + 1
    ys = h * np.arange(rows)[:, None]
    xs = h * np.arange(cols)[None, :]
    r = spec["board"].get("corner_radius", 0.0)
    # signed distance inside a rounded rectangle
    qx = np.abs(xs - lay.w / 2) - (lay.w / 2 - r)
    qy = np.abs(ys - lay.h / 2) - (lay.h / 2 - r)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    edge = (r - outside).astype(np.float32)
    px, py = np.meshgrid(xs.ravel(), ys.ravel())
    for k in spec.get("keepout", []):
        x0, y0, x1, y1 = k["rect"]
        poly = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        d = router.polygon_distance(px, py, poly)
        d[(px > x0) & (px < x1) & (py > y0) & (py < y1)] = 0
        edge = np.minimum(edge, d.astype(np.float32))
    inside = edge > 0
    pads, obstacles = [], []
    for ref in sorted(lay.fps, key=ref_key):
        fp = lay.fps[ref]
        for pad in fp.Pads():
            layers = []
            if pad.IsOnLayer(pcbnew.F_Cu):
                layers.append(router.F)
            if pad.IsOnLayer(pcbnew.B_Cu):
                layers.append(router.B)
            if not layers and pad.GetDrillSize().x == 0:
                continue  # paste-only aperture (the module's exposed-pad windows)
            if pad.GetAttribute() == pcbnew.PAD_ATTRIB_NPTH or not layers:
                # a bare hole: keep copper hole_clearance away from it
                d = pcbnew.ToMM(max(pad.GetDrillSize().x, pad.GetDrillSize().y))
                c = pad.GetPosition()
                extra = spec["rules"]["hole_clearance"] - rs["clearance"]
                rad = d / 2 + max(extra, 0)
                ang = np.linspace(0, 2 * np.pi, 32, endpoint=False)
                poly = np.c_[pcbnew.ToMM(c.x) - lay.ox + rad * np.cos(ang) / np.cos(np.pi / 32),
                             pcbnew.ToMM(c.y) - lay.oy + rad * np.sin(ang) / np.cos(np.pi / 32)]
                obstacles.append(((router.F, router.B), poly))
                continue
            ps = pcbnew.SHAPE_POLY_SET()
            pad.TransformShapeToPolygon(ps, layers and (pcbnew.F_Cu if layers[0] == 0 else pcbnew.B_Cu),
                                        0, mm(0.002), pcbnew.ERROR_OUTSIDE)
            for k in range(ps.OutlineCount()):
                o = ps.Outline(k)
                poly = np.array([lay.local(o.CPoint(i)) for i in range(o.PointCount())])
                pads.append(router.Pad(ref, pad.GetNumber(), pad.GetNetname(), tuple(layers), poly,
                                       lay.local(pad.GetPosition())))
    pads += [p for e in rs.get("escape", []) for p in _escape_pads(lay, e, rs)]
    # ground references: on the listed layers only the area's net (GND) may run, so no
    # signal track splits the ground under the camera bus or the metering chip's inputs
    for q in spec.get("quiet", []):
        x0, y0, x1, y1 = q["rect"]
        layers = tuple(router.F if L == "F" else router.B for L in q.get("layers", ["B"]))
        obstacles.append((layers, np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]),
                          q.get("net", "GND")))
    rules = {}
    for name in lay.net.nets:
        c = spec["netclass"][netclass_of(spec, name)]
        rules[name] = router.NetRule(
            width=c["track"], min_width=c.get("neck_down", c["track"]),
            priority=c.get("priority", 5), pair=None, fanout=c.get("fanout", False),
            track_pads=tuple(rs.get("track_pads", [])),
            keep_away={n: c["keep_away"] for n in c.get("away_from", [])},
        )
    for a, b in rs.get("pairs", []):
        if a in rules and b in rules:
            rules[b].pair = a
            rules[a].priority = rules[b].priority = min(rules[a].priority, rules[b].priority)
    for net in rs.get("unrouted_nets", []):
        rules.pop(net, None)
    return router.Problem(
        origin=(0.0, 0.0), shape=(rows, cols), h=h, inside=inside, edge_dist=edge,
        pads=pads, rules=rules, clearance=rs["clearance"],
        edge_clearance=spec["rules"]["copper_edge_clearance"],
        via_diameter=rs["via_diameter"], via_drill=rs["via_drill"], via_cost=rs["via_cost"],
        hole_to_hole=spec["rules"]["hole_to_hole"], obstacles=obstacles,
    )


def _capsule(a, b, r, n=16):
    """Polygon of the points within r of segment a-b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ang = np.arctan2(*(b - a)[::-1]) if (b - a).any() else 0.0
    arc = np.linspace(-np.pi / 2, np.pi / 2, n)
    r = r / np.cos(np.pi / (2 * (n - 1)))  # the polygon holds the round ends, not the reverse
    end_b = b + r * np.c_[np.cos(ang + arc), np.sin(ang + arc)]
    end_a = a + r * np.c_[np.cos(ang + np.pi + arc), np.sin(ang + np.pi + arc)]
    return np.r_[end_b, end_a]


def _escape(lay: Layout, e: dict):
    """(ref, pad number, net, the stub's points from the pad's centre to its end)."""
    ref, _, number = e["pad"].partition(".")
    if ("via" in e) == ("to" in e):
        raise DesignError(f"routing escape {e['pad']}: give exactly one of via (the stub ends in "
                          "a via) and to (it ends on the pad's layer)")
    points = [lay.pad_xy(ref, number), *map(tuple, e.get("through", [])),
              tuple(e.get("via") or e["to"])]
    return ref, number, lay.pad_net(ref, number), points


def _escape_pads(lay: Layout, e: dict, rs: dict) -> list:
    """An escape as copper of the pad's own terminal: the stub on the pad's layer, then the
    via on both (the router merges overlapping pieces of one pad number into one terminal,
    so it routes on from the via's B.Cu side as from a through-hole pad)."""
    ref, number, net, points = _escape(lay, e)
    stub = [router.Pad(ref, number, net, (router.F,), _capsule(a, b, e["width"] / 2), a)
            for a, b in zip(points, points[1:])]
    if "to" in e:  # a lead-out: it claims the pad's lane before the neighbours route
        return stub
    via = points[-1]
    return stub + [router.Pad(ref, number, net, (router.F, router.B),
                              _capsule(via, via, rs["via_diameter"] / 2), via)]


def add_escapes(lay: Layout, res: router.Result) -> None:
    """The spec's escapes of the nets the router just routed, as a track and a via; the via
    only where the route goes on from its B.Cu side (else it would dangle), or always for the
    poured net (the pours on both layers hold it)."""
    rs = lay.spec["routing"]
    pcbnew = lay.pcbnew
    nets = {t.net for t in res.tracks} | {v.net for v in res.vias}
    nets -= {u.partition(":")[0] for u in res.unrouted}  # a stub would only dangle
    for e in rs.get("escape", []):
        _, _, net, points = _escape(lay, e)
        if net not in nets:
            continue
        for a, b in zip(points, points[1:]):
            tr = pcbnew.PCB_TRACK(lay.board)
            tr.SetStart(lay.P(*a))
            tr.SetEnd(lay.P(*b))
            tr.SetWidth(mm(e["width"]))
            tr.SetLayer(pcbnew.F_Cu)
            tr.SetNet(lay.nets[net])
            lay.board.Add(tr)
        via = points[-1]
        # the disc's polygon holds its circle (see _capsule): a route may end up to 1 % past r
        r = rs["via_diameter"] / 2 * 1.01
        # the route leaves from any cell of the end's disc, not only its centre: a top-layer
        # exit off the centre gets a track to it (else only the via's copper would join them)
        for t in res.tracks:
            for p in (t.a, t.b):
                if t.net == net and t.layer == router.F and 1e-6 < math.dist(p, via) <= r:
                    tr = pcbnew.PCB_TRACK(lay.board)
                    tr.SetStart(lay.P(*via))
                    tr.SetEnd(lay.P(*p))
                    tr.SetWidth(mm(min(e["width"], t.width)))
                    tr.SetLayer(pcbnew.F_Cu)
                    tr.SetNet(lay.nets[net])
                    lay.board.Add(tr)
        if "to" in e:
            continue
        if net == lay.spec["zones"]["net"] or any(t.net == net and t.layer == router.B and
               min(math.dist(via, t.a), math.dist(via, t.b)) <= r
               for t in res.tracks):
            add_via(lay, net, via, rs["via_diameter"], rs["via_drill"])


def add_routes(lay: Layout, res: router.Result) -> None:
    pcbnew = lay.pcbnew
    add_escapes(lay, res)
    for t in res.tracks:
        tr = pcbnew.PCB_TRACK(lay.board)
        tr.SetStart(lay.P(*t.a))
        tr.SetEnd(lay.P(*t.b))
        tr.SetWidth(mm(t.width))
        tr.SetLayer(pcbnew.F_Cu if t.layer == router.F else pcbnew.B_Cu)
        tr.SetNet(lay.nets[t.net])
        lay.board.Add(tr)
    for v in res.vias:
        add_via(lay, v.net, v.at, v.diameter, v.drill)


def add_via(lay: Layout, net, at, dia, drill) -> None:
    pcbnew = lay.pcbnew
    via = pcbnew.PCB_VIA(lay.board)
    via.SetPosition(lay.P(*at))
    via.SetViaType(pcbnew.VIATYPE_THROUGH)
    via.SetWidth(mm(dia))
    via.SetDrill(mm(drill))
    via.SetNet(lay.nets[net])
    lay.board.Add(via)
