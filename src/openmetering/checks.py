"""Gates on the committed board: KiCad's DRC and netlist <-> board parity.

    python -m openmetering.checks drc [PCB]
    python -m openmetering.checks parity [PCB] [--netlist NET]

Parity is our own comparison (footprints, values, pad-to-net) against the circuit's netlist,
so it does not depend on a schematic being present; with a schematic next to the board,
`kicad-cli pcb drc --schematic-parity` is run as well by `drc`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from openmetering import kicadnet

ROOT = Path(__file__).resolve().parents[2]
PCB = ROOT / "hardware" / "kicad" / "open-meter.kicad_pcb"
NETLIST = ROOT / "hardware" / "kicad" / "open-meter.net"


def run_drc(pcb: Path = PCB, schematic_parity: bool = False) -> dict:
    """kicad-cli DRC, every severity; returns counts and the raw violations."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "drc.json"
        cmd = ["kicad-cli", "pcb", "drc", "--format", "json", "--severity-all", "--units", "mm",
               "--exit-code-violations", "-o", str(out)]
        if schematic_parity:
            cmd.append("--schematic-parity")
        cmd.append(str(pcb))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if not out.exists():
            raise RuntimeError(f"kicad-cli drc wrote no report: {proc.stdout}{proc.stderr}")
        rep = json.loads(out.read_text())
    text = proc.stdout + proc.stderr
    if schematic_parity and "Failed to fetch schematic netlist" in text:
        # KiCad then exits 0 with no parity items: a silent pass we must not take
        raise RuntimeError("kicad-cli could not read the schematic for parity: " + text.strip())
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


def board_view(pcb: Path) -> dict:
    """Footprints of the board as {ref: (footprint, value, {pad: net}, board_only)}, read in a
    pcbnew subprocess (pcbnew is a system module; this keeps test processes clean)."""
    code = r"""
import json, sys, pcbnew
b = pcbnew.LoadBoard(sys.argv[1])
out = {}
for fp in b.GetFootprints():
    pads = {}
    for p in fp.Pads():
        if p.GetNumber():
            pads.setdefault(p.GetNumber(), set()).add(p.GetNetname())
    out[fp.GetReference()] = [str(fp.GetFPID().GetUniStringLibId()), fp.GetValue(),
                              {k: sorted(v) for k, v in pads.items()}, fp.IsBoardOnly()]
print(json.dumps(out))
"""
    proc = subprocess.run(["/usr/bin/python3", "-c", code, str(pcb)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parity(pcb: Path = PCB, netlist: Path = NETLIST) -> list[str]:
    """Differences between board and netlist, one readable line each; empty when they agree."""
    net = kicadnet.read_netlist(netlist)
    board = board_view(pcb)
    want = net.pad_nets()
    diffs = []
    for ref in sorted(set(net.parts) | set(board)):
        if ref not in board:
            diffs.append(f"{ref}: in the netlist, missing on the board")
            continue
        fpid, value, pads, board_only = board[ref]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openmetering.checks")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("drc")
    d.add_argument("pcb", nargs="?", type=Path, default=PCB)
    p = sub.add_parser("parity")
    p.add_argument("pcb", nargs="?", type=Path, default=PCB)
    p.add_argument("--netlist", type=Path, default=NETLIST)
    a = ap.parse_args(argv)
    if a.cmd == "drc":
        sch = a.pcb.with_suffix(".kicad_sch")
        rep = run_drc(a.pcb, schematic_parity=sch.exists())
        for v in rep["violations"]:
            print(describe(v))
        for v in rep["unconnected_items"]:
            print(describe(v))
        for v in rep["schematic_parity"]:
            print(describe(v))
        print(f"DRC: {rep['errors']} errors, {rep['warnings']} warnings, "
              f"{rep['unconnected']} unconnected, {rep['parity']} schematic parity")
        return 0 if not (rep["violations"] or rep["unconnected"] or rep["parity"]) else 1
    if a.cmd == "parity":
        diffs = parity(a.pcb, a.netlist)
        for line in diffs:
            print(line)
        print(f"parity: {len(diffs)} differences")
        return 1 if diffs else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
