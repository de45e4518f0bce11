"""JLCPCB: Gerbers + Excellon (PTH and NPTH apart) as the order zip, and the assembly BOM and
CPL in JLCPCB's columns, with the rotation corrections of its tape orientation."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from .. import parts as catalogue
from ..errors import DesignError
from ..kicadnet import ref_key
from .common import Plots, gerber_package, write_csv

MAX_DESIGNATORS = 200  # per BOM line, JLCPCB's limit


def load_rotations(path: Path) -> list[tuple[re.Pattern, float, float, float]]:
    lines = [ln for ln in Path(path).read_text().splitlines() if ln and not ln.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            out.append((re.compile(r["pattern"]), float(r["rotation"]), float(r["dx"]),
                        float(r["dy"])))
        except (re.error, ValueError, KeyError) as e:
            raise DesignError(f"{Path(path).name} row {i}: {e}") from None
    return out


def correction(footprint: str, table) -> tuple[float, float, float]:
    name = footprint.split(":")[-1]
    for pattern, rot, dx, dy in table:
        if pattern.search(name):
            return rot, dx, dy
    return 0.0, 0.0, 0.0


def assembly_rows(plots: Plots, cat: catalogue.Catalog) -> pd.DataFrame:
    """One row per part the fab places: position, catalogue entry."""
    pos = plots.positions
    ids = {ref: fp[4] for ref, fp in plots.footprints.items()}
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


def bom(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for _key, g in sorted(rows.groupby("key"), key=lambda kv: ref_key(
            min(kv[1]["ref"], key=ref_key))):
        refs = sorted(g["ref"], key=ref_key)
        first = g.iloc[0]
        for i in range(0, len(refs), MAX_DESIGNATORS):
            out.append({"Comment": first["value"], "Designator": ",".join(
                refs[i:i + MAX_DESIGNATORS]), "Footprint": first["footprint"].split(":")[-1],
                "LCSC Part #": first["lcsc"]})
    return pd.DataFrame(out, columns=["Comment", "Designator", "Footprint", "LCSC Part #"])


def cpl(rows: pd.DataFrame, table) -> pd.DataFrame:
    out = []
    for _, r in sorted(rows.iterrows(), key=lambda kv: ref_key(kv[1]["ref"])):
        rot, dx, dy = correction(r["footprint"], table)
        out.append({"Designator": r["ref"], "Mid X": f"{r['x'] + dx:.4f}mm",
                    "Mid Y": f"{r['y'] + dy:.4f}mm", "Layer": "Top",
                    "Rotation": f"{(r['rot'] + rot) % 360:g}"})
    return pd.DataFrame(out, columns=["Designator", "Mid X", "Mid Y", "Layer", "Rotation"])


def write(plots: Plots, dest: Path, name: str, cat: catalogue.Catalog,
          rotations: Path) -> pd.DataFrame:
    """The JLCPCB package into dest; returns the assembly rows."""
    gerber_package(plots.gerbers + plots.drill_split, dest, f"{name}-jlcpcb-gerbers.zip")
    rows = assembly_rows(plots, cat)
    write_csv(bom(rows), dest / f"{name}-jlcpcb-bom.csv")
    write_csv(cpl(rows, load_rotations(rotations)), dest / f"{name}-jlcpcb-cpl.csv")
    return rows
