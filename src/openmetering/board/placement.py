"""Placement: parts the spec places go where it says ([parts], [[hole]]); groups (decoupling)
go next to their anchor pin; every other part goes on the free grid spot that minimises its
connection length to what is already placed, most-connected first.

An update of the committed board (`reuse`) keeps every footprint it already has where it is,
as KiCad's "update PCB from schematic" does, and places only the new ones around them."""

from __future__ import annotations

import numpy as np

from ..errors import DesignError
from ..kicadnet import ref_key
from .layout import Layout


class Placer:
    def __init__(self, layout: Layout, keep: dict | None = None):
        self.lay = layout
        self.spec = layout.spec
        self.auto_placed: set[str] = set()
        # ref -> (x nm, y nm, orientation deg, layer name) on the committed board
        self.keep = {r: k for r, k in (keep or {}).items() if r in layout.fps}

    def place(self):
        lay = self.lay
        placed = {}
        for ref, p in self.spec.get("parts", {}).items():
            if ref not in lay.fps:
                lay.log.append(f"placement: {ref} is in the spec but not in the netlist")
                continue
            self.put(ref, p["at"], p.get("rot", 0), p.get("side", "F"))
            placed[ref] = True
        for hole in self.spec.get("hole", []):
            self.put(hole["ref"], hole["at"], 0, "F")
            placed[hole["ref"]] = True
        for ref, (x, y, rot, layer) in sorted(self.keep.items()):
            if ref not in placed:
                self.put_exact(ref, x, y, rot, "B" if layer == "B.Cu" else "F")
                placed[ref] = True
        occupied = [self.box(ref) for ref in placed]
        keepouts = [tuple(k["rect"]) for k in self.spec.get("keepout", []) + self.spec.get("reserve", [])]
        # groups first (decoupling at their pins), then everything else next to what it
        # shares the most nets with
        todo = []
        for g in self.spec.get("group", []):
            for ref in g["parts"]:
                if ref in lay.fps and ref not in placed:
                    todo.append((ref, g["anchor"], str(g["pad"])))
        rest = [r for r in sorted(lay.fps, key=ref_key) if r not in placed
                and r not in {t[0] for t in todo}]
        for ref, anchor, pad in todo:
            self.auto(ref, occupied, keepouts, anchor=(anchor, pad))
            placed[ref] = True
        # parts with the most connections to placed parts go first
        while rest:
            rest.sort(key=lambda r: (-self.links(r, placed), ref_key(r)))
            ref = rest.pop(0)
            self.auto(ref, occupied, keepouts, anchor=None)
            placed[ref] = True

    def links(self, ref, placed):
        n = 0
        for pad in self.lay.fps[ref].Pads():
            net = pad.GetNetname()
            if not net or net == "GND":
                continue
            for r2, _p in self.net_pads(net):
                if r2 in placed and r2 != ref:
                    n += 1
        return n

    def net_pads(self, net):
        return self.lay.net.nets.get(net, [])

    def put(self, ref, at, rot, side):
        pcbnew = self.lay.pcbnew
        fp = self.lay.fps[ref]
        fp.SetPosition(self.lay.P(*at))
        if side == "B" and not fp.IsFlipped():
            fp.Flip(fp.GetPosition(), pcbnew.FLIP_DIRECTION_LEFT_RIGHT)
        fp.SetOrientationDegrees(rot)

    def put_exact(self, ref, x_nm, y_nm, rot, side):
        pcbnew = self.lay.pcbnew
        fp = self.lay.fps[ref]
        fp.SetPosition(pcbnew.VECTOR2I(int(x_nm), int(y_nm)))
        if side == "B" and not fp.IsFlipped():
            fp.Flip(fp.GetPosition(), pcbnew.FLIP_DIRECTION_LEFT_RIGHT)
        fp.SetOrientationDegrees(rot)

    def box(self, ref, margin=None):
        lay = self.lay
        pcbnew = lay.pcbnew
        fp = lay.fps[ref]
        m = self.spec["placement"]["spacing"] if margin is None else margin
        box = self.spec.get("parts", {}).get(ref, {}).get("box")
        if box:  # e.g. the module, whose courtyard includes the antenna keep-out drawing
            return (box[0] - m, box[1] - m, box[2] + m, box[3] + m)
        layer = pcbnew.B_CrtYd if fp.IsFlipped() else pcbnew.F_CrtYd
        bb = fp.GetCourtyard(layer).BBox()
        if bb.GetWidth() == 0:
            bb = fp.GetBoundingBox(False)
        x0 = pcbnew.ToMM(bb.GetX()) - lay.ox - m
        y0 = pcbnew.ToMM(bb.GetY()) - lay.oy - m
        return (x0, y0, x0 + pcbnew.ToMM(bb.GetWidth()) + 2 * m,
                y0 + pcbnew.ToMM(bb.GetHeight()) + 2 * m)

    def auto(self, ref, occupied, keepouts, anchor, radius=None):
        """Put a part on the free spot that minimises its connection length."""
        lay = self.lay
        fp = lay.fps[ref]
        cfg = self.spec["placement"]
        grid = cfg["grid"]
        edge = cfg["edge_margin"]
        placed_refs = {r for r in lay.fps if r != ref and self.is_placed(r)}
        # where its nets already are
        pulls = []
        for pad in fp.Pads():
            net = pad.GetNetname()
            if not net or net == "GND":
                continue
            for r2, n2 in self.net_pads(net):
                if r2 in placed_refs:
                    pulls.append((pad.GetNumber(), lay.pad_xy(r2, n2)))
        if anchor:
            ax, ay = lay.pad_xy(*anchor)
        elif pulls:
            ax, ay = np.mean([p[1] for p in pulls], axis=0)
        else:
            ax, ay = lay.w / 2, lay.h / 2
        occ = np.array(occupied + keepouts) if occupied or keepouts else np.zeros((0, 4))
        best = None
        for rot in cfg["rotations"]:
            fp.SetPosition(lay.P(0, 0))
            fp.SetOrientationDegrees(rot)
            x0, y0, x1, y1 = self.box(ref)
            offs = {}
            for pad in fp.Pads():
                offs.setdefault(pad.GetNumber(), lay.local(pad.GetPosition()))
            rad = radius or cfg["search_radius"]
            rng = np.arange(-rad, rad + 1e-9, grid)
            cx, cy = np.meshgrid(np.round((ax + rng) / grid) * grid, np.round((ay + rng) / grid) * grid)
            cx, cy = cx.ravel(), cy.ravel()
            ok = (cx + x0 >= edge) & (cy + y0 >= edge) & (cx + x1 <= lay.w - edge) & (cy + y1 <= lay.h - edge)
            for ox0, oy0, ox1, oy1 in occ:
                ok &= ~((cx + x0 < ox1) & (cx + x1 > ox0) & (cy + y0 < oy1) & (cy + y1 > oy0))
            if not ok.any():
                continue
            cx, cy = cx[ok], cy[ok]
            score = 0.05 * np.hypot(cx - ax, cy - ay)
            # a grouped part (decoupling, an RC) belongs at its anchor pin: its other nets
            # (a supply with pads all over the board, a button far away) only break ties
            pull_w = 0.1 if anchor is not None else 1.0
            for num, (tx, ty) in pulls:
                px, py = offs[num]
                score = score + pull_w * np.hypot(cx + px - tx, cy + py - ty)
            if anchor is not None:
                # the pad that shares the anchor's net sits at the anchor pin
                anet = lay.pad_net(*anchor)
                for pad in fp.Pads():
                    if pad.GetNetname() == anet:
                        px, py = offs[pad.GetNumber()]
                        score = score + 2 * np.hypot(cx + px - ax, cy + py - ay)
                        break
            k = int(np.argmin(score))
            cand = (float(score[k]), rot, float(cx[k]), float(cy[k]))
            if best is None or cand[0] < best[0] - 1e-9:
                best = cand
        if best is None and (radius or cfg["search_radius"]) < max(lay.w, lay.h):
            return self.auto(ref, occupied, keepouts, anchor, 2 * (radius or cfg["search_radius"]))
        if best is None:
            raise DesignError(f"placement: no free spot for {ref} near {anchor or (ax, ay)}")
        _, rot, x, y = best
        fp.SetPosition(lay.P(round(x, 3), round(y, 3)))
        fp.SetOrientationDegrees(rot)
        occupied.append(self.box(ref))
        self.auto_placed.add(ref)

    def is_placed(self, ref):
        return ref in self.spec.get("parts", {}) or ref in self.auto_placed or \
            ref in self.keep or ref in {h["ref"] for h in self.spec.get("hole", [])}


def place(layout: Layout, keep: dict | None = None) -> None:
    Placer(layout, keep).place()
