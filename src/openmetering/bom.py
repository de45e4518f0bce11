"""The BOM stage: netlist + parts catalogue -> bill of materials and cost (pandas).

Outputs in hardware/bom/: open-meter-bom.csv and .xlsx (one line per catalogue part, with
designators and quantities), cost.json (cost per board at 5 and 100 boards).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import parts as catalogue
from .errors import DesignError
from .kicadnet import read_netlist, ref_key
from .paths import ProjectPaths, project
from .repro import normalise_zip, write_text_if_changed

BATCHES = (5, 100)
COLUMNS = ["Item", "Designators", "Qty", "Value", "Footprint", "Manufacturer", "MPN", "LCSC",
           "JLC tier", "Assembly", "Description", "Unit USD", "Price at qty", "Price date",
           "Price source", "Line USD"]


def board_parts(netlist_path: Path, cat: catalogue.Catalog) -> pd.DataFrame:
    """One row per placed part: ref and its catalogue entry (checked against the netlist)."""
    net = read_netlist(netlist_path)
    rows = []
    for ref, p in net.parts.items():
        if ref.startswith("#"):  # schematic-only symbols (power flags)
            continue
        key = p.fields.get("PartID")
        if not key:
            raise DesignError(f"{ref}: no PartID field in the netlist; every part must come "
                              f"from the catalogue")
        entry = cat[key]
        if (p.value, p.footprint) != (entry.value, entry.footprint):
            raise DesignError(f"{ref}: netlist value/footprint {p.value} {p.footprint} differ "
                              f"from catalogue '{key}' ({entry.value} {entry.footprint})")
        rows.append({"ref": ref, "key": key})
    return pd.DataFrame(rows)


def make_bom(netlist_path: Path, parts_path: Path) -> pd.DataFrame:
    cat = catalogue.load(parts_path)
    placed = board_parts(netlist_path, cat)
    lines = []
    for key, group in placed.groupby("key", sort=False):
        entry = cat[key]
        if entry.assembly == "board":
            continue
        refs = sorted(group["ref"], key=ref_key)
        lines.append(_line(entry, refs, len(refs)))
    # The off-board modules a complete meter needs, one each (they plug into the headers).
    for entry in cat.parts.values():
        if entry.assembly == "module":
            lines.append(_line(entry, [], 1))
    df = pd.DataFrame(lines)
    order = {"smt": 0, "tht": 1, "module": 2}
    df["_o"] = df["Assembly"].map(order)
    df["_r"] = df["Designators"].map(lambda d: ref_key(d.split(",")[0]) if d else ("~", 0, ""))
    df = df.sort_values(["_o", "_r"]).drop(columns=["_o", "_r"]).reset_index(drop=True)
    df.insert(0, "Item", range(1, len(df) + 1))
    return df[COLUMNS]


def _line(entry: catalogue.CatalogPart, refs: list[str], qty: int) -> dict:
    return {
        "Designators": ",".join(refs),
        "Qty": qty,
        "Value": entry.value,
        "Footprint": entry.footprint,
        "Manufacturer": entry.manufacturer,
        "MPN": entry.mpn,
        "LCSC": entry.lcsc or ("not verified" if entry.facts.get("lcsc_status") else ""),
        "JLC tier": entry.jlc_tier,
        "Assembly": entry.assembly,
        "Description": entry.description,
        "Unit USD": entry.unit_usd,
        "Price at qty": entry.price_at_qty,
        "Price date": entry.price_date,
        "Price source": entry.price_source,
        "Line USD": round(entry.unit_usd * qty, 4),
    }


def cost(bom: pd.DataFrame, cat: catalogue.Catalog) -> dict:
    """Cost of one meter when ordering `n` boards: parts at their quoted unit price (no volume
    discount is modelled), JLCPCB's per-order loading fee of each unique extended SMT part,
    and the bare board and assembly figures of the catalogue's [design.fab] (estimates where
    it says so), shared by the boards of the order. Two totals: the assembled board alone,
    and the kit (the board, two CTs, the voltage sensor and the camera: each module's
    kit_qty). The commercial meters' retail prices stand beside them ([design.retail])."""
    fee = float(cat.design["jlc_extended_fee_usd"])
    fab = cat.design.get("fab", {})
    board = bom[bom["Assembly"].isin(["smt", "tht"])]
    modules = bom[bom["Assembly"] == "module"]
    extended = board[(board["Assembly"] == "smt") & (board["JLC tier"] == "extended")]
    smt_joints = int(board[board["Assembly"] == "smt"]["Qty"].sum())
    parts_usd = float(board["Line USD"].sum())
    kit_usd = 0.0
    kit = []
    for _, row in modules.iterrows():
        entry = next(e for e in cat.parts.values() if e.assembly == "module" and e.value == row["Value"])
        q = int(entry.facts.get("kit_qty", 1))
        if q:
            kit.append(f"{q} x {entry.value} ({entry.price_source}, {entry.price_date})")
            kit_usd += q * entry.unit_usd
    unverified = int((board["LCSC"] == "not verified").sum())
    out = {"currency": "USD",
           "note": "unit prices at the quoted break from hardware/parts.toml; no volume "
                   "discount modelled; bare board and assembly from [design.fab] "
                   f"({fab.get('source', 'not given')})",
           "extended_smt_parts": int(len(extended)),
           "extended_fee_per_order": round(fee * len(extended), 2),
           "lines_without_verified_lcsc": unverified,
           "kit_contents": kit,
           "retail": cat.design.get("retail", {})}
    for n in BATCHES:
        fees = fee * len(extended) / n
        pcb = float(fab.get(f"pcb_usd_qty{n}", 0.0))
        assembly = (float(fab.get("setup_usd", 0.0)) / n
                    + float(fab.get("per_joint_usd", 0.0)) * smt_joints
                    + float(fab.get("tht_usd_per_board", 0.0)))
        alone = parts_usd + fees + pcb + assembly
        out[f"qty{n}"] = {
            "board_parts": round(parts_usd, 2),
            "extended_fees_per_board": round(fees, 2),
            "bare_board": round(pcb, 2),
            "assembly": round(assembly, 2),
            "assembled_board": round(alone, 2),
            "kit_modules": round(kit_usd, 2),
            "total_per_meter": round(alone + kit_usd, 2),
        }
    return out


def write(paths: ProjectPaths | None = None, netlist_path: Path | None = None,
          parts_path: Path | None = None, log=print) -> dict:
    paths = paths or project()
    netlist_path = netlist_path or paths.netlist
    parts_path = parts_path or paths.parts
    bom = make_bom(netlist_path, parts_path)
    cat = catalogue.load(parts_path)
    summary = cost(bom, cat)
    write_text_if_changed(paths.bom_csv, bom.to_csv(index=False, lineterminator="\n"))
    xlsx = paths.bom_xlsx
    with pd.ExcelWriter(xlsx, engine="openpyxl") as xw:
        bom.to_excel(xw, index=False, sheet_name="BOM")
        pd.DataFrame(_cost_rows(summary)).to_excel(xw, index=False, sheet_name="Cost")
        xw.book.properties.creator = "openmetering"
    normalise_zip(xlsx, keep_order=True)
    write_text_if_changed(paths.cost, json.dumps(summary, indent=2) + "\n")
    log(f"BOM: {paths.rel(paths.bom_csv)} ({len(bom)} lines, {int(bom['Qty'].sum())} parts); "
        f"cost per meter: {summary['qty5']['total_per_meter']} USD at 5 boards, "
        f"{summary['qty100']['total_per_meter']} USD at 100")
    return summary


def _cost_rows(summary: dict) -> list[dict]:
    return [{"Boards ordered": n, **summary[f"qty{n}"]} for n in BATCHES]
