"""The KiKit panel (preset: hardware/board/panel.json): 2x2 boards with rails, tooling holes,
fiducials and mouse bites, its DRC summary, and its Gerbers and drill as a zip.

The preset's rows alternate so the ESP32-S3 antennas, which overhang the top edge, point out
of the panel's top and bottom edges; rails left and right (none under an antenna's keep-out)
carry 3 tooling holes and 3 fiducials, as JLCPCB's SMT line asks for.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from .. import kicad
from ..errors import ToolError
from ..repro import copy_if_changed, write_text_if_changed
from .common import gerber_package, plot_drill, plot_gerbers

UUID_SEED = 20000101
SCRIPT = f"""
import sys
import pcbnew
pcbnew.KIID.SeedGenerator({UUID_SEED})
from kikit import panelize_ui
from kikit import panelize_ui_impl as ki
from kikit.common import fakeKiCADGui
app = fakeKiCADGui()
preset = ki.obtainPreset([sys.argv[3]])
panelize_ui.doPanelization(sys.argv[1], sys.argv[2], preset)
"""


def make_panel(pcb: Path, out_pcb: Path, preset: Path) -> None:
    out_pcb.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcb = Path(tmp) / out_pcb.name
        # KiKit walks sets of net names: the runner's fixed hash seed keeps the .kicad_pro's
        # order stable
        kicad.python(pcb, tmp_pcb, preset, code=SCRIPT, what="KiKit panelize")
        if not tmp_pcb.exists():
            raise ToolError(f"KiKit panelize wrote no {tmp_pcb.name}")
        copy_if_changed(tmp_pcb, out_pcb)
        pro = tmp_pcb.with_suffix(".kicad_pro")
        if pro.exists():
            copy_if_changed(pro, out_pcb.with_suffix(".kicad_pro"))


# KiCad writes a board one item per line, tab-indented: a footprint opens at one tab and its
# properties at two, each closing on a line of its own at the same depth
_FOOTPRINT = re.compile(r"^\t\(footprint .*?^\t\)$", re.M | re.S)
_PROPERTY = re.compile(r'^(\t\t\(property "((?:[^"\\]|\\.)*)" )("(?:[^"\\]|\\.)*")\n(.*?)^\t\t\)$',
                       re.M | re.S)
_HIDE = re.compile(r"^\t\t\t\(hide yes\)$", re.M)


def _hidden_fields(footprint: str) -> tuple[str | None, dict[str, str]]:
    """(reference, {hidden property: its quoted text}) of one footprint's text."""
    ref, hidden = None, {}
    for m in _PROPERTY.finditer(footprint):
        if m.group(2) == "Reference":
            ref = m.group(3)
        if _HIDE.search(m.group(4)):
            hidden[m.group(2)] = m.group(3)
    return ref, hidden


def with_board_fields(panel_text: str, board_text: str) -> str | None:
    """The panel board with every copy's hidden fields (value, MPN, LCSC number...) set to
    the board's, as KiKit copies them; None when a copy cannot be matched to one footprint
    of the board by its reference and field names (then the panel is made again). Valid
    only for a board whose visible content is the panel's source's (board.facts.
    visible_digest): the fab stage keeps the plots on that condition alone."""
    board: dict[str, dict[str, str]] = {}
    for fp in _FOOTPRINT.findall(board_text):
        ref, hidden = _hidden_fields(fp)
        if ref is None or ref in board:
            return None
        board[ref] = hidden
    seen: set[str] = set()

    def patch(m: re.Match) -> str:
        ref, hidden = _hidden_fields(m.group(0))
        if ref is None or ref not in board:
            return m.group(0)  # the panel's own: fiducials, tooling holes
        if set(hidden) != set(board[ref]):
            raise LookupError(ref)
        seen.add(ref)
        return _PROPERTY.sub(lambda p: p.group(1) + board[ref][p.group(2)] + "\n" + p.group(4)
                             + "\t\t)" if p.group(2) in hidden else p.group(0), m.group(0))

    try:
        out = _FOOTPRINT.sub(patch, panel_text)
    except LookupError:
        return None
    return out if seen == set(board) else None


def drc_report(pcb: Path, out_json: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rpt = Path(tmp) / "drc.json"
        kicad.cli("pcb", "drc", "--severity-all", "--format", "json", "--units", "mm",
                  "-o", rpt, pcb, check=False)
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


def plots(panel_pcb: Path, scratch: Path) -> list[Path]:
    return plot_gerbers(panel_pcb, scratch / "panel-plots") + \
        plot_drill(panel_pcb, scratch / "panel-plots", separate=True)


def write(dest: Path, name: str, files: list[Path]) -> None:
    """The panel's order zip (the panel board and its DRC report are already in dest)."""
    gerber_package(files, dest, f"{name}-panel-gerbers.zip", loose=False)
