"""Pictures of the board for the docs: 3D renders of both sides (PNG) and copper/silk/mask
plots (SVG), all by kicad-cli under the frozen environment, side by side on every core."""

from __future__ import annotations

from pathlib import Path

from .. import kicad
from ..paths import ProjectPaths, project

# the assembly drawing: every part's outline and reference designator (the fab layer), which
# the silkscreen has no room for at this density
PLOTS = (("front", "F.Cu,F.SilkS,F.Mask,Edge.Cuts"), ("back", "B.Cu,B.SilkS,B.Mask,Edge.Cuts"),
         ("assembly", "F.Fab,F.SilkS,Edge.Cuts"))


def calls(paths: ProjectPaths, pcb: Path, outdir: Path) -> list[tuple[Path, tuple]]:
    """(picture, kicad-cli arguments) for every picture of `pcb` into outdir."""
    out = []
    for side in ("top", "bottom"):
        png = outdir / f"{paths.name}-{side}.png"
        out.append((png, ("pcb", "render", "--side", side, "--quality", "basic", "--width",
                          "1600", "--height", "1200", "--background", "opaque", "-o", png,
                          pcb)))
    for name, layers in PLOTS:
        svg = outdir / f"{paths.name}-{name}.svg"
        out.append((svg, ("pcb", "export", "svg", "--mode-single", "--fit-page-to-board",
                          "--exclude-drawing-sheet", "--layers", layers,
                          *(["--mirror"] if name == "back" else []), "-o", svg, pcb)))
    return out


def render(paths: ProjectPaths | None = None, pcb: Path | None = None,
           outdir: Path | None = None) -> list[Path]:
    paths = paths or project()
    pcb = pcb or paths.pcb
    outdir = outdir or paths.board_pictures
    outdir.mkdir(parents=True, exist_ok=True)
    todo = calls(paths, pcb, outdir)
    kicad.concurrently(*(lambda a=args: kicad.cli(*a, paths=paths) for _, args in todo))
    return [picture for picture, _ in todo]
