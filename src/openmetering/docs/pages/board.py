"""The board on the site: facts for the order and assembly guides, the renders and layer
plots, the schematic sheets, and the interactive BOM."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ... import clock, kicad
from ...board import facts
from ...errors import ToolError
from ...paths import ProjectPaths
from ...repro import copy_if_changed
from ..core import Fragment, Input, site_path, table

PCB = Input("pcb", "pcb", "board stage (omd board build)")
RENDERS = Input("board_renders", "board_pictures", "board stage (omd board render)", folder=True)
SCHEMATIC = Input("schematic", "schematic_pictures", "circuit stage (omd netlist)", folder=True)
IMAGE_EXT = (".svg", ".png", ".jpg", ".jpeg", ".webp")


def gen_board_facts(paths: ProjectPaths) -> str:
    """Facts for the order and assembly guides, read from the board file. Not the design
    rules: pcbnew takes those from the .kicad_pro beside the board, which is not an input
    here (the fab stage's summary lists the rules the board was checked with)."""
    f = facts.facts(PCB.path(paths))
    rows = [["Board size", f"{f['width_mm']:.1f} mm × {f['height_mm']:.1f} mm"],
            ["Copper layers", f["layers"]],
            ["Board thickness", f"{f['thickness_mm']:.1f} mm"],
            ["Surface-mount parts", f["smd"]],
            ["Through-hole parts", f["tht"]]]
    return table(["Board", "Value"], rows)


def gen_board_renders(paths: ProjectPaths, only_first: bool = False) -> str:
    d = RENDERS.path(paths)
    # Renders (PNG) before layer plots, the top/front side before the bottom/back one.
    def order(p: Path):
        name = p.stem.lower()
        side = 0 if ("top" in name or "front" in name) else 1 if (
            "bottom" in name or "back" in name) else 2
        return (p.suffix.lower() == ".svg", side, p.as_posix())

    imgs = sorted((p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXT), key=order)
    if only_first:
        imgs = imgs[:1]
    out = []
    for p in imgs:
        rel = site_path(paths, p)
        kind = "layer plot" if p.suffix.lower() == ".svg" else "render"
        label = f"{p.stem.removeprefix('open-meter-').replace('-', ' ').replace('_', ' ')} " \
                f"({kind})"
        out.append(f"<figure markdown>\n![{label}](/{rel}){{ loading=lazy }}\n"
                   f"<figcaption>{label}</figcaption>\n</figure>\n")
    if only_first:
        return out[0]
    # two per row: top and bottom of the same kind side by side
    return '<div class="grid" markdown>\n\n' + "\n".join(out) + "\n</div>\n"


def gen_schematic(paths: ProjectPaths) -> str:
    """The circuit stage plots the schematic into docs/generated/schematic/: pictures of the
    top sheet and two blocks (each opens at full size, readable at 100 % zoom), every other
    sheet folded, and the PDF."""
    d = SCHEMATIC.path(paths)
    svgs = sorted(d.glob("*.svg"))
    pngs = sorted(d.glob("*.png"), key=lambda p: (len(p.stem), p.stem))
    pdfs = sorted(d.glob("*.pdf"))
    rel = site_path(paths, d)
    top_stem = min((p.stem for p in svgs + pngs), key=len, default="")
    out = ["Drawn from the SKiDL circuit by the circuit stage (one sheet per function block, "
           "a top sheet with the blocks as a block diagram) and plotted by KiCad. Click a "
           "picture for full size."]
    if pdfs:
        out.append(" All sheets as one PDF: "
                   + ", ".join(f"[{p.name}](/{rel}/{p.name})" for p in pdfs) + ".")
    out.append("\n\n")
    shown = set()
    for p in pngs:
        name = "top sheet" if p.stem == top_stem else \
            p.stem.removeprefix(top_stem + "-").replace("_", " ") + " sheet"
        out.append(f'<figure markdown>\n[![{name}](/{rel}/{p.name}){{ .schematic-sheet }}]'
                   f"(/{rel}/{p.name})\n<figcaption>{name}</figcaption>\n</figure>\n\n")
        shown.add(p.stem)
    sheets = [p for p in svgs if p.stem not in shown]
    if sheets:
        out.append("The other sheets:\n\n")
        for p in sheets:
            name = p.stem.removeprefix(top_stem + "-").replace("_", " ") \
                if p.stem != top_stem else "top"
            out.append(f'??? abstract "{name}"\n    [![{name} sheet](/{rel}/{p.name})]'
                       f"(/{rel}/{p.name})\n\n")
    return "".join(out)


def write_ibom(paths: ProjectPaths, pcb: Path, out_dir: Path) -> Path:
    """The interactive BOM (InteractiveHtmlBom) of `pcb` into out_dir."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / pcb.name
        shutil.copy(pcb, work)
        # iBoM prints the file's mtime when the title block has no date: pin it to the
        # frozen clock so a fresh clone gives the same bytes.
        os.utime(work, (clock.EPOCH, clock.EPOCH))
        exe = Path(kicad.PYTHON).with_name("generate_interactive_bom")
        kicad.run([str(exe), "--no-browser", "--dest-dir", str(Path(tmp) / "out"),
                   "--name-format", f"{paths.name}-ibom", "--include-nets", "--include-tracks",
                   "--extra-fields", "MPN,LCSC", "--checkboxes", "Sourced,Placed",
                   "--highlight-pin1", "selected", str(work)],
                  what="InteractiveHtmlBom", cwd=Path(tmp),
                  env=kicad.env(paths, {"INTERACTIVE_HTML_BOM_NO_DISPLAY": "1"}))
        html = Path(tmp) / "out" / f"{paths.name}-ibom.html"
        if not html.is_file():
            raise ToolError(f"InteractiveHtmlBom wrote no {html.name}")
        copy_if_changed(html, out_dir / html.name)
    return out_dir / html.name


def gen_ibom(paths: ProjectPaths) -> str:
    """The interactive BOM into docs/generated/ibom/, and the button that opens it."""
    write_ibom(paths, PCB.path(paths), paths.generated_docs / "ibom")
    return ("[:material-open-in-new: Open the interactive BOM]"
            f"(/generated/ibom/{paths.name}-ibom.html){{ .md-button .md-button--primary }}\n")


FRAGMENTS = (
    Fragment("board-facts", (PCB,), gen_board_facts),
    Fragment("board-renders", (RENDERS,), gen_board_renders),
    Fragment("board-front", (RENDERS,), lambda p: gen_board_renders(p, only_first=True)),
    Fragment("schematic", (SCHEMATIC,), gen_schematic),
    Fragment("ibom", (PCB,), gen_ibom),
)
