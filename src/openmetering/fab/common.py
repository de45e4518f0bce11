"""What every fab package needs: Gerber and drill plots, KiCad's position file, the plot set
as a reproducible zip, CSV writing, and folder syncing that leaves unchanged files alone.

The plots of a board are made once per stage (`Plots`), not once per fab house: JLCPCB and
PCBWay take the same Gerbers and position file and differ only in how the drill is split.
`plot_all` starts them side by side on the stage's pool (`kicad.pool`)."""

from __future__ import annotations

import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import kicad
from ..repro import copy_if_changed, write_text_if_changed, write_zip

GERBER_LAYERS = "F.Cu,B.Cu,F.Paste,B.Paste,F.Silkscreen,B.Silkscreen,F.Mask,B.Mask,Edge.Cuts"


def plot_gerbers(pcb: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    # --no-x2: KiCad's X2 header carries a creation date; --no-netlist: fabs ignore it
    kicad.cli("pcb", "export", "gerbers", "--no-x2", "--no-netlist", "--subtract-soldermask",
              "-l", GERBER_LAYERS, "-o", str(out) + "/", pcb)
    return sorted(p for p in out.iterdir() if p.suffix.startswith(".g"))


def plot_drill(pcb: Path, out: Path, separate: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    # Slots as routed paths (G00/M15/G01/M16): G85 slots are rejected by some CAM readers
    args = ["pcb", "export", "drill", "--format", "excellon", "--excellon-units", "mm",
            "--excellon-zeros-format", "decimal", "--excellon-oval-format", "route",
            "-o", str(out) + "/"]
    if separate:
        args.append("--excellon-separate-th")
    kicad.cli(*args, pcb)
    return sorted(out.glob("*.drl"))


def gerber_package(files: list[Path], dest: Path, zip_name: str, loose: bool = True) -> list[Path]:
    """Plotted Gerbers and drill files zipped into dest/zip_name and, with `loose`, copied
    beside the zip for review."""
    write_zip(dest / zip_name, {p.name: p.read_bytes() for p in files})
    if loose:
        for p in files:
            copy_if_changed(p, dest / p.name)
    return files


def positions(pcb: Path) -> pd.DataFrame:
    """Footprint centres as KiCad's own position file gives them (mm, y up, both sides)."""
    with tempfile.TemporaryDirectory() as tmp:
        pos = Path(tmp) / "pos.csv"
        kicad.cli("pcb", "export", "pos", "--format", "csv", "--units", "mm", "--side", "both",
                  "--exclude-dnp", "-o", pos, pcb)
        df = pd.read_csv(pos, dtype={"Ref": str, "Val": str, "Package": str})
    return df.rename(columns={"Ref": "ref", "Val": "value", "Package": "package",
                              "PosX": "x", "PosY": "y", "Rot": "rot", "Side": "side"})


@dataclass
class Plots:
    """Everything the fab houses take from one board, each made once."""
    gerbers: list[Path]
    drill_split: list[Path]  # PTH and NPTH apart
    drill_merged: list[Path]  # one Excellon file
    positions: pd.DataFrame
    footprints: dict  # facts.footprints of the board


def plot_all(pcb: Path, scratch: Path, pool: ThreadPoolExecutor,
             kept: dict[str, list[Path]] | None = None) -> dict[str, Future]:
    """Start every plot of the board; `Plots(**{k: f.result()})` once they are done. A plot
    named in `kept` is not made again: its files stand in for it."""
    from ..board import facts

    calls = {
        "gerbers": lambda: plot_gerbers(pcb, scratch / "gerbers"),
        "drill_split": lambda: plot_drill(pcb, scratch / "drill-split", separate=True),
        "drill_merged": lambda: plot_drill(pcb, scratch / "drill-merged", separate=False),
        "positions": lambda: positions(pcb),
        "footprints": lambda: facts.footprints(pcb),
    }
    kept = kept or {}
    return {name: pool.submit(lambda v=kept[name]: v) if name in kept else pool.submit(fn)
            for name, fn in calls.items()}


def write_csv(df: pd.DataFrame, path: Path) -> None:
    write_text_if_changed(path, df.to_csv(index=False, lineterminator="\n"))
