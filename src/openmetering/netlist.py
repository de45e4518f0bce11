"""Stage 1: circuit (hardware/skidl) -> ERC gates -> schematic + KiCad netlist.

Outputs (all reproducible byte for byte):
- hardware/kicad/open-meter*.kicad_sch  schematic drawn by SKiDL (one sheet per function block)
- hardware/kicad/open-meter.net         KiCad's own netlist of that schematic (the board's input)
- hardware/reports/erc.json             SKiDL and KiCad ERC results, with every waiver and reason
- docs/generated/schematic/             schematic PDF and SVG for the docs

Run: python -m openmetering.netlist
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .cli import guarded
from .errors import DesignError
from .kicad import kicad_cli
from .paths import GENERATED_DOCS, KICAD_DIR, NETLIST, REPORTS_DIR, ROOT, SCHEMATIC
from .repro import write_text_if_changed

SCHEMATIC_DOCS = GENERATED_DOCS / "schematic"

# SKiDL ERC warnings we accept, each with its reason. Anything else fails the build.
ERC_WAIVERS: list[tuple[str, str]] = []

# KiCad schematic ERC violation types we accept, with the reason.
KICAD_ERC_WAIVERS = {
    "lib_symbol_mismatch": "SKiDL embeds its own converted copy of each library symbol; "
    "pins and pin numbers are the library's (the netlist equality test proves it), only "
    "the drawing's formatting differs",
}


@dataclass
class ErcResult:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    waived: list[tuple[str, str]] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def build_circuit():
    """Build the circuit into a fresh SKiDL default circuit; return (circuit, nets)."""
    import builtins

    import skidl
    from omd_circuit import (
        lib,  # noqa: F401, I001  (sets SKiDL's KiCad 9 paths before import)
        top,
    )

    skidl.reset()
    skidl.set_default_tool(skidl.KICAD9)
    # No .log/.erc/_sklib.py side files in the caller's directory: the stage reports itself.
    builtins.default_circuit.no_files = True
    nets = top.build()
    return builtins.default_circuit, nets  # SKiDL keeps its default circuit in builtins


def check_single_pin_nets(circuit) -> None:
    bad = []
    for net in circuit.nets:
        if net.name.startswith("__NOCONNECT"):
            continue
        pins = net.pins
        if len(pins) == 1:
            p = pins[0]
            bad.append(f"net '{net.name}' has a single pin: {p.part.ref} pin {p.num} ({p.name})")
    if bad:
        raise DesignError("dangling nets (connect them or mark the pin NC):\n  " + "\n  ".join(bad))


def run_skidl_erc(circuit) -> ErcResult:
    import skidl

    handler = _Collect()
    skidl.erc_logger.addHandler(handler)
    try:
        circuit.ERC()
    finally:
        skidl.erc_logger.removeHandler(handler)
    res = ErcResult()
    for rec in handler.records:
        msg = rec.getMessage().strip()
        if rec.levelno >= logging.ERROR:
            res.errors.append(msg)
        elif rec.levelno == logging.WARNING:
            reason = next((why for pat, why in ERC_WAIVERS if re.search(pat, msg)), None)
            if reason:
                res.waived.append((msg, reason))
            else:
                res.warnings.append(msg)
    return res


# --- schematic -----------------------------------------------------------------------------
_SCH_DATE = re.compile(r'\(date "[^"]*"\)')
_BARE_UUID = re.compile(r"\(uuid ([0-9a-fA-F-]+)\)")
_BARE_TEXT = re.compile(r'\(text ([^"\s()][^\s()]*)')


def normalise_schematic(text: str) -> str:
    """Quote what SKiDL leaves bare (other readers than KiCad reject it) and drop the date."""
    text = _SCH_DATE.sub('(date "")', text)
    text = _BARE_UUID.sub(r'(uuid "\1")', text)
    text = _BARE_TEXT.sub(r'(text "\1"', text)
    return text


def write_schematic(circuit, out_dir: Path) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        circuit.generate_schematic(filepath=tmp, top_name="open-meter", mode="labels")
        files = sorted(Path(tmp).glob("*.kicad_sch"))
        if not files:
            raise DesignError("SKiDL wrote no schematic")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for f in files:
            dest = out_dir / f.name
            write_text_if_changed(dest, normalise_schematic(f.read_text()))
            written.append(dest)
    for stale in out_dir.glob("open-meter*.kicad_sch"):
        if stale not in written:
            stale.unlink()
    return written


def export_kicad_netlist(schematic: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "k.net"
        kicad_cli("sch", "export", "netlist", "--format", "kicadsexpr", "-o", str(raw),
                  schematic.name, cwd=schematic.parent)
        text = raw.read_text()
    # The source path is absolute: keep it relative to the repository.
    text = re.sub(r'\(source "[^"]*"\)', f'(source "{SCHEMATIC.relative_to(ROOT)}")', text)
    write_text_if_changed(out, text)


def run_kicad_erc(schematic: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rpt = Path(tmp) / "erc.json"
        kicad_cli("sch", "erc", "--severity-all", "--format", "json", "-o", str(rpt),
                  schematic.name, cwd=schematic.parent)
        data = json.loads(rpt.read_text())
    counted, waived = [], {}
    for sheet in data.get("sheets", []):
        for v in sheet.get("violations", []):
            kind = v.get("type", "")
            if kind in KICAD_ERC_WAIVERS:
                waived[kind] = waived.get(kind, 0) + 1
                continue
            items = "; ".join(i.get("description", "") for i in v.get("items", []))
            counted.append(f"{sheet.get('path', '/')}: [{kind}] {v.get('description', '')} "
                           f"({v.get('severity', '')}) {items}")
    return {"violations": sorted(counted),
            "waived": {k: {"count": n, "reason": KICAD_ERC_WAIVERS[k]}
                       for k, n in sorted(waived.items())}}


def export_schematic_docs(schematic: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    kicad_cli("sch", "export", "pdf", "-o", str(out_dir / "open-meter-schematic.pdf"),
              schematic.name, cwd=schematic.parent)
    with tempfile.TemporaryDirectory() as tmp:
        kicad_cli("sch", "export", "svg", "-o", tmp, schematic.name, cwd=schematic.parent)
        for old in out_dir.glob("*.svg"):
            old.unlink()
        for svg in sorted(Path(tmp).glob("*.svg")):
            shutil.copyfile(svg, out_dir / svg.name)


def build(kicad_dir: Path = KICAD_DIR, reports_dir: Path = REPORTS_DIR,
          docs_dir: Path | None = SCHEMATIC_DOCS, log=print) -> dict:
    circuit, _nets = build_circuit()
    check_single_pin_nets(circuit)
    erc = run_skidl_erc(circuit)
    for msg, why in erc.waived:
        log(f"SKiDL ERC waived: {msg}  (reason: {why})")
    if erc.errors or erc.warnings:
        raise DesignError("SKiDL ERC failed:\n  " + "\n  ".join(erc.errors + erc.warnings))

    write_schematic(circuit, kicad_dir)
    # KiCad reads the project file (.kicad_pro, the board's net classes and rule severities)
    # beside a schematic: work on a copy of the sheets alone, so every output here is a
    # function of the circuit only.
    with tempfile.TemporaryDirectory() as tmp:
        for sheet in kicad_dir.glob("open-meter*.kicad_sch"):
            shutil.copyfile(sheet, Path(tmp) / sheet.name)
        schematic = Path(tmp) / SCHEMATIC.name
        kerc = run_kicad_erc(schematic)
        if kerc["violations"]:
            raise DesignError("KiCad schematic ERC failed:\n  " + "\n  ".join(kerc["violations"]))
        netlist = kicad_dir / NETLIST.name
        export_kicad_netlist(schematic, netlist)
        if docs_dir is not None:
            export_schematic_docs(schematic, docs_dir)

    report = {
        "parts": len([p for p in circuit.parts if not p.ref.startswith("#")]),
        "nets": len([n for n in circuit.nets if not n.name.startswith("__NOCONNECT")]),
        "skidl_erc": {"errors": erc.errors, "warnings": erc.warnings,
                      "waived": [{"message": m, "reason": r} for m, r in erc.waived]},
        "kicad_erc": kerc,
    }
    reports_dir.mkdir(parents=True, exist_ok=True)
    write_text_if_changed(reports_dir / "erc.json", json.dumps(report, indent=2) + "\n")
    log(f"netlist: {netlist.relative_to(ROOT) if netlist.is_relative_to(ROOT) else netlist} "
        f"({report['parts']} parts, {report['nets']} nets); SKiDL ERC clean; KiCad ERC clean "
        f"({sum(w['count'] for w in kerc['waived'].values())} waived)")
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kicad-dir", type=Path, default=KICAD_DIR)
    ap.add_argument("--reports-dir", type=Path, default=REPORTS_DIR)
    ap.add_argument("--no-docs", action="store_true", help="skip the schematic PDF/SVG")
    args = ap.parse_args(argv)
    return guarded(build, args.kicad_dir, args.reports_dir, None if args.no_docs else SCHEMATIC_DOCS)


if __name__ == "__main__":
    sys.exit(main())
