"""The fab stage: board -> order packages, one module per fab house over `common`.

Writes, reproducibly (KiCad and KiKit under a frozen clock, seeded ids, zips with fixed times):
- hardware/fab/jlcpcb/  Gerbers + Excellon (PTH/NPTH apart), order zip, assembly BOM + CPL
- hardware/fab/pcbway/  Gerbers + Excellon, order zip, BOM and centroid in PCBWay's columns
- hardware/fab/panel/   2x2 KiKit panel board, its DRC report, Gerbers, drill and zip
- hardware/fab/fab-summary.json  what to type into the fabs' quote forms, and the BOM cost
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .. import kicad
from .. import parts as catalogue
from ..board import facts
from ..errors import MissingInput
from ..paths import ProjectPaths, project
from ..repro import sync_dir, write_text_if_changed
from . import jlcpcb, panel, pcbway
from .common import Plots, plot_all

HOUSES = ("jlcpcb", "pcbway", "panel")
ORDER = {"layers": 2, "thickness_mm": 1.6, "material": "FR-4 TG135-140",
         "surface_finish": "HASL lead-free (ENIG for the 0.5 mm FPC if preferred)",
         "solder_mask": "green", "silkscreen": "white", "copper_oz": 1,
         "assembly_side": "top", "panel": "2x2 KiKit panel with rails (panel/)"}
SUMMARY_BOARD = ("width_mm", "height_mm", "layers", "holes", "min_track_mm",
                 "min_clearance_mm", "min_hole_mm")


def build(paths: ProjectPaths | None = None, pcb: Path | None = None, out: Path | None = None,
          log=print) -> dict:
    paths = paths or project()
    pcb = pcb or paths.pcb
    out = out or paths.fab
    if not pcb.exists():
        raise MissingInput(f"{pcb}: board missing; run the board stage first (make board)")
    cat = catalogue.load(paths.parts)
    with tempfile.TemporaryDirectory() as tmp, kicad.pool() as pool:
        # KiCad calls on every core, the longest chain (panelize, then the panel's DRC and
        # plots) first; each board file is plotted once for both houses
        tmp = Path(tmp)
        panel_pcb = tmp / "panel" / f"{paths.name}-panel.kicad_pcb"
        made = pool.submit(panel.make_panel, pcb, panel_pcb, paths.panel_preset)
        board = plot_all(pcb, tmp, pool)
        board_facts = pool.submit(facts.facts, pcb)
        made.result()
        panel_drc_f = pool.submit(panel.drc_report, panel_pcb,
                                  panel_pcb.with_name(f"{paths.name}-panel-drc.json"))
        panel_files = pool.submit(panel.plots, panel_pcb, tmp)
        plots = Plots(**{k: f.result() for k, f in board.items()})
        rows = jlcpcb.write(plots, tmp / "jlcpcb", paths.name, cat, paths.rotations)
        pcbway.write(plots, tmp / "pcbway", paths.name, paths.bom_csv)
        panel.write(tmp / "panel", paths.name, panel_files.result())
        panel_drc = panel_drc_f.result()
        written = []
        for house in HOUSES:
            written += sync_dir(tmp / house, out / house)
    board = board_facts.result()
    summary = {
        "board": {k: board[k] if isinstance(board[k], int) else round(board[k], 3)
                  for k in SUMMARY_BOARD},
        "order": ORDER,
        "bom_cost": json.loads(paths.cost.read_text()),
        "panel_drc": {"errors": len(panel_drc["violations"]),
                      "unconnected": panel_drc["unconnected"]},
        "assembly_parts": int(len(rows)),
    }
    write_text_if_changed(out / paths.fab_summary.name, json.dumps(summary, indent=2) + "\n")
    b = summary["board"]
    c = summary["bom_cost"]
    log(f"fab: {len(written)} files in {paths.rel(out)} ({', '.join(HOUSES)}); board "
        f"{b['width_mm']} x {b['height_mm']} mm, {b['layers']} layers, {b['holes']} holes; "
        f"parts cost per meter {c['qty5']['total_per_meter']} USD at 5 boards, "
        f"{c['qty100']['total_per_meter']} USD at 100; panel DRC "
        f"{summary['panel_drc']['errors']} errors")
    return summary
