"""PCBWay: Gerbers with one Excellon file (PTH and NPTH together, as their upload check
prefers) as the order zip, the BOM and the centroid file in PCBWay's columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..kicadnet import ref_key
from .common import Plots, gerber_package, write_csv


def bom(bom_csv: Path) -> pd.DataFrame:
    b = pd.read_csv(bom_csv, keep_default_na=False)
    b = b[b["Assembly"].isin(["smt", "tht"])]
    return pd.DataFrame({
        "Item #": range(1, len(b) + 1),
        "Designator": b["Designators"].values,
        "Qty": b["Qty"].values,
        "Manufacturer": b["Manufacturer"].values,
        "Mfg Part #": b["MPN"].values,
        "Description / Value": [f"{v} - {d}" for v, d in zip(b["Value"], b["Description"],
                                                              strict=True)],
        "Footprint": [f.split(":")[-1] for f in b["Footprint"]],
        "Type": ["SMD" if a == "smt" else "Thru-Hole" for a in b["Assembly"]],
        "Notes": [f"LCSC {c}" if c else "" for c in b["LCSC"]],
    })


def centroid(plots: Plots) -> pd.DataFrame:
    pos = plots.positions.sort_values("ref", key=lambda s: s.map(ref_key))
    return pd.DataFrame({
        "Designator": pos["ref"].values, "Footprint": pos["package"].values,
        "Mid X(mm)": [f"{x:.4f}" for x in pos["x"]], "Mid Y(mm)": [f"{y:.4f}" for y in pos["y"]],
        "Layer": ["T" if s == "top" else "B" for s in pos["side"]],
        "Rotation": [f"{r:g}" for r in pos["rot"]],
    })


def write(plots: Plots, dest: Path, name: str, bom_csv: Path) -> None:
    gerber_package(plots.gerbers + plots.drill_merged, dest, f"{name}-pcbway-gerbers.zip")
    write_csv(bom(bom_csv), dest / f"{name}-pcbway-bom.csv")
    write_csv(centroid(plots), dest / f"{name}-pcbway-centroid.csv")
