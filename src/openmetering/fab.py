"""Stage 5: board -> order packages for JLCPCB and PCBWay, and a KiKit panel.

Writes, reproducibly (KiCad and KiKit under a frozen clock, seeded ids, zips with fixed times):
- hardware/gerber/jlcpcb/  Gerbers + Excellon (PTH/NPTH apart), order zip, assembly BOM + CPL
- hardware/gerber/pcbway/  Gerbers + Excellon, order zip, BOM and centroid in PCBWay's columns
- hardware/gerber/panel/   2x2 KiKit panel board, its DRC report, Gerbers, drill and zip
- hardware/gerber/fab-summary.json  what to type into the fabs' quote forms, and the BOM cost

Run: python -m openmetering.fab
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from . import parts as catalogue
from .cli import guarded
from .errors import DesignError
from .kicad import frozen_env, kicad_cli
from .paths import BOARD, BOM_DIR, GERBER_DIR, HARDWARE, PARTS_TOML, ROOT
from .repro import write_text_if_changed, write_zip

FAB_DIR = HARDWARE / "fab"
# The panel preset (KiKit JSON, no comments possible there): 2x2 boards, rows alternating so
# the ESP32-S3 antennas, which overhang the top edge, point out of the panel's top and bottom
# edges; rails left and right (none under an antenna's keep-out) carry 3 tooling holes and
# 3 fiducials, as JLCPCB's SMT line asks for; mouse bites between the boards.
ROTATIONS = FAB_DIR / "jlcpcb-rotations.csv"
PANEL_PRESET = FAB_DIR / "panel.json"
GERBER_LAYERS = ("F.Cu,B.Cu,F.Paste,B.Paste,F.Silkscreen,B.Silkscreen,F.Mask,B.Mask,Edge.Cuts")
JLC_MAX_DESIGNATORS = 200
NAME = "open-meter"


# --- plots ---------------------------------------------------------------------------------
def plot_gerbers(pcb: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    # --no-x2: KiCad's X2 header carries a creation date; --no-netlist: fabs ignore it
    kicad_cli("pcb", "export", "gerbers", "--no-x2", "--no-netlist", "--subtract-soldermask",
              "-l", GERBER_LAYERS, "-o", str(out) + "/", str(pcb))
    return sorted(p for p in out.iterdir() if p.suffix.startswith(".g"))


def plot_drill(pcb: Path, out: Path, separate: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    # Slots as routed paths (G00/M15/G01/M16): G85 slots are rejected by some CAM readers
    args = ["pcb", "export", "drill", "--format", "excellon", "--excellon-units", "mm",
            "--excellon-zeros-format", "decimal", "--excellon-oval-format", "route",
            "-o", str(out) + "/"]
    if separate:
        args.append("--excellon-separate-th")
    kicad_cli(*args, str(pcb))
    return sorted(out.glob("*.drl"))


def positions(pcb: Path) -> pd.DataFrame:
    """Footprint centres as KiCad's own position file gives them (mm, y up, both sides)."""
    with tempfile.TemporaryDirectory() as tmp:
        pos = Path(tmp) / "pos.csv"
        kicad_cli("pcb", "export", "pos", "--format", "csv", "--units", "mm", "--side", "both",
                  "--exclude-dnp", "-o", str(pos), str(pcb))
        df = pd.read_csv(pos, dtype={"Ref": str, "Val": str, "Package": str})
    return df.rename(columns={"Ref": "ref", "Val": "value", "Package": "package",
                              "PosX": "x", "PosY": "y", "Rot": "rot", "Side": "side"})


def board_part_ids(pcb: Path) -> dict[str, str]:
    """Reference -> catalogue key, read from the board's footprint fields (pcbnew)."""
    code = ("import json, pcbnew, sys\n"
            "b = pcbnew.LoadBoard(sys.argv[1])\n"
            "out = {}\n"
            "for f in b.GetFootprints():\n"
            "    out[f.GetReference()] = f.GetFieldText('PartID') if f.HasFieldByName('PartID') else ''\n"
            "print(json.dumps(out))\n")
    return _pcbnew_json(code, pcb)


def _pcbnew_json(code: str, pcb: Path):
    """Run pcbnew code on a board in KiCad's own Python; it prints one JSON line."""
    proc = subprocess.run(["/usr/bin/python3", "-c", code, str(pcb)], capture_output=True,
                          text=True, env=frozen_env())
    if proc.returncode != 0:
        raise DesignError(f"pcbnew cannot read {pcb}: {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- JLCPCB assembly -----------------------------------------------------------------------
def load_rotations(path: Path = ROTATIONS) -> list[tuple[re.Pattern, float, float, float]]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            out.append((re.compile(r["pattern"]), float(r["rotation"]), float(r["dx"]),
                        float(r["dy"])))
        except (re.error, ValueError, KeyError) as e:
            raise DesignError(f"{path.name} row {i}: {e}") from None
    return out


def jlc_correction(footprint: str, table) -> tuple[float, float, float]:
    name = footprint.split(":")[-1]
    for pattern, rot, dx, dy in table:
        if pattern.search(name):
            return rot, dx, dy
    return 0.0, 0.0, 0.0


def assembly_rows(pcb: Path, cat: catalogue.Catalog) -> pd.DataFrame:
    """One row per part the fab places: position, catalogue entry."""
    pos = positions(pcb)
    ids = board_part_ids(pcb)
    rows = []
    for _, r in pos.iterrows():
        key = ids.get(r["ref"], "")
        if not key:
            raise DesignError(f"{r['ref']}: footprint has no PartID field; rebuild the board")
        entry = cat[key]
        if entry.assembly != "smt":
            continue
        if r["side"] != "top":
            raise DesignError(f"{r['ref']}: SMT part on the {r['side']} side; assembly is "
                              f"top-side only")
        rows.append({"ref": r["ref"], "x": float(r["x"]), "y": float(r["y"]),
                     "rot": float(r["rot"]), "key": key, "footprint": entry.footprint,
                     "value": entry.value, "lcsc": entry.lcsc, "entry": entry})
    return pd.DataFrame(rows)


def _ref_key(ref):
    head = ref.rstrip("0123456789")
    return head, int(ref[len(head):] or 0)


def jlc_bom(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for _key, g in sorted(rows.groupby("key"), key=lambda kv: _ref_key(
            min(kv[1]["ref"], key=_ref_key))):
        refs = sorted(g["ref"], key=_ref_key)
        first = g.iloc[0]
        for i in range(0, len(refs), JLC_MAX_DESIGNATORS):
            out.append({"Comment": first["value"], "Designator": ",".join(
                refs[i:i + JLC_MAX_DESIGNATORS]), "Footprint": first["footprint"].split(":")[-1],
                "LCSC Part #": first["lcsc"]})
    return pd.DataFrame(out, columns=["Comment", "Designator", "Footprint", "LCSC Part #"])


def jlc_cpl(rows: pd.DataFrame, table) -> pd.DataFrame:
    out = []
    for _, r in sorted(rows.iterrows(), key=lambda kv: _ref_key(kv[1]["ref"])):
        rot, dx, dy = jlc_correction(r["footprint"], table)
        out.append({"Designator": r["ref"], "Mid X": f"{r['x'] + dx:.4f}mm",
                    "Mid Y": f"{r['y'] + dy:.4f}mm", "Layer": "Top",
                    "Rotation": f"{(r['rot'] + rot) % 360:g}"})
    return pd.DataFrame(out, columns=["Designator", "Mid X", "Mid Y", "Layer", "Rotation"])


# --- PCBWay --------------------------------------------------------------------------------
def pcbway_bom(bom_csv: Path) -> pd.DataFrame:
    bom = pd.read_csv(bom_csv, keep_default_na=False)
    bom = bom[bom["Assembly"].isin(["smt", "tht"])]
    return pd.DataFrame({
        "Item #": range(1, len(bom) + 1),
        "Designator": bom["Designators"].values,
        "Qty": bom["Qty"].values,
        "Manufacturer": bom["Manufacturer"].values,
        "Mfg Part #": bom["MPN"].values,
        "Description / Value": [f"{v} - {d}" for v, d in zip(bom["Value"], bom["Description"],
                                                              strict=True)],
        "Footprint": [f.split(":")[-1] for f in bom["Footprint"]],
        "Type": ["SMD" if a == "smt" else "Thru-Hole" for a in bom["Assembly"]],
        "Notes": [f"LCSC {c}" if c else "" for c in bom["LCSC"]],
    })


def pcbway_centroid(pcb: Path) -> pd.DataFrame:
    pos = positions(pcb)
    pos = pos.sort_values("ref", key=lambda s: s.map(_ref_key))
    return pd.DataFrame({
        "Designator": pos["ref"].values, "Footprint": pos["package"].values,
        "Mid X(mm)": [f"{x:.4f}" for x in pos["x"]], "Mid Y(mm)": [f"{y:.4f}" for y in pos["y"]],
        "Layer": ["T" if s == "top" else "B" for s in pos["side"]],
        "Rotation": [f"{r:g}" for r in pos["rot"]],
    })


# --- panel -----------------------------------------------------------------------------------
PANEL_SCRIPT = """
import json, sys
import pcbnew
pcbnew.KIID.SeedGenerator(20000101)
from kikit import panelize_ui
from kikit import panelize_ui_impl as ki
from kikit.common import fakeKiCADGui
app = fakeKiCADGui()
preset = ki.obtainPreset([sys.argv[3]])
panelize_ui.doPanelization(sys.argv[1], sys.argv[2], preset)
"""


def make_panel(pcb: Path, out_pcb: Path) -> None:
    out_pcb.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcb = Path(tmp) / out_pcb.name
        # KiKit walks sets of net names: a fixed hash seed keeps the .kicad_pro's order stable
        proc = subprocess.run([sys.executable, "-c", PANEL_SCRIPT, str(pcb), str(tmp_pcb),
                               str(PANEL_PRESET)], capture_output=True, text=True,
                              env=frozen_env({"PYTHONHASHSEED": "0"}))
        if proc.returncode != 0 or not tmp_pcb.exists():
            raise DesignError(f"KiKit panelize failed:\n{proc.stdout[-1500:]}{proc.stderr[-3000:]}")
        _copy_if_changed(tmp_pcb, out_pcb)
        pro = tmp_pcb.with_suffix(".kicad_pro")
        if pro.exists():
            _copy_if_changed(pro, out_pcb.with_suffix(".kicad_pro"))


def drc_report(pcb: Path, out_json: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rpt = Path(tmp) / "drc.json"
        kicad_cli("pcb", "drc", "--severity-all", "--format", "json", "--units", "mm",
                  "-o", str(rpt), str(pcb), check=False)
        data = json.loads(rpt.read_text())
    summary = {
        "violations": sorted(f"[{v['type']}] {v['description']}" for v in data.get("violations", [])
                             if v.get("severity") == "error"),
        "warnings": sorted(f"[{v['type']}] {v['description']}" for v in data.get("violations", [])
                           if v.get("severity") != "error"),
        "unconnected": len(data.get("unconnected_items", [])),
    }
    write_text_if_changed(out_json, json.dumps(summary, indent=2) + "\n")
    return summary


# --- helpers -------------------------------------------------------------------------------
def _copy_if_changed(src: Path, dst: Path) -> None:
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_text_if_changed(path, df.to_csv(index=False, lineterminator="\n"))


def _sync_dir(staged: Path, dest: Path) -> list[Path]:
    """Make dest hold exactly the staged files (unchanged files are not rewritten)."""
    dest.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in staged.iterdir()}
    for old in dest.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    for p in sorted(staged.iterdir()):
        _copy_if_changed(p, dest / p.name)
    return sorted(dest / n for n in names)


def board_outline(pcb: Path) -> dict:
    code = ("import json, pcbnew, sys\n"
            "b = pcbnew.LoadBoard(sys.argv[1])\n"
            "bb = b.GetBoardEdgesBoundingBox()\n"
            "s = b.GetDesignSettings()\n"
            "holes = sum(1 for f in b.GetFootprints() for p in f.Pads() if p.HasHole())"
            " + len([t for t in b.GetTracks() if t.GetClass() == 'PCB_VIA'])\n"
            "print(json.dumps({'width_mm': round(pcbnew.ToMM(bb.GetWidth()), 3),"
            " 'height_mm': round(pcbnew.ToMM(bb.GetHeight()), 3),"
            " 'layers': b.GetCopperLayerCount(), 'holes': holes,"
            " 'min_track_mm': round(pcbnew.ToMM(s.m_TrackMinWidth), 3),"
            " 'min_clearance_mm': round(pcbnew.ToMM(s.m_MinClearance), 3),"
            " 'min_hole_mm': round(pcbnew.ToMM(s.m_MinThroughDrill), 3)}))\n")
    return _pcbnew_json(code, pcb)


# --- the stage -----------------------------------------------------------------------------
def build(pcb: Path = BOARD, out: Path = GERBER_DIR, parts_path: Path = PARTS_TOML,
          bom_dir: Path = BOM_DIR, log=print) -> dict:
    if not pcb.exists():
        raise DesignError(f"{pcb}: board missing; run the board stage first (make board)")
    cat = catalogue.load(parts_path)
    table = load_rotations()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # JLCPCB
        jlc = tmp / "jlcpcb"
        plots = tmp / "jlc-plots"
        files = plot_gerbers(pcb, plots) + plot_drill(pcb, plots, separate=True)
        write_zip(jlc / f"{NAME}-jlcpcb-gerbers.zip", {p.name: p.read_bytes() for p in files})
        for p in files:
            shutil.copyfile(p, jlc / p.name)
        rows = assembly_rows(pcb, cat)
        _write_csv(jlc_bom(rows), jlc / f"{NAME}-jlcpcb-bom.csv")
        _write_csv(jlc_cpl(rows, table), jlc / f"{NAME}-jlcpcb-cpl.csv")
        # PCBWay: one drill file with PTH and NPTH, as their upload check prefers
        pcbway = tmp / "pcbway"
        plots = tmp / "pcbway-plots"
        files = plot_gerbers(pcb, plots) + plot_drill(pcb, plots, separate=False)
        write_zip(pcbway / f"{NAME}-pcbway-gerbers.zip", {p.name: p.read_bytes() for p in files})
        for p in files:
            shutil.copyfile(p, pcbway / p.name)
        _write_csv(pcbway_bom(bom_dir / "open-meter-bom.csv"), pcbway / f"{NAME}-pcbway-bom.csv")
        _write_csv(pcbway_centroid(pcb), pcbway / f"{NAME}-pcbway-centroid.csv")
        # Panel
        panel = tmp / "panel"
        panel.mkdir()
        panel_pcb = panel / f"{NAME}-panel.kicad_pcb"
        make_panel(pcb, panel_pcb)
        panel_drc = drc_report(panel_pcb, panel / f"{NAME}-panel-drc.json")
        plots = tmp / "panel-plots"
        files = plot_gerbers(panel_pcb, plots) + plot_drill(panel_pcb, plots, separate=True)
        write_zip(panel / f"{NAME}-panel-gerbers.zip", {p.name: p.read_bytes() for p in files})
        written = []
        for name in ("jlcpcb", "pcbway", "panel"):
            written += _sync_dir(tmp / name, out / name)
    summary = {
        "board": board_outline(pcb),
        "order": {"layers": 2, "thickness_mm": 1.6, "material": "FR-4 TG135-140",
                  "surface_finish": "HASL lead-free (ENIG for the 0.5 mm FPC if preferred)",
                  "solder_mask": "green", "silkscreen": "white", "copper_oz": 1,
                  "assembly_side": "top", "panel": "2x2 KiKit panel with rails (panel/)"},
        "bom_cost": json.loads((bom_dir / "cost.json").read_text()),
        "panel_drc": {"errors": len(panel_drc["violations"]),
                      "unconnected": panel_drc["unconnected"]},
        "assembly_parts": int(len(rows)),
    }
    write_text_if_changed(out / "fab-summary.json", json.dumps(summary, indent=2) + "\n")
    b = summary["board"]
    c = summary["bom_cost"]
    log(f"fab: {len(written)} files in {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
        f" (jlcpcb, pcbway, panel); board {b['width_mm']} x {b['height_mm']} mm, {b['layers']} "
        f"layers, {b['holes']} holes; parts cost per meter {c['qty5']['total_per_meter']} USD "
        f"at 5 boards, {c['qty100']['total_per_meter']} USD at 100; panel DRC "
        f"{summary['panel_drc']['errors']} errors")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pcb", type=Path, default=BOARD)
    ap.add_argument("--out", type=Path, default=GERBER_DIR)
    args = ap.parse_args(argv)
    return guarded(build, args.pcb, args.out)


if __name__ == "__main__":
    sys.exit(main())
