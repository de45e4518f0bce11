"""Routes kept from the committed board, as KiCad's "update PCB from schematic" keeps them
for a person: when only the netlist changed, the board is placed again from the spec and
the committed board's tracks and vias come back, except on the nets the change reaches.

- Nothing reached (a value, MPN, LCSC number or any field changed): every track and via
  comes back with its own UUID, and the seeded UUID sequence advances as if the router had
  made them, so the board is byte for byte the one a route from scratch gives (routing is
  deterministic and its inputs are the same).
- A pad added, removed or moved to another net, a footprint changed or moved: the nets of
  those pads are reached. Their copper is ripped up and only they are routed again, around
  the kept copper (which the router sees as obstacles, so it can never rip it up).

Runs in the frozen-clock child (pcbnew imported), like the rest of the builder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import route as router
from .. import sexpr
from ..errors import DesignError
from .layout import Layout


@dataclass(frozen=True)
class Copper:
    """A track or via of the committed board, in KiCad units (nm)."""
    via: bool
    net: str
    layer: str  # copper layer name of a track ("F.Cu", "B.Cu")
    start: tuple[int, int]
    end: tuple[int, int]  # a via's position is start == end
    width: int  # a via's diameter
    drill: int
    uuid: str


@dataclass
class Base:
    """What the committed board holds that the update compares and keeps."""
    copper: list[Copper]
    pad_nets: dict[tuple[str, str], frozenset[str]]  # (ref, pad number) -> nets
    footprints: dict[str, tuple]  # ref -> (footprint id, x, y, orientation, layer), nm/deg


def _nm(mm: str) -> int:
    return int(round(float(mm) * 1_000_000))


def _deg(d: float) -> float:
    return round(float(d) % 360.0, 6)


def read(path: Path) -> Base:
    """The committed board's copper, pad nets and footprint placement, read as text by the
    project's s-expression reader: loading it with pcbnew in the builder would draw from
    the UUID generator the new board seeds."""
    tree = sexpr.parse(Path(path).read_text(encoding="utf-8"), source=str(path))
    names = {n[1]: n[2] for n in sexpr.children(tree, "net") if len(n) > 2}
    copper = []
    for kind in ("segment", "via"):
        for item in sexpr.children(tree, kind):
            via = kind == "via"
            net = names.get(sexpr.value(item, "net"), "")
            if via:
                at = sexpr.child(item, "at")
                start = end = (_nm(at[1]), _nm(at[2]))
                width, layer = _nm(sexpr.value(item, "size")), ""
            else:
                s, e = sexpr.child(item, "start"), sexpr.child(item, "end")
                start, end = (_nm(s[1]), _nm(s[2])), (_nm(e[1]), _nm(e[2]))
                width, layer = _nm(sexpr.value(item, "width")), sexpr.value(item, "layer")
                if layer not in ("F.Cu", "B.Cu"):
                    raise DesignError(f"{path}: a track on {layer}; the board has two layers")
            copper.append(Copper(via, net, layer, start, end, width,
                                 _nm(sexpr.value(item, "drill", "0")) if via else 0,
                                 sexpr.value(item, "uuid")))
    if sexpr.children(tree, "arc"):
        raise DesignError(f"{path}: arc tracks cannot be kept (the router makes none)")
    pads: dict[tuple[str, str], set[str]] = {}
    fps = {}
    for fp in sexpr.children(tree, "footprint"):
        ref = next((p[2] for p in sexpr.children(fp, "property")
                    if len(p) > 2 and p[1] == "Reference"), "")
        at = sexpr.child(fp, "at")
        fps[ref] = (fp[1], _nm(at[1]), _nm(at[2]), _deg(at[3] if len(at) > 3 else 0),
                    sexpr.value(fp, "layer"))
        for pad in sexpr.children(fp, "pad"):
            if pad[1]:
                net = sexpr.child(pad, "net")
                pads.setdefault((ref, pad[1]), set()).add(net[2] if net and len(net) > 2
                                                          else "")
    return Base(copper, {k: frozenset(v) for k, v in pads.items()}, fps)


def _board_state(lay: Layout):
    pads: dict[tuple[str, str], set[str]] = {}
    fps = {}
    for ref, fp in lay.fps.items():
        p = fp.GetPosition()
        fps[ref] = (fp.GetFPIDAsString(), p.x, p.y, _deg(fp.GetOrientationDegrees()),
                    lay.board.GetLayerName(fp.GetLayer()))
        for pad in fp.Pads():
            if pad.GetNumber():
                pads.setdefault((ref, pad.GetNumber()), set()).add(pad.GetNetname())
    return {k: frozenset(v) for k, v in pads.items()}, fps


def reached(base: Base, lay: Layout) -> set[str]:
    """Nets whose copper cannot stay: on both boards, the nets of every pad whose net
    changed, of every footprint changed, moved, added or removed; and nets that are gone."""
    new_pads, new_fps = _board_state(lay)
    nets: set[str] = set()
    for key in base.pad_nets.keys() | new_pads.keys():
        old, new = base.pad_nets.get(key, frozenset()), new_pads.get(key, frozenset())
        if old != new or base.footprints.get(key[0]) != new_fps.get(key[0]):
            nets |= old | new
    nets |= {c.net for c in base.copper if c.net not in lay.nets}
    nets.discard("")
    return nets


def add_kept(lay: Layout, kept: list[Copper]) -> None:
    """Put kept copper on the new board, each item with its committed UUID. Creating an item
    draws a UUID from the seeded generator as the router's items would, so everything made
    afterwards gets the UUID it gets in a route from scratch."""
    pcbnew = lay.pcbnew
    for c in kept:
        if c.via:
            item = pcbnew.PCB_VIA(lay.board)
            item.SetPosition(pcbnew.VECTOR2I(*c.start))
            item.SetViaType(pcbnew.VIATYPE_THROUGH)
            item.SetWidth(c.width)
            item.SetDrill(c.drill)
        else:
            item = pcbnew.PCB_TRACK(lay.board)
            item.SetStart(pcbnew.VECTOR2I(*c.start))
            item.SetEnd(pcbnew.VECTOR2I(*c.end))
            item.SetWidth(c.width)
            item.SetLayer(pcbnew.F_Cu if c.layer == "F.Cu" else pcbnew.B_Cu)
        item.SetNet(lay.nets[c.net])
        item.m_Uuid.Clone(pcbnew.KIID(c.uuid))
        lay.board.Add(item)


def _capsule(a, b, r, steps=8) -> np.ndarray:
    """A polygon holding the capsule of radius r around segment a-b (its arcs circumscribed,
    so the router keeps at least the clearance from the real copper)."""
    ang = math.atan2(b[1] - a[1], b[0] - a[0]) if a != b else 0.0
    rr = r / math.cos(math.pi / (2 * steps))
    pts = []
    for centre, start in ((b, ang - math.pi / 2), (a, ang + math.pi / 2)):
        for k in range(steps + 1):
            t = start + math.pi * k / steps
            pts.append((centre[0] + rr * math.cos(t), centre[1] + rr * math.sin(t)))
    return np.array(pts)


def obstacles(lay: Layout, kept: list[Copper]) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """Kept copper as the router's obstacles (board-local mm): foreign to every net routed."""
    pcbnew = lay.pcbnew
    out = []
    for c in kept:
        a = lay.local(pcbnew.VECTOR2I(*c.start))
        b = lay.local(pcbnew.VECTOR2I(*c.end))
        r = pcbnew.ToMM(c.width) / 2
        layers = (router.F, router.B) if c.via else \
            (router.F if c.layer == "F.Cu" else router.B,)
        out.append((layers, _capsule(a, b, r)))
    return out
