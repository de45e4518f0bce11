"""The fab stage: board -> order packages, one module per fab house over `common`.

Writes, reproducibly (KiCad and KiKit under a frozen clock, seeded ids, zips with fixed times):
- hardware/fab/jlcpcb/  Gerbers + Excellon (PTH/NPTH apart), order zip, assembly BOM + CPL
- hardware/fab/pcbway/  Gerbers + Excellon, order zip, BOM and centroid in PCBWay's columns
- hardware/fab/panel/   2x2 KiKit panel board, its DRC report, Gerbers, drill and zip
- hardware/fab/fab-summary.json  what to type into the fabs' quote forms, and the BOM cost
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .. import kicad, stamps
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


def kept_plots(paths: ProjectPaths, stamp_file: Path, scratch: Path) -> dict[str, list[Path]] | None:
    """The committed Gerbers and drill files (board and panel) copied into scratch, each
    with the hash the stage's stamp records (None if any is missing or edited). The build
    passes the stamp only when none of the inputs the plots depend on changed (the board's
    visible content, its project and rules, the panel preset, the code, the tools): a
    value, an MPN or an LCSC number changed, which only the assembly files show."""
    stamp = stamps.Stamp.read(paths.root / stamp_file)
    if stamp is None:
        return None
    rel = paths.rel(paths.fab)

    def recorded(house: str, test) -> list[str]:
        return [k for k in sorted(stamp.outputs)
                if k.startswith(f"{rel}/{house}/") and test(Path(k))]

    want = {
        "gerbers": recorded("jlcpcb", lambda f: f.suffix.startswith(".g")),
        "drill_split": recorded("jlcpcb", lambda f: f.suffix == ".drl"),
        "drill_merged": recorded("pcbway", lambda f: f.suffix == ".drl"),
        "panel": [f"{rel}/panel/{paths.name}-panel-drc.json",
                  f"{rel}/panel/{paths.name}-panel-gerbers.zip",
                  f"{rel}/panel/{paths.name}-panel.kicad_pcb",
                  f"{rel}/panel/{paths.name}-panel.kicad_pro"],
    }
    out: dict[str, list[Path]] = {}
    for key, files in want.items():
        if not files:
            return None
        for f in files:
            src = paths.root / f
            if f not in stamp.outputs or not src.is_file() \
                    or stamps.file_sha256(src) != stamp.outputs[f]:
                return None
            dest = scratch / "kept" / key / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            out.setdefault(key, []).append(dest)
    return out


def build(paths: ProjectPaths | None = None, pcb: Path | None = None, out: Path | None = None,
          keep_plots: Path | None = None, log=print) -> dict:
    """The fab packages of `pcb` into `out`. With `keep_plots` (the stage's stamp, passed by
    the build), the committed board's Gerbers and drill files are kept when the stamp
    proves them current (`kept_plots`) and only the assembly files are made again."""
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
        kept = kept_plots(paths, keep_plots, tmp) \
            if keep_plots and (pcb, out) == (paths.pcb, paths.fab) else None
        panel_pcb = tmp / "panel" / f"{paths.name}-panel.kicad_pcb"
        # the kept panel's copies take the board's new fields; KiKit panelizes only when
        # they cannot be matched (panel.with_board_fields)
        patched = kept and panel.with_board_fields(kept["panel"][2].read_text(encoding="utf-8"),
                                                   pcb.read_text(encoding="utf-8"))
        if patched:
            write_text_if_changed(panel_pcb, patched)
            shutil.copyfile(kept["panel"][3], panel_pcb.with_suffix(".kicad_pro"))
            made = pool.submit(lambda: None)
        else:
            made = pool.submit(panel.make_panel, pcb, panel_pcb, paths.panel_preset)
        if kept:
            log("fab: Gerbers and drill files kept (the stamp proves the copper unchanged)"
                + ("; the panel's fields set to the board's" if patched else ""))
        board = plot_all(pcb, tmp, pool, kept)
        board_facts = pool.submit(facts.facts, pcb)
        made.result()
        if kept:
            drc_json, panel_zip = kept["panel"][:2]
            shutil.copyfile(drc_json, panel_pcb.with_name(drc_json.name))
            shutil.copyfile(panel_zip, panel_pcb.with_name(panel_zip.name))
            panel_drc = json.loads(drc_json.read_text())
        else:
            panel_drc_f = pool.submit(panel.drc_report, panel_pcb,
                                      panel_pcb.with_name(f"{paths.name}-panel-drc.json"))
            panel_files = pool.submit(panel.plots, panel_pcb, tmp)
        plots = Plots(**{k: f.result() for k, f in board.items()})
        rows = jlcpcb.write(plots, tmp / "jlcpcb", paths.name, cat, paths.rotations)
        pcbway.write(plots, tmp / "pcbway", paths.name, paths.bom_csv)
        if not kept:
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
