"""The bill of materials and the cost per board (hardware/bom/)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ...errors import DesignError
from ...paths import ProjectPaths
from ..core import Fragment, Input, Raw, cell, load_json, table

BOM = Input("bom", "bom_csv", "circuit stage (omd bom)")
COST = Input("cost", "cost", "circuit stage (omd bom)")
LCSC_RE = re.compile(r"^C\d+$")
# Columns of the BOM csv left to the download: the page table must stay readable.
BOM_PAGE_DROPS = {"item", "description", "price at qty", "price date", "price source"}
QTY_KEY = re.compile(r"^qty[_ ]?(\d+)$", re.I)


def gen_bom(paths: ProjectPaths) -> str:
    with open(BOM.path(paths), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DesignError(f"{BOM.rel(paths)} is empty")
    header, body = rows[0], rows[1:]
    keep = [i for i, h in enumerate(header) if h.strip().lower() not in BOM_PAGE_DROPS]
    lcsc_cols = {i for i, h in enumerate(header) if h.strip().lower().startswith("lcsc")}
    fp_cols = {i for i, h in enumerate(header) if h.strip().lower() == "footprint"}
    out_rows = []
    for r in body:
        cells = []
        for i in keep:
            v = r[i].strip() if i < len(r) else ""
            if i in lcsc_cols and LCSC_RE.match(v):
                cells.append(Raw(f"[{v}](https://www.lcsc.com/product-detail/{v}.html)"))
            elif i in fp_cols:
                cells.append(v.split(":", 1)[-1])  # the library name is in the CSV
            elif "," in v and re.fullmatch(r"[A-Z]+\d+(,[A-Z]+\d+)+", v):
                cells.append(v.replace(",", ", "))  # lets long designator lists wrap
            else:
                cells.append(v)
        out_rows.append(cells)
    name = BOM.path(paths).name
    return (table([header[i] for i in keep], out_rows)
            + f"\n{len(body)} lines. All columns (descriptions, price breaks, dates and sources "
            f"of the prices): [{name}](/downloads/bom/{name}).\n")


def gen_hand_parts(paths: ProjectPaths) -> str:
    """BOM lines the factory's SMT assembly does not fit: through-hole parts and modules."""
    with open(BOM.path(paths), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "Assembly" not in rows[0]:
        return "Every part in the [bill of materials](/hardware/bom.md).\n"
    ref_col = next((c for c in rows[0] if c.lower() in ("designators", "refs", "references")),
                   None)
    out = []
    for r in rows:
        if r["Assembly"].strip().lower() in ("smt", "smd", ""):
            continue
        refs = (r.get(ref_col) or "").replace(",", ", ") if ref_col else ""
        out.append([refs or "—", r.get("Qty", ""), r.get("Value", ""), r["Assembly"],
                    r.get("Description", "")])
    if not out:
        return "None: the factory fits every part.\n"
    return table(["Designators", "Qty", "Value", "Kind", "Description"], out)


def bom_files(paths: ProjectPaths) -> list[tuple[Path, str]]:
    bom = BOM.path(paths)
    return [(p, f"downloads/bom/{p.name}") for p in sorted(bom.parent.glob(bom.stem + ".*"))]


def gen_cost(paths: ProjectPaths) -> str:
    """Cost per board: one column per quantity (keys like "qty5"), then everything else."""
    data = load_json(COST, paths)
    qty = {k: v for k, v in data.items() if QTY_KEY.match(k) and isinstance(v, dict)}
    rest = {k: v for k, v in data.items() if k not in qty}
    currency = data.get("currency", "")
    out = ""
    if qty:
        cols = sorted(qty, key=lambda k: int(QTY_KEY.match(k).group(1)))
        items = list(dict.fromkeys(i for k in cols for i in qty[k]))
        rows = []
        for item in items:
            label = item.replace("_", " ").capitalize()
            vals = [qty[k].get(item, "") for k in cols]
            if item.startswith("total"):
                rows.append([Raw(f"**{cell(label)}**"), *(Raw(f"**{v}**") for v in vals)])
            else:
                rows.append([label, *vals])
        out += table([f"{currency} per board".strip()]
                     + [f"at {QTY_KEY.match(k).group(1)} boards" for k in cols], rows)
        rest.pop("currency", None)
    if rest:
        out += "\n" + table(["Item", "Value"],
                            [[k.replace("_", " ").capitalize(), v] for k, v in flatten(rest)])
    return out


def flatten(data, prefix="") -> list[tuple[str, object]]:
    if isinstance(data, dict):
        out = []
        for k, v in data.items():
            out += flatten(v, f"{prefix}{k}" if not prefix else f"{prefix} › {k}")
        return out
    if isinstance(data, list) and all(not isinstance(x, dict | list) for x in data):
        return [(prefix, ", ".join(str(x) for x in data))]
    if isinstance(data, list):
        out = []
        for i, v in enumerate(data):
            out += flatten(v, f"{prefix} › {i + 1}")
        return out
    return [(prefix, data)]


FRAGMENTS = (
    Fragment("bom", (BOM,), gen_bom),
    Fragment("cost", (COST,), gen_cost),
    Fragment("hand-parts", (BOM,), gen_hand_parts),
)
