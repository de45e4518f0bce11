"""Gates on the committed board: KiCad's DRC and netlist <-> board parity.

Parity is our own comparison (footprints, values, pad-to-net) against the circuit's netlist,
so it does not depend on a schematic being present; with a schematic beside the board,
`kicad-cli pcb drc --schematic-parity` runs as part of `drc` as well.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from . import kicad, kicadnet
from .board import facts
from .errors import CheckFailed, MissingInput, ToolError
from .paths import ProjectPaths, project


def run_drc(pcb: Path, schematic_parity: bool = False) -> dict:
    """kicad-cli DRC, every severity; returns counts and the raw violations."""
    if not Path(pcb).is_file():
        raise MissingInput(f"{pcb}: board missing; run the board stage first (make board)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "drc.json"
        args = ["pcb", "drc", "--format", "json", "--severity-all", "--units", "mm",
                "--exit-code-violations", "-o", out]
        if schematic_parity:
            args.append("--schematic-parity")
        proc = kicad.cli(*args, pcb, check=False)
        if not out.exists():
            raise ToolError(f"kicad-cli drc wrote no report: {proc.stdout}{proc.stderr}")
        rep = json.loads(out.read_text())
    text = proc.stdout + proc.stderr
    if schematic_parity and "Failed to fetch schematic netlist" in text:
        # KiCad then exits 0 with no parity items: a silent pass we must not take
        raise ToolError("kicad-cli could not read the schematic for parity: " + text.strip())
    viol = rep.get("violations", [])
    return {
        "exit_code": proc.returncode,
        "errors": sum(1 for v in viol if v["severity"] == "error"),
        "warnings": sum(1 for v in viol if v["severity"] == "warning"),
        "unconnected": len(rep.get("unconnected_items", [])),
        "parity": len(rep.get("schematic_parity", [])),
        "violations": viol,
        "unconnected_items": rep.get("unconnected_items", []),
        "schematic_parity": rep.get("schematic_parity", []),
    }


def describe(v: dict) -> str:
    items = "; ".join(i.get("description", "") for i in v.get("items", []))
    return f"[{v['severity']}] {v['type']}: {v['description']} -- {items}"


def parity(pcb: Path, netlist: Path) -> list[str]:
    """Differences between board and netlist, one readable line each; empty when they agree."""
    net = kicadnet.read_netlist(netlist)
    board = facts.footprints(pcb)
    want = net.pad_nets()
    diffs = []
    for ref in sorted(set(net.parts) | set(board)):
        if ref not in board:
            diffs.append(f"{ref}: in the netlist, missing on the board")
            continue
        fpid, value, pads, board_only, _part_id = board[ref]
        if ref not in net.parts:
            if not board_only:
                diffs.append(f"{ref}: on the board, not in the netlist")
            continue
        part = net.parts[ref]
        if fpid != part.footprint:
            diffs.append(f"{ref} footprint: board {fpid}, netlist {part.footprint}")
        if value != part.value:
            diffs.append(f"{ref} value: board {value}, netlist {part.value}")
        for pad in sorted(set(pads) | {p for (r, p) in want if r == ref}):
            have = pads.get(pad)
            need = want.get((ref, pad), "")
            if have is None:
                diffs.append(f"{ref} pad {pad}: missing on the board footprint, netlist {need}")
                continue
            for h in have:
                if h != need:
                    diffs.append(f"{ref} pad {pad}: board {h or '(no net)'}, netlist {need or '(no net)'}")
    return diffs


def drc_gate(paths: ProjectPaths | None = None, pcb: Path | None = None, log=print) -> dict:
    """DRC (with schematic parity when the schematic is beside the board); fails on anything."""
    paths = paths or project()
    pcb = pcb or paths.pcb
    rep = run_drc(pcb, schematic_parity=pcb.with_suffix(".kicad_sch").exists())
    for v in rep["violations"] + rep["unconnected_items"] + rep["schematic_parity"]:
        log(describe(v))
    line = (f"DRC: {rep['errors']} errors, {rep['warnings']} warnings, "
            f"{rep['unconnected']} unconnected, {rep['parity']} schematic parity")
    if rep["violations"] or rep["unconnected"] or rep["parity"]:
        raise CheckFailed(line)
    log(line)
    return rep


def parity_gate(paths: ProjectPaths | None = None, pcb: Path | None = None,
                netlist: Path | None = None, log=print) -> list[str]:
    paths = paths or project()
    diffs = parity(pcb or paths.pcb, netlist or paths.netlist)
    for line in diffs:
        log(line)
    if diffs:
        raise CheckFailed(f"parity: {len(diffs)} differences between board and netlist")
    log("parity: 0 differences")
    return diffs
