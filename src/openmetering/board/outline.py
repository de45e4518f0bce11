"""The board edge (a rounded rectangle) and the silkscreen: the spec's texts and pin labels,
and footprint silkscreen trimmed where it would print past the edge."""

from __future__ import annotations

import math

from .layout import Layout, mm

EDGE_WIDTH = 0.05


def outline(lay: Layout) -> None:
    pcbnew = lay.pcbnew
    r = lay.spec["board"].get("corner_radius", 0.0)
    w, h = lay.w, lay.h
    segs = [((r, 0), (w - r, 0)), ((w, r), (w, h - r)), ((w - r, h), (r, h)), ((0, h - r), (0, r))]
    for a, b in segs:
        s = pcbnew.PCB_SHAPE(lay.board)
        s.SetShape(pcbnew.SHAPE_T_SEGMENT)
        s.SetStart(lay.P(*a))
        s.SetEnd(lay.P(*b))
        s.SetLayer(pcbnew.Edge_Cuts)
        s.SetWidth(mm(EDGE_WIDTH))
        lay.board.Add(s)
    if r > 0:
        k = r * (1 - math.sqrt(0.5))
        for a, m, b in (((0, r), (k, k), (r, 0)), ((w - r, 0), (w - k, k), (w, r)),
                        ((w, h - r), (w - k, h - k), (w - r, h)), ((r, h), (k, h - k), (0, h - r))):
            s = pcbnew.PCB_SHAPE(lay.board)
            s.SetShape(pcbnew.SHAPE_T_ARC)
            s.SetArcGeometry(lay.P(*a), lay.P(*m), lay.P(*b))
            s.SetLayer(pcbnew.Edge_Cuts)
            s.SetWidth(mm(EDGE_WIDTH))
            lay.board.Add(s)


def trim_silk(lay: Layout) -> None:
    """Drop footprint silkscreen that would print past the board edge (the module's antenna
    outline hangs over the top edge on purpose), and footprint Edge.Cuts drawings (the audio
    jacks draw the board edge they expect): the spec's rectangle is the one outline."""
    pcbnew = lay.pcbnew
    m = lay.spec["rules"]["silk_clearance"]
    for fp in lay.fps.values():
        for item in list(fp.GraphicalItems()):
            if item.GetLayer() == pcbnew.Edge_Cuts:
                fp.Remove(item)
                continue
            if item.GetLayer() not in (pcbnew.F_SilkS, pcbnew.B_SilkS):
                continue
            bb = item.GetBoundingBox()
            x0 = pcbnew.ToMM(bb.GetX()) - lay.ox
            y0 = pcbnew.ToMM(bb.GetY()) - lay.oy
            x1 = x0 + pcbnew.ToMM(bb.GetWidth())
            y1 = y0 + pcbnew.ToMM(bb.GetHeight())
            if x0 < m or y0 < m or x1 > lay.w - m or y1 > lay.h - m:
                fp.Remove(item)


def silkscreen(lay: Layout) -> None:
    """The spec's [[text]] notes and [[pin_labels]] beside connector pads."""
    for t in lay.spec.get("text", []):
        _text(lay, t["text"], t["at"], t.get("size", 1.0), t.get("layer", "F.SilkS"),
              t.get("rot", 0), t.get("justify", "center"))
    for pl in lay.spec.get("pin_labels", []):
        ref = pl["ref"]
        if ref not in lay.fps:
            continue
        dx, dy = pl["offset"]
        for num, label in pl["labels"].items():
            x, y = lay.pad_xy(ref, num)
            _text(lay, label, (x + dx, y + dy), pl.get("size", 1.0), "F.SilkS",
                  pl.get("rot", 0), pl.get("justify", "center"))


def _text(lay: Layout, text, at, size, layer, rot, justify):
    pcbnew = lay.pcbnew
    t = pcbnew.PCB_TEXT(lay.board)
    t.SetText(text)
    t.SetPosition(lay.P(*at))
    t.SetLayer({"F.SilkS": pcbnew.F_SilkS, "B.SilkS": pcbnew.B_SilkS, "F.Fab": pcbnew.F_Fab,
                "B.Fab": pcbnew.B_Fab}[layer])
    t.SetTextSize(pcbnew.VECTOR2I(mm(size), mm(size)))
    t.SetTextThickness(mm(round(max(0.16, size * 0.16), 3)))
    t.SetTextAngleDegrees(rot)
    t.SetHorizJustify({"left": pcbnew.GR_TEXT_H_ALIGN_LEFT, "right": pcbnew.GR_TEXT_H_ALIGN_RIGHT}
                      .get(justify, pcbnew.GR_TEXT_H_ALIGN_CENTER))
    if layer.startswith("B."):
        t.SetMirrored(True)
    lay.board.Add(t)
