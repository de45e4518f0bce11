"""The order: download links of the fab packages (hardware/fab/) and what to type into the
fabs' quote forms."""

from __future__ import annotations

from pathlib import Path

from ...paths import ProjectPaths
from ..core import Fragment, Input, Raw, load_json, table

FAB = Input("gerbers", "fab", "fab stage (omd fab)", folder=True)
FAB_SUMMARY = Input("fab_summary", "fab_summary", "fab stage (omd fab)")
VENDOR_ORDER = {"jlcpcb": 0, "pcbway": 1, "panel": 2}
UNITS = {"mm": "(mm)", "oz": "(oz)", "c": "(°C)", "ma": "(mA)", "v": "(V)", "w": "(W)"}


def downloads(paths: ProjectPaths) -> list[tuple[Path, str]]:
    """(source file, site path) of every order file (zips and the assembly BOM/placement
    CSVs; the loose Gerbers are inside the zips); the mkdocs hook copies them into site/."""
    d = FAB.path(paths)
    files = [p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in (".zip", ".csv")]
    return [(p, "downloads/" + p.relative_to(d).as_posix())
            for p in sorted(files, key=lambda p: (VENDOR_ORDER.get(p.parent.name, 9),
                                                  p.parent.name, p.suffix != ".zip", p.name))]


def download_kind(p: Path) -> str:
    n = p.name.lower()
    if p.suffix.lower() == ".zip":
        return "Gerbers + drill: upload for the boards"
    if "cpl" in n or "centroid" in n or "pos" in n:
        return "placement (CPL / centroid): upload for assembly"
    if "bom" in n:
        return "assembly BOM: upload for assembly"
    return ""


def human_size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KiB" if n < 1024**2 \
        else f"{n / 1024**2:.1f} MiB"


def gen_downloads(paths: ProjectPaths) -> str:
    rows = []
    for src, dest in downloads(paths):
        vendor = src.parent.name
        size = src.stat().st_size
        rows.append([vendor, Raw(f"[{src.name}](/{dest})"), download_kind(src),
                     human_size(size)])
    return table(["For", "Download", "What", "Size"], rows)


def gen_order_options(paths: ProjectPaths) -> str:
    """What to type into the fabs' quote forms, as the fab stage decided it."""
    data = load_json(FAB_SUMMARY, paths)
    out = ""
    board = data.get("board", {})
    if board:
        rows = []
        if "width_mm" in board and "height_mm" in board:
            rows.append(["Dimensions", f"{board['width_mm']} mm × {board['height_mm']} mm"])
        for k, v in board.items():
            if k in ("width_mm", "height_mm"):
                continue
            rows.append([humanize(k), v])
        out += table(["Board", "Value"], rows) + "\n"
    order = data.get("order", {})
    if order:
        out += table(["Quote-form option", "Pick"], [[humanize(k), v] for k, v in order.items()])
    if "assembly_parts" in data:
        out += f"\nParts placed by the assembly service: {data['assembly_parts']}.\n"
    return out


def humanize(key: str) -> str:
    """"min_track_mm" -> "Min track (mm)": JSON keys carry their unit as a suffix."""
    words = key.split("_")
    unit = UNITS.get(words[-1].lower()) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    text = " ".join(words).capitalize()
    return f"{text} {unit}" if unit else text


FRAGMENTS = (
    Fragment("downloads", (FAB,), gen_downloads),
    Fragment("order-options", (FAB_SUMMARY,), gen_order_options),
)
