"""Pictures of the board for the docs: 3D renders of both sides (PNG) and copper/silk/mask
plots (SVG), all by kicad-cli under the frozen environment."""

from __future__ import annotations

from pathlib import Path

from .. import kicad
from ..paths import ProjectPaths, project

PLOTS = (("front", "F.Cu,F.SilkS,F.Mask,Edge.Cuts"), ("back", "B.Cu,B.SilkS,B.Mask,Edge.Cuts"))


def render(paths: ProjectPaths | None = None, pcb: Path | None = None,
           outdir: Path | None = None) -> list[Path]:
    paths = paths or project()
    pcb = pcb or paths.pcb
    outdir = outdir or paths.board_pictures
    outdir.mkdir(parents=True, exist_ok=True)
    made = []
    for side in ("top", "bottom"):
        png = outdir / f"{paths.name}-{side}.png"
        kicad.cli("pcb", "render", "--side", side, "--quality", "basic", "--width", "1600",
                  "--height", "1200", "--background", "opaque", "-o", png, pcb, paths=paths)
        made.append(png)
    for name, layers in PLOTS:
        svg = outdir / f"{paths.name}-{name}.svg"
        kicad.cli("pcb", "export", "svg", "--mode-single", "--fit-page-to-board",
                  "--exclude-drawing-sheet", "--layers", layers,
                  *(["--mirror"] if name == "back" else []), "-o", svg, pcb, paths=paths)
        made.append(svg)
    return made
