"""Build the Open Metering board from the circuit's netlist with pcbnew's Python API.

    python -m openmetering.board build     # (re)build when inputs changed, else keep the board
    python -m openmetering.board build --force
    python -m openmetering.board verify    # exit 1 when the committed board is not current
    python -m openmetering.board render    # PNG + SVG pictures into docs/generated/board/

The placement, outline, holes, silkscreen notes and net classes live in
hardware/kicad/placement.toml; this file only interprets it. The KiCad-writing step runs in a
child process with a frozen clock (libfaketime) and seeded UUIDs, so the same inputs give a
byte-identical board.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from openmetering import kicadnet
from openmetering import route as router

ROOT = Path(__file__).resolve().parents[2]
KICAD = ROOT / "hardware" / "kicad"
NETLIST = KICAD / "open-meter.net"
SCHEMATIC = KICAD / "open-meter.kicad_sch"
SPEC = KICAD / "placement.toml"
PCB = KICAD / "open-meter.kicad_pcb"
INPUTS = KICAD / "open-meter.inputs.json"
PICTURES = ROOT / "docs" / "generated" / "board"
FOOTPRINTS = Path(os.environ.get("KICAD9_FOOTPRINT_DIR", "/usr/share/kicad/footprints"))
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
FROZEN = "2026-01-01 00:00:00"
BUILD_VERSION = "omd-board 1"  # bump when this file's output changes for the same inputs
UUID_SEED = 0x0D0E


def frozen_env() -> dict[str, str]:
    env = dict(os.environ)
    if Path(FAKETIME_LIB).exists():
        env["LD_PRELOAD"] = FAKETIME_LIB
        env["FAKETIME"] = "@" + FROZEN
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    return env


def load_spec(path: Path = SPEC) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def source_netlist(netlist: Path = NETLIST) -> Path:
    """The netlist the board follows: the schematic's own export when a schematic exists
    (its symbol UUIDs make KiCad's schematic parity possible), else the SKiDL netlist."""
    if SCHEMATIC.exists() and netlist == NETLIST:
        out = KICAD / ".build" / "open-meter.sch.net"
        out.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["kicad-cli", "sch", "export", "netlist", "--format", "kicadsexpr", "-o", str(out),
             str(SCHEMATIC)],
            check=True, capture_output=True, env=frozen_env(),
        )
        return out
    return netlist


def input_hash(netlist: Path, spec: Path = SPEC) -> dict:
    net = kicadnet.read_netlist(netlist)
    h = hashlib.sha256()
    dru = (KICAD / "rules.kicad_dru").read_text()
    for part in (net.digest, spec.read_bytes().decode(), dru, router.VERSION, BUILD_VERSION):
        h.update(part.encode() if isinstance(part, str) else part)
    return {
        "netlist_digest": net.digest,
        "spec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest(),
        "router": router.VERSION,
        "builder": BUILD_VERSION,
        "inputs_sha256": h.hexdigest(),
    }


# ---------------------------------------------------------------- pcbnew side


def _mm(v):
    import pcbnew

    return pcbnew.FromMM(float(v))


def _pt(x, y):
    import pcbnew

    return pcbnew.VECTOR2I(_mm(x), _mm(y))


class Builder:
    def __init__(self, netlist: Path, spec: dict):
        import pcbnew

        self.pcbnew = pcbnew
        self.net = kicadnet.read_netlist(netlist)
        self.spec = spec
        b = spec["board"]
        self.ox, self.oy = b["origin"]
        self.w, self.h = b["width"], b["height"]
        pcbnew.KIID.SeedGenerator(UUID_SEED)
        self.board = pcbnew.BOARD()
        self.board.SetCopperLayerCount(2)
        self.fps: dict[str, object] = {}
        self.nets: dict[str, object] = {}
        self.log: list[str] = []
        self._auto_placed: set[str] = set()

    # board-local (mm, origin top-left) -> KiCad page coordinates
    def P(self, x, y):
        return _pt(self.ox + x, self.oy + y)

    def design_settings(self):
        ds = self.board.GetDesignSettings()
        r = self.spec["rules"]
        ds.m_MinClearance = _mm(r["min_clearance"])
        ds.m_TrackMinWidth = _mm(r["min_track"])
        ds.m_ViasMinSize = _mm(r["min_via_diameter"])
        ds.m_MinThroughDrill = _mm(r["min_drill"])
        ds.m_ViasMinAnnularWidth = _mm(r["min_annular_ring"])
        ds.m_CopperEdgeClearance = _mm(r["copper_edge_clearance"])
        ds.m_HoleClearance = _mm(r["hole_clearance"])
        ds.m_HoleToHoleMin = _mm(r["hole_to_hole"])
        ds.m_SilkClearance = _mm(r["silk_clearance"])
        ds.m_SolderMaskMinWidth = 0
        # tented vias: no mask openings for silkscreen to fall into, and what JLCPCB expects
        for attr in ("m_TentViasFront", "m_TentViasBack"):
            if hasattr(ds, attr):
                setattr(ds, attr, True)

    def footprints(self):
        pcbnew = self.pcbnew
        for name in sorted(self.net.nets):
            ni = pcbnew.NETINFO_ITEM(self.board, name)
            self.board.Add(ni)
            self.nets[name] = ni
        pad_nets = self.net.pad_nets()
        for ref in sorted(self.net.parts, key=_refkey):
            part = self.net.parts[ref]
            lib, _, name = part.footprint.partition(":")
            fp = pcbnew.FootprintLoad(str(FOOTPRINTS / f"{lib}.pretty"), name)
            if fp is None:
                raise SystemExit(f"{ref}: footprint {part.footprint} not found in {FOOTPRINTS}")
            fp.SetFPIDAsString(part.footprint)
            fp.SetReference(ref)
            fp.SetValue(part.value)
            for fname in sorted(part.fields):
                if fname in ("Footprint", "Datasheet", "Description", "Reference", "Value"):
                    continue
                f = pcbnew.PCB_FIELD(fp, fp.GetNextFieldId(), fname)
                f.SetText(part.fields[fname])
                f.SetVisible(False)  # an LCSC number must never reach the silkscreen
                f.SetLayer(pcbnew.F_Fab)
                fp.AddField(f)
            if part.sheet_uuid_path:
                fp.SetPath(pcbnew.KIID_PATH(part.sheet_uuid_path))
            fp.Reference().SetLayer(pcbnew.F_Fab)
            fp.Value().SetVisible(False)
            # the BOM flag follows the symbol (the netlist carries exclude_from_bom when set),
            # not the library footprint: KiCad's schematic parity compares the two
            fp.SetExcludedFromBOM("exclude_from_bom" in part.fields)
            self.board.Add(fp)
            for pad in fp.Pads():
                key = (ref, pad.GetNumber())
                if key in pad_nets:
                    pad.SetNet(self.nets[pad_nets[key]])
            self.fps[ref] = fp
        for hole in self.spec.get("hole", []):
            if hole["ref"] in self.fps:
                continue
            fp = pcbnew.FootprintLoad(str(FOOTPRINTS / "MountingHole.pretty"), hole["footprint"])
            fp.SetReference(hole["ref"])
            fp.SetValue("M3")
            fp.SetBoardOnly(True)  # not in the circuit: parity must not ask for it
            fp.Reference().SetLayer(pcbnew.F_Fab)
            fp.Value().SetVisible(False)
            self.board.Add(fp)
            self.fps[hole["ref"]] = fp

    def outline(self):
        pcbnew = self.pcbnew
        r = self.spec["board"].get("corner_radius", 0.0)
        w, h = self.w, self.h
        segs = [((r, 0), (w - r, 0)), ((w, r), (w, h - r)), ((w - r, h), (r, h)), ((0, h - r), (0, r))]
        for a, b in segs:
            s = pcbnew.PCB_SHAPE(self.board)
            s.SetShape(pcbnew.SHAPE_T_SEGMENT)
            s.SetStart(self.P(*a))
            s.SetEnd(self.P(*b))
            s.SetLayer(pcbnew.Edge_Cuts)
            s.SetWidth(_mm(0.05))
            self.board.Add(s)
        if r > 0:
            k = r * (1 - math.sqrt(0.5))
            for a, m, b in (((0, r), (k, k), (r, 0)), ((w - r, 0), (w - k, k), (w, r)),
                            ((w, h - r), (w - k, h - k), (w - r, h)), ((r, h), (k, h - k), (0, h - r))):
                s = pcbnew.PCB_SHAPE(self.board)
                s.SetShape(pcbnew.SHAPE_T_ARC)
                s.SetArcGeometry(self.P(*a), self.P(*m), self.P(*b))
                s.SetLayer(pcbnew.Edge_Cuts)
                s.SetWidth(_mm(0.05))
                self.board.Add(s)

    def trim_silk(self):
        """Drop footprint silkscreen that would print past the board edge (the module's
        antenna outline hangs over the top edge on purpose)."""
        pcbnew = self.pcbnew
        m = self.spec["rules"]["silk_clearance"]
        for fp in self.fps.values():
            for item in list(fp.GraphicalItems()):
                if item.GetLayer() not in (pcbnew.F_SilkS, pcbnew.B_SilkS):
                    continue
                bb = item.GetBoundingBox()
                x0 = pcbnew.ToMM(bb.GetX()) - self.ox
                y0 = pcbnew.ToMM(bb.GetY()) - self.oy
                x1 = x0 + pcbnew.ToMM(bb.GetWidth())
                y1 = y0 + pcbnew.ToMM(bb.GetHeight())
                if x0 < m or y0 < m or x1 > self.w - m or y1 > self.h - m:
                    fp.Remove(item)

    # ------------------------------------------------------------ placement
    def place(self):
        pcbnew = self.pcbnew
        placed = {}
        for ref, p in self.spec.get("parts", {}).items():
            if ref not in self.fps:
                self.log.append(f"placement: {ref} is in the spec but not in the netlist")
                continue
            self._put(ref, p["at"], p.get("rot", 0), p.get("side", "F"))
            placed[ref] = True
        for hole in self.spec.get("hole", []):
            self._put(hole["ref"], hole["at"], 0, "F")
            placed[hole["ref"]] = True
        occupied = [self._box(ref) for ref in placed]
        keepouts = [tuple(k["rect"]) for k in self.spec.get("keepout", []) + self.spec.get("reserve", [])]
        # groups first (decoupling at their pins), then everything else next to what it
        # shares the most nets with
        todo = []
        for g in self.spec.get("group", []):
            for ref in g["parts"]:
                if ref in self.fps and ref not in placed:
                    todo.append((ref, g["anchor"], str(g["pad"])))
        rest = [r for r in sorted(self.fps, key=_refkey) if r not in placed
                and r not in {t[0] for t in todo}]
        for ref, anchor, pad in todo:
            self._auto(ref, occupied, keepouts, anchor=(anchor, pad))
            placed[ref] = True
        # parts with the most connections to placed parts go first
        while rest:
            rest.sort(key=lambda r: (-self._links(r, placed), _refkey(r)))
            ref = rest.pop(0)
            self._auto(ref, occupied, keepouts, anchor=None)
            placed[ref] = True
        _ = pcbnew

    def _links(self, ref, placed):
        n = 0
        for pad in self.fps[ref].Pads():
            net = pad.GetNetname()
            if not net or net == "GND":
                continue
            for r2, _p in self._net_pads(net):
                if r2 in placed and r2 != ref:
                    n += 1
        return n

    def _net_pads(self, net):
        return self.net.nets.get(net, [])

    def _put(self, ref, at, rot, side):
        pcbnew = self.pcbnew
        fp = self.fps[ref]
        fp.SetPosition(self.P(*at))
        if side == "B" and not fp.IsFlipped():
            fp.Flip(fp.GetPosition(), pcbnew.FLIP_DIRECTION_LEFT_RIGHT)
        fp.SetOrientationDegrees(rot)

    def _box(self, ref, margin=None):
        pcbnew = self.pcbnew
        fp = self.fps[ref]
        m = self.spec["placement"]["spacing"] if margin is None else margin
        box = self.spec.get("parts", {}).get(ref, {}).get("box")
        if box:  # e.g. the module, whose courtyard includes the antenna keep-out drawing
            return (box[0] - m, box[1] - m, box[2] + m, box[3] + m)
        layer = pcbnew.B_CrtYd if fp.IsFlipped() else pcbnew.F_CrtYd
        bb = fp.GetCourtyard(layer).BBox()
        if bb.GetWidth() == 0:
            bb = fp.GetBoundingBox(False)
        x0 = pcbnew.ToMM(bb.GetX()) - self.ox - m
        y0 = pcbnew.ToMM(bb.GetY()) - self.oy - m
        return (x0, y0, x0 + pcbnew.ToMM(bb.GetWidth()) + 2 * m,
                y0 + pcbnew.ToMM(bb.GetHeight()) + 2 * m)

    def _pad_xy(self, ref, number):
        pcbnew = self.pcbnew
        for pad in self.fps[ref].Pads():
            if pad.GetNumber() == number:
                p = pad.GetPosition()
                return pcbnew.ToMM(p.x) - self.ox, pcbnew.ToMM(p.y) - self.oy
        raise KeyError(f"{ref} has no pad {number}")

    def _auto(self, ref, occupied, keepouts, anchor, radius=None):
        """Put a part on the free spot that minimises its connection length."""
        pcbnew = self.pcbnew
        fp = self.fps[ref]
        cfg = self.spec["placement"]
        grid = cfg["grid"]
        edge = cfg["edge_margin"]
        placed_refs = {r for r in self.fps if r != ref and self._is_placed(r)}
        # where its nets already are
        pulls = []
        for pad in fp.Pads():
            net = pad.GetNetname()
            if not net or net == "GND":
                continue
            for r2, n2 in self._net_pads(net):
                if r2 in placed_refs:
                    pulls.append((pad.GetNumber(), self._pad_xy(r2, n2)))
        if anchor:
            ax, ay = self._pad_xy(*anchor)
        elif pulls:
            ax, ay = np.mean([p[1] for p in pulls], axis=0)
        else:
            ax, ay = self.w / 2, self.h / 2
        occ = np.array(occupied + keepouts) if occupied or keepouts else np.zeros((0, 4))
        best = None
        for rot in cfg["rotations"]:
            fp.SetPosition(self.P(0, 0))
            fp.SetOrientationDegrees(rot)
            x0, y0, x1, y1 = self._box(ref)
            offs = {}
            for pad in fp.Pads():
                p = pad.GetPosition()
                offs.setdefault(pad.GetNumber(), (pcbnew.ToMM(p.x) - self.ox, pcbnew.ToMM(p.y) - self.oy))
            rad = radius or cfg["search_radius"]
            rng = np.arange(-rad, rad + 1e-9, grid)
            cx, cy = np.meshgrid(np.round((ax + rng) / grid) * grid, np.round((ay + rng) / grid) * grid)
            cx, cy = cx.ravel(), cy.ravel()
            ok = (cx + x0 >= edge) & (cy + y0 >= edge) & (cx + x1 <= self.w - edge) & (cy + y1 <= self.h - edge)
            for ox0, oy0, ox1, oy1 in occ:
                ok &= ~((cx + x0 < ox1) & (cx + x1 > ox0) & (cy + y0 < oy1) & (cy + y1 > oy0))
            if not ok.any():
                continue
            cx, cy = cx[ok], cy[ok]
            score = 0.05 * np.hypot(cx - ax, cy - ay)
            for num, (tx, ty) in pulls:
                px, py = offs[num]
                score = score + np.hypot(cx + px - tx, cy + py - ty)
            if anchor is not None:
                # the pad that shares the anchor's net sits at the anchor pin
                anet = self._pad_net(*anchor)
                for pad in fp.Pads():
                    if pad.GetNetname() == anet:
                        px, py = offs[pad.GetNumber()]
                        score = score + 2 * np.hypot(cx + px - ax, cy + py - ay)
                        break
            k = int(np.argmin(score))
            cand = (float(score[k]), rot, float(cx[k]), float(cy[k]))
            if best is None or cand[0] < best[0] - 1e-9:
                best = cand
        if best is None and (radius or cfg["search_radius"]) < max(self.w, self.h):
            return self._auto(ref, occupied, keepouts, anchor, 2 * (radius or cfg["search_radius"]))
        if best is None:
            raise SystemExit(f"placement: no free spot for {ref} near {anchor or (ax, ay)}")
        _, rot, x, y = best
        fp.SetPosition(self.P(round(x, 3), round(y, 3)))
        fp.SetOrientationDegrees(rot)
        occupied.append(self._box(ref))
        self._auto_placed.add(ref)

    def _is_placed(self, ref):
        return ref in self.spec.get("parts", {}) or ref in self._auto_placed or ref in {
            h["ref"] for h in self.spec.get("hole", [])}

    def _pad_net(self, ref, number):
        for pad in self.fps[ref].Pads():
            if pad.GetNumber() == number:
                return pad.GetNetname()
        return ""

    # ------------------------------------------------------------ silkscreen
    def silkscreen(self):
        pcbnew = self.pcbnew
        for t in self.spec.get("text", []):
            self._text(t["text"], t["at"], t.get("size", 1.0), t.get("layer", "F.SilkS"),
                       t.get("rot", 0), t.get("justify", "center"))
        for pl in self.spec.get("pin_labels", []):
            ref = pl["ref"]
            if ref not in self.fps:
                continue
            dx, dy = pl["offset"]
            for num, label in pl["labels"].items():
                x, y = self._pad_xy(ref, num)
                self._text(label, (x + dx, y + dy), pl.get("size", 1.0), "F.SilkS",
                           pl.get("rot", 0), pl.get("justify", "center"))
        _ = pcbnew

    def _text(self, text, at, size, layer, rot, justify):
        pcbnew = self.pcbnew
        t = pcbnew.PCB_TEXT(self.board)
        t.SetText(text)
        t.SetPosition(self.P(*at))
        t.SetLayer({"F.SilkS": pcbnew.F_SilkS, "B.SilkS": pcbnew.B_SilkS, "F.Fab": pcbnew.F_Fab,
                    "B.Fab": pcbnew.B_Fab}[layer])
        t.SetTextSize(pcbnew.VECTOR2I(_mm(size), _mm(size)))
        t.SetTextThickness(_mm(round(max(0.16, size * 0.16), 3)))
        t.SetTextAngleDegrees(rot)
        t.SetHorizJustify({"left": pcbnew.GR_TEXT_H_ALIGN_LEFT, "right": pcbnew.GR_TEXT_H_ALIGN_RIGHT}
                          .get(justify, pcbnew.GR_TEXT_H_ALIGN_CENTER))
        if layer.startswith("B."):
            t.SetMirrored(True)
        self.board.Add(t)

    # ------------------------------------------------------------ zones
    def _zone(self, layers, net, rect, rule_area=False, priority=0):
        pcbnew = self.pcbnew
        z = pcbnew.ZONE(self.board)
        ls = pcbnew.LSET()
        for L in layers:
            ls.AddLayer(L)
        z.SetLayerSet(ls)
        x0, y0, x1, y1 = rect
        o = z.Outline()
        o.NewOutline()
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
            o.Append(_mm(self.ox + x), _mm(self.oy + y))
        if rule_area:
            z.SetIsRuleArea(True)
            z.SetDoNotAllowTracks(True)
            z.SetDoNotAllowVias(True)
            z.SetDoNotAllowCopperPour(True)
            z.SetDoNotAllowPads(False)
            z.SetDoNotAllowFootprints(False)
        else:
            z.SetNet(self.nets[net])
            zs = self.spec["zones"]
            z.SetLocalClearance(_mm(zs["clearance"]))
            z.SetMinThickness(_mm(zs["min_thickness"]))
            z.SetThermalReliefGap(_mm(zs["thermal_gap"]))
            z.SetThermalReliefSpokeWidth(_mm(zs["thermal_spoke"]))
            z.SetPadConnection(pcbnew.ZONE_CONNECTION_THT_THERMAL)
            z.SetIslandRemovalMode(pcbnew.ISLAND_REMOVAL_MODE_ALWAYS)
            z.SetAssignedPriority(priority)
        self.board.Add(z)
        return z

    def keepouts(self):
        pcbnew = self.pcbnew
        for k in self.spec.get("keepout", []):
            self._zone([pcbnew.F_Cu, pcbnew.B_Cu], None, k["rect"], rule_area=True)

    def pours(self):
        pcbnew = self.pcbnew
        net = self.spec["zones"]["net"]
        self._zone([pcbnew.F_Cu], net, (0, 0, self.w, self.h))
        self._zone([pcbnew.B_Cu], net, (0, 0, self.w, self.h))

    # ------------------------------------------------------------ routing
    def routing_problem(self, h=0.05):
        pcbnew = self.pcbnew
        rs = self.spec["routing"]
        rows, cols = int(round(self.h / h)) + 1, int(round(self.w / h)) + 1
        ys = h * np.arange(rows)[:, None]
        xs = h * np.arange(cols)[None, :]
        r = self.spec["board"].get("corner_radius", 0.0)
        # signed distance inside a rounded rectangle
        qx = np.abs(xs - self.w / 2) - (self.w / 2 - r)
        qy = np.abs(ys - self.h / 2) - (self.h / 2 - r)
        outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
        edge = (r - outside).astype(np.float32)
        px, py = np.meshgrid(xs.ravel(), ys.ravel())
        for k in self.spec.get("keepout", []):
            x0, y0, x1, y1 = k["rect"]
            poly = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
            d = router._poly_dist(px, py, poly)
            d[(px > x0) & (px < x1) & (py > y0) & (py < y1)] = 0
            edge = np.minimum(edge, d.astype(np.float32))
        inside = edge > 0
        pads, obstacles = [], []
        for ref in sorted(self.fps, key=_refkey):
            fp = self.fps[ref]
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
                    extra = self.spec["rules"]["hole_clearance"] - rs["clearance"]
                    rad = d / 2 + max(extra, 0)
                    ang = np.linspace(0, 2 * np.pi, 32, endpoint=False)
                    poly = np.c_[pcbnew.ToMM(c.x) - self.ox + rad * np.cos(ang) / np.cos(np.pi / 32),
                                 pcbnew.ToMM(c.y) - self.oy + rad * np.sin(ang) / np.cos(np.pi / 32)]
                    obstacles.append(((router.F, router.B), poly))
                    continue
                ps = pcbnew.SHAPE_POLY_SET()
                pad.TransformShapeToPolygon(ps, layers and (pcbnew.F_Cu if layers[0] == 0 else pcbnew.B_Cu),
                                            0, _mm(0.002), pcbnew.ERROR_OUTSIDE)
                for k in range(ps.OutlineCount()):
                    o = ps.Outline(k)
                    poly = np.array([(pcbnew.ToMM(o.CPoint(i).x) - self.ox, pcbnew.ToMM(o.CPoint(i).y) - self.oy)
                                     for i in range(o.PointCount())])
                    c = pad.GetPosition()
                    pads.append(router.Pad(ref, pad.GetNumber(), pad.GetNetname(), tuple(layers), poly,
                                           (pcbnew.ToMM(c.x) - self.ox, pcbnew.ToMM(c.y) - self.oy)))
        rules = {}
        for name in self.net.nets:
            cls = self.netclass_of(name)
            c = self.spec["netclass"][cls]
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
            edge_clearance=self.spec["rules"]["copper_edge_clearance"],
            via_diameter=rs["via_diameter"], via_drill=rs["via_drill"], via_cost=rs["via_cost"],
            obstacles=obstacles,
        )

    def netclass_of(self, net):
        import fnmatch

        for cls, c in self.spec["netclass"].items():
            if any(fnmatch.fnmatchcase(net, pat) for pat in c.get("nets", [])):
                return cls
        return "Default"

    def add_routes(self, res: router.Result):
        pcbnew = self.pcbnew
        for t in res.tracks:
            tr = pcbnew.PCB_TRACK(self.board)
            tr.SetStart(self.P(*t.a))
            tr.SetEnd(self.P(*t.b))
            tr.SetWidth(_mm(t.width))
            tr.SetLayer(pcbnew.F_Cu if t.layer == router.F else pcbnew.B_Cu)
            tr.SetNet(self.nets[t.net])
            self.board.Add(tr)
        for v in res.vias:
            self._via(v.net, v.at, v.diameter, v.drill)

    def _via(self, net, at, dia, drill):
        pcbnew = self.pcbnew
        via = pcbnew.PCB_VIA(self.board)
        via.SetPosition(self.P(*at))
        via.SetViaType(pcbnew.VIATYPE_THROUGH)
        via.SetWidth(_mm(dia))
        via.SetDrill(_mm(drill))
        via.SetNet(self.nets[net])
        self.board.Add(via)

    def stitching(self, rt: router.Router):
        """GND vias on a regular grid wherever one fits with full clearance on both layers."""
        st = self.spec["zones"]
        net = st["net"]
        pitch = st["stitch_pitch"]
        p = rt.p
        rad = p.via_diameter / 2
        need = rad + st["clearance"] + 0.05
        # distance to every piece of copper, GND included: a stitching via must not land on a
        # GND pad or hole either
        fd = rt._foreign("\0all", (0, p.shape[0], 0, p.shape[1]))
        placed = []
        avoid = [tuple(a) for a in st.get("stitch_avoid", [])]
        for y in np.arange(pitch, self.h - pitch / 2, pitch):
            for x in np.arange(pitch, self.w - pitch / 2, pitch):
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
                self._via(net, at, p.via_diameter, p.via_drill)
                placed.append(at)
        return placed

    def save(self, path: Path):
        self.pcbnew.SaveBoard(str(path), self.board)


def fnmatch_any(name: str, patterns) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _refkey(ref):
    import re

    m = re.match(r"([A-Za-z_#]+)(\d*)", ref)
    return (m.group(1), int(m.group(2) or 0), ref) if m else (ref, 0, ref)


# ---------------------------------------------------------------- project files


def write_project(spec: dict, pro: Path):
    """The .kicad_pro carries the net classes and the board's design rules for KiCad/DRC."""
    r = spec["rules"]
    classes = []
    patterns = []
    for name, c in spec["netclass"].items():
        classes.append({
            "name": name, "clearance": c["clearance"], "track_width": c["track"],
            "via_diameter": c.get("via_diameter", spec["routing"]["via_diameter"]),
            "via_drill": c.get("via_drill", spec["routing"]["via_drill"]),
            "microvia_diameter": 0.3, "microvia_drill": 0.1,
            "diff_pair_width": c["track"], "diff_pair_gap": c.get("pair_gap", 0.2),
            "diff_pair_via_gap": 0.25, "bus_width": 12, "wire_width": 6, "line_style": 0,
            "pcb_color": "rgba(0, 0, 0, 0.000)", "schematic_color": "rgba(0, 0, 0, 0.000)",
            "priority": 2147483647 if name == "Default" else len(classes),
        })
        for pat in c.get("nets", []):
            patterns.append({"netclass": name, "pattern": pat})
    sev = {k: v for k, v in spec.get("severity", {}).items()}
    pro_json = {
        "board": {
            "design_settings": {
                "defaults": {"board_outline_line_width": 0.05, "copper_line_width": 0.2,
                             "silk_line_width": 0.15, "silk_text_size_h": 1.0,
                             "silk_text_size_v": 1.0, "silk_text_thickness": 0.15},
                "rule_severities": sev,
                "rules": {
                    "min_clearance": r["min_clearance"],
                    "min_connection": 0.0,
                    "min_copper_edge_clearance": r["copper_edge_clearance"],
                    "min_hole_clearance": r["hole_clearance"],
                    "min_hole_to_hole": r["hole_to_hole"],
                    "min_microvia_diameter": 0.2, "min_microvia_drill": 0.1,
                    "min_resolved_spokes": 1,
                    "min_silk_clearance": r["silk_clearance"],
                    "min_text_height": r["min_text_height"],
                    "min_text_thickness": r["min_text_thickness"],
                    "min_through_hole_diameter": r["min_drill"],
                    "min_track_width": r["min_track"],
                    "min_via_annular_width": r["min_annular_ring"],
                    "min_via_diameter": r["min_via_diameter"],
                    "solder_mask_to_copper_clearance": 0.0,
                    "use_height_for_length_calcs": True,
                },
                "track_widths": [0.0, 0.2, 0.3, 0.5],
                "via_dimensions": [{"diameter": 0.0, "drill": 0.0},
                                   {"diameter": spec["routing"]["via_diameter"],
                                    "drill": spec["routing"]["via_drill"]}],
                "diff_pair_dimensions": [{"gap": 0.0, "via_gap": 0.0, "width": 0.0}],
                "zones_allow_external_fillets": False,
            },
            "layer_presets": [], "viewports": [],
        },
        "boards": [],
        "libraries": {"pinned_footprint_libs": [], "pinned_symbol_libs": []},
        "meta": {"filename": pro.name, "version": 3},
        "net_settings": {"classes": classes, "meta": {"version": 4},
                         "net_colors": None, "netclass_assignments": None,
                         "netclass_patterns": patterns},
        "pcbnew": {"last_paths": {}, "page_layout_descr_file": ""},
        "schematic": {"legacy_lib_dir": "", "legacy_lib_list": []},
        "sheets": [], "text_variables": {},
    }
    pro.write_text(json.dumps(pro_json, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_dru(spec: dict, path: Path):
    """rules.kicad_dru with the spec's references filled in (${usb_connector}, ...)."""
    text = (KICAD / "rules.kicad_dru").read_text()
    for key, val in spec.get("dru", {}).items():
        text = text.replace("${" + key + "}", val)
    path.write_text(text)


# ---------------------------------------------------------------- the build


def build_inner(netlist: Path, out: Path, report: Path):
    """Runs in the frozen-clock child: everything that creates KiCad items happens here."""
    spec = load_spec()
    t0 = time.time()
    b = Builder(netlist, spec)
    b.design_settings()
    b.footprints()
    b.outline()
    b.place()
    b.keepouts()
    b.trim_silk()
    b.silkscreen()
    t1 = time.time()
    prob = b.routing_problem(h=spec["routing"]["grid"])
    rt = router.Router(prob)
    if os.environ.get("OMD_PLACE_ONLY"):  # placement preview while editing placement.toml
        res = router.Result([], [], [], {})
    else:
        res = rt.route(max_ripups=spec["routing"]["max_ripups"])
    t2 = time.time()
    print(f"routed in {t2 - t1:.0f} s: {len(res.tracks)} tracks, {len(res.vias)} vias, "
          f"{len(res.unrouted)} unrouted", file=sys.stderr)
    b.add_routes(res)
    stitches = [] if os.environ.get("OMD_NO_POUR") else b.stitching(rt)
    if not os.environ.get("OMD_NO_POUR"):
        b.pours()
    b.save(out)
    # an in-memory BOARD() has no project, and ZONE_FILLER crashes on it: fill a loaded copy
    import pcbnew

    loaded = pcbnew.LoadBoard(str(out))
    loaded.BuildConnectivity()
    pcbnew.ZONE_FILLER(loaded).Fill(loaded.Zones())
    pcbnew.SaveBoard(str(out), loaded)
    t3 = time.time()
    info = {
        "tracks": len(res.tracks), "vias": len(res.vias), "stitching_vias": len(stitches),
        "unrouted": res.unrouted, "stats": res.stats,
        "seconds": {"place": round(t1 - t0, 1), "route": round(t2 - t1, 1), "finish": round(t3 - t2, 1)},
        "log": b.log,
    }
    report.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def build(force=False, netlist: Path = NETLIST, out: Path = PCB) -> int:
    if not netlist.exists():
        print(f"no netlist at {netlist}: the circuit stage writes it", file=sys.stderr)
        return 2
    src = source_netlist(netlist)
    inputs = input_hash(src)
    if not force and out == PCB and PCB.exists() and INPUTS.exists():
        if json.loads(INPUTS.read_text()).get("inputs_sha256") == inputs["inputs_sha256"]:
            print(f"{PCB.relative_to(ROOT)} is current (inputs {inputs['inputs_sha256'][:12]})")
            return 0
    spec = load_spec()
    tmp = out.with_suffix(".tmp.kicad_pcb")
    report = out.with_suffix(".route.json")
    cmd = [sys.executable, "-m", "openmetering.board", "_inner", str(src), str(tmp), str(report)]
    subprocess.run(cmd, check=True, env=frozen_env(), cwd=ROOT)
    os.replace(tmp, out)
    for stray in (tmp.with_suffix(".kicad_pro"), tmp.with_suffix(".kicad_prl")):
        stray.unlink(missing_ok=True)
    write_project(spec, out.with_suffix(".kicad_pro"))
    write_dru(spec, out.with_suffix(".kicad_dru"))
    if out == PCB:
        INPUTS.write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    if out == PCB:
        render(out, PICTURES)
    info = json.loads(report.read_text())
    print(json.dumps({k: info[k] for k in ("tracks", "vias", "stitching_vias", "unrouted", "seconds")}))
    return 0


def verify(netlist: Path = NETLIST) -> int:
    src = source_netlist(netlist)
    inputs = input_hash(src)
    if not PCB.exists() or not INPUTS.exists():
        print("no committed board/inputs record", file=sys.stderr)
        return 1
    have = json.loads(INPUTS.read_text())
    if have.get("inputs_sha256") != inputs["inputs_sha256"]:
        diff = [k for k in inputs if inputs[k] != have.get(k)]
        print(f"committed board is stale: {', '.join(diff)} changed; run "
              "`python -m openmetering.board build`", file=sys.stderr)
        return 1
    print(f"board current for inputs {inputs['inputs_sha256'][:12]}")
    return 0


def render(pcb: Path = PCB, outdir: Path = PICTURES) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    env = frozen_env()
    made = []
    for side in ("top", "bottom"):
        png = outdir / f"open-meter-{side}.png"
        subprocess.run(["kicad-cli", "pcb", "render", "--side", side, "--quality", "basic",
                        "--width", "1600", "--height", "1200", "--background", "opaque",
                        "-o", str(png), str(pcb)], check=True, capture_output=True, env=env)
        made.append(png)
    for name, layers in (("front", "F.Cu,F.SilkS,F.Mask,Edge.Cuts"), ("back", "B.Cu,B.SilkS,B.Mask,Edge.Cuts")):
        svg = outdir / f"open-meter-{name}.svg"
        subprocess.run(["kicad-cli", "pcb", "export", "svg", "--mode-single", "--fit-page-to-board",
                        "--exclude-drawing-sheet", "--layers", layers, *( ["--mirror"] if name == "back" else []),
                        "-o", str(svg), str(pcb)], check=True, capture_output=True, env=env)
        made.append(svg)
    return made


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openmetering.board", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the board when its inputs changed")
    b.add_argument("--force", action="store_true")
    b.add_argument("--netlist", type=Path, default=NETLIST)
    b.add_argument("--out", type=Path, default=PCB)
    v = sub.add_parser("verify", help="exit 1 unless the committed board matches its inputs")
    v.add_argument("--netlist", type=Path, default=NETLIST)
    r = sub.add_parser("render", help="PNG renders and SVG plots for the docs")
    r.add_argument("--pcb", type=Path, default=PCB)
    r.add_argument("--out", type=Path, default=PICTURES)
    i = sub.add_parser("_inner")
    i.add_argument("netlist", type=Path)
    i.add_argument("out", type=Path)
    i.add_argument("report", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "build":
        return build(a.force, a.netlist.resolve(), a.out.resolve())
    if a.cmd == "verify":
        return verify(a.netlist.resolve())
    if a.cmd == "render":
        for p in render(a.pcb, a.out):
            print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
        return 0
    if a.cmd == "_inner":
        build_inner(a.netlist, a.out, a.report)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
