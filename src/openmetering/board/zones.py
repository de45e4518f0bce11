"""Copper zones: keep-out rule areas, the GND pours on both layers, the stitching vias that
join them, and the zone fill."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import route as router
from .layout import Layout, mm
from .routing import add_via


def zone(lay: Layout, layers, net, rect, rule_area=False, priority=0):
    pcbnew = lay.pcbnew
    z = pcbnew.ZONE(lay.board)
    ls = pcbnew.LSET()
    for L in layers:
        ls.AddLayer(L)
    z.SetLayerSet(ls)
    x0, y0, x1, y1 = rect
    o = z.Outline()
    o.NewOutline()
    for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
        o.Append(mm(lay.ox + x), mm(lay.oy + y))
    if rule_area:
        z.SetIsRuleArea(True)
        z.SetDoNotAllowTracks(True)
        z.SetDoNotAllowVias(True)
        z.SetDoNotAllowCopperPour(True)
        z.SetDoNotAllowPads(False)
        z.SetDoNotAllowFootprints(False)
    else:
        z.SetNet(lay.nets[net])
        zs = lay.spec["zones"]
        z.SetLocalClearance(mm(zs["clearance"]))
        z.SetMinThickness(mm(zs["min_thickness"]))
        z.SetThermalReliefGap(mm(zs["thermal_gap"]))
        z.SetThermalReliefSpokeWidth(mm(zs["thermal_spoke"]))
        z.SetPadConnection(pcbnew.ZONE_CONNECTION_THT_THERMAL)
        z.SetIslandRemovalMode(pcbnew.ISLAND_REMOVAL_MODE_ALWAYS)
        z.SetAssignedPriority(priority)
    lay.board.Add(z)
    return z


def keepouts(lay: Layout) -> None:
    pcbnew = lay.pcbnew
    for k in lay.spec.get("keepout", []):
        zone(lay, [pcbnew.F_Cu, pcbnew.B_Cu], None, k["rect"], rule_area=True)


def pours(lay: Layout) -> None:
    pcbnew = lay.pcbnew
    net = lay.spec["zones"]["net"]
    zone(lay, [pcbnew.F_Cu], net, (0, 0, lay.w, lay.h))
    zone(lay, [pcbnew.B_Cu], net, (0, 0, lay.w, lay.h))


def stitching(lay: Layout, prob: router.Problem, rt: router.Router) -> list:
    """GND vias on a regular grid, and finer in the quiet areas, wherever one fits with full
    clearance on both layers."""
    st = lay.spec["zones"]
    net = st["net"]
    pitch = st["stitch_pitch"]
    p = prob
    rad = p.via_diameter / 2
    need = rad + st["clearance"] + 0.05
    # distance to every piece of copper, GND included: a stitching via must not land on a
    # GND pad or hole either; the quiet areas are GND's own
    fd = router.clearance_map(rt, open_to=net)
    placed = []
    avoid = [tuple(a) for a in st.get("stitch_avoid", [])]
    grid = [(x, y) for y in np.arange(pitch, lay.h - pitch / 2, pitch)
            for x in np.arange(pitch, lay.w - pitch / 2, pitch)]
    # the quiet areas carry return currents: the regular grid can miss them between the top
    # layer's tracks, so they are searched finely, one via per pitch / 2 at most
    fine = []
    for q in lay.spec.get("quiet", []):
        x0, y0, x1, y1 = q["rect"]
        fine += [(x, y) for y in np.arange(y0 + 0.5, y1 - 0.4, 0.25)
                 for x in np.arange(x0 + 0.5, x1 - 0.4, 0.25)]
    for k, (x, y) in enumerate(grid + fine):
        if k >= len(grid) and any(math.hypot(x - a, y - b) < pitch / 2 for a, b in placed):
            continue
        r, c = int(round(y / p.h)), int(round(x / p.h))
        if not p.inside[r, c] or p.edge_dist[r, c] < rad + p.edge_clearance + 0.2:
            continue
        if fd[0, r, c] < need or fd[1, r, c] < need:
            continue
        if any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in avoid):
            continue
        # the pours must actually reach it: keep off crowded spots
        if fd[0, r, c] < need + 0.3 or fd[1, r, c] < need + 0.3:
            continue
        at = (round(r * p.h, 3), round(c * p.h, 3))[::-1]
        add_via(lay, net, at, p.via_diameter, p.via_drill)
        placed.append(at)
    return placed


def fill(pcb: Path) -> None:
    """Fill the zones of a saved board. An in-memory BOARD() has no project, and ZONE_FILLER
    crashes on it: fill a loaded copy."""
    import pcbnew

    loaded = pcbnew.LoadBoard(str(pcb))
    loaded.BuildConnectivity()
    pcbnew.ZONE_FILLER(loaded).Fill(loaded.Zones())
    pcbnew.SaveBoard(str(pcb), loaded)
