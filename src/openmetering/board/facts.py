"""What other stages read back from a board file: its size, rules, holes and part counts;
every footprint's pads and nets; the catalogue key of each footprint. One pcbnew reader each,
run through the KiCad runner."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .. import kicad, sexpr
from ..errors import MissingInput

_FACTS = r"""
import json, sys, pcbnew
b = pcbnew.LoadBoard(sys.argv[1])
bb = b.GetBoardEdgesBoundingBox()
ds = b.GetDesignSettings()
smd = tht = 0
for fp in b.GetFootprints():
    a = fp.GetAttributes()
    if a & pcbnew.FP_EXCLUDE_FROM_BOM:
        continue
    if a & pcbnew.FP_THROUGH_HOLE: tht += 1
    elif a & pcbnew.FP_SMD: smd += 1
holes = sum(1 for f in b.GetFootprints() for p in f.Pads() if p.HasHole()) \
    + len([t for t in b.GetTracks() if t.GetClass() == 'PCB_VIA'])
print(json.dumps({
    "width_mm": pcbnew.ToMM(bb.GetWidth()), "height_mm": pcbnew.ToMM(bb.GetHeight()),
    "layers": b.GetCopperLayerCount(), "thickness_mm": pcbnew.ToMM(ds.GetBoardThickness()),
    "holes": holes, "min_track_mm": pcbnew.ToMM(ds.m_TrackMinWidth),
    "min_clearance_mm": pcbnew.ToMM(ds.m_MinClearance),
    "min_hole_mm": pcbnew.ToMM(ds.m_MinThroughDrill),
    "smd": smd, "tht": tht, "footprints": len(b.GetFootprints())}))
"""

_FOOTPRINTS = r"""
import json, sys, pcbnew
b = pcbnew.LoadBoard(sys.argv[1])
out = {}
for fp in b.GetFootprints():
    pads = {}
    for p in fp.Pads():
        if p.GetNumber():
            pads.setdefault(p.GetNumber(), set()).add(p.GetNetname())
    out[fp.GetReference()] = [str(fp.GetFPID().GetUniStringLibId()), fp.GetValue(),
                              {k: sorted(v) for k, v in pads.items()}, fp.IsBoardOnly(),
                              fp.GetFieldText('PartID') if fp.HasFieldByName('PartID') else '']
print(json.dumps(out))
"""


def _read(code: str, pcb: Path, what: str):
    if not Path(pcb).is_file():
        raise MissingInput(f"{pcb}: board missing; run the board stage first (make board)")
    return kicad.pcbnew_json(code, pcb, what=f"reading {Path(pcb).name} with pcbnew ({what})")


def facts(pcb: Path) -> dict:
    """Outline size, copper layers, thickness, hole count, minimum track/clearance/drill, and
    counts of SMD and through-hole parts (BOM parts only)."""
    return _read(_FACTS, pcb, "facts")


def footprints(pcb: Path) -> dict[str, tuple[str, str, dict[str, list[str]], bool, str]]:
    """{ref: (footprint id, value, {pad: [nets]}, board only, PartID)}."""
    return {ref: tuple(v) for ref, v in _read(_FOOTPRINTS, pcb, "footprints").items()}


def visible_digest(pcb: Path) -> str:
    """A hash of everything in the board file a picture of it can show: the file with the
    text of every hidden property (a footprint's value, MPN, LCSC number...) left out. A
    change of value or order number keeps it, so the renders are not made again for it."""
    tree = sexpr.parse(Path(pcb).read_text(encoding="utf-8"), source=str(pcb))

    def strip(node):
        if not isinstance(node, list):
            return node
        if node and node[0] == "property" and ["hide", "yes"] in node:
            return ["property", node[1], "", *[strip(c) for c in node[3:]]]
        return [strip(c) for c in node]

    return hashlib.sha256(repr(strip(tree)).encode()).hexdigest()
