"""The circuit stage: circuit (found through [tool.openmetering]) -> ERC gates -> schematic +
KiCad netlist.

Outputs (all reproducible byte for byte):
- hardware/kicad/open-meter*.kicad_sch  schematic drawn by SKiDL (one sheet per function block)
- hardware/kicad/open-meter.net         KiCad's own netlist of that schematic (the board's input)
- hardware/reports/erc.json             SKiDL and KiCad ERC results, with every waiver and reason
- docs/generated/schematic/             schematic PDF and SVG for the docs
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import circuit as design
from . import kicad
from .errors import CheckFailed, DesignError
from .paths import ProjectPaths, project
from .repro import write_text_if_changed

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
        raise CheckFailed("dangling nets (connect them or mark the pin NC):\n  " + "\n  ".join(bad))


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


def export_kicad_netlist(schematic: Path, out: Path, source: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "k.net"
        kicad.cli("sch", "export", "netlist", "--format", "kicadsexpr", "-o", raw,
                  schematic.name, cwd=schematic.parent)
        text = raw.read_text()
    # The source path is absolute (and here a temporary copy): name the repository's file.
    text = re.sub(r'\(source "[^"]*"\)', f'(source "{source}")', text)
    write_text_if_changed(out, text)


def run_kicad_erc(schematic: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rpt = Path(tmp) / "erc.json"
        kicad.cli("sch", "erc", "--severity-all", "--format", "json", "-o", rpt,
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
    kicad.cli("sch", "export", "pdf", "-o", out_dir / f"{schematic.stem}-schematic.pdf",
              schematic.name, cwd=schematic.parent)
    with tempfile.TemporaryDirectory() as tmp:
        kicad.cli("sch", "export", "svg", "-o", tmp, schematic.name, cwd=schematic.parent)
        for old in out_dir.glob("*.svg"):
            old.unlink()
        for svg in sorted(Path(tmp).glob("*.svg")):
            shutil.copyfile(svg, out_dir / svg.name)


def build(paths: ProjectPaths | None = None, docs: bool = True, log=print) -> dict:
    paths = paths or project()
    circuit, _nets = design.build(paths)
    check_single_pin_nets(circuit)
    erc = run_skidl_erc(circuit)
    for msg, why in erc.waived:
        log(f"SKiDL ERC waived: {msg}  (reason: {why})")
    if erc.errors or erc.warnings:
        raise CheckFailed("SKiDL ERC failed:\n  " + "\n  ".join(erc.errors + erc.warnings))

    write_schematic(circuit, paths.kicad)
    # KiCad reads the project file (.kicad_pro, the board's net classes and rule severities)
    # beside a schematic: work on a copy of the sheets alone, so every output here is a
    # function of the circuit only.
    with tempfile.TemporaryDirectory() as tmp:
        for sheet in paths.kicad.glob(f"{paths.name}*.kicad_sch"):
            shutil.copyfile(sheet, Path(tmp) / sheet.name)
        schematic = Path(tmp) / paths.schematic.name
        kerc = run_kicad_erc(schematic)
        if kerc["violations"]:
            raise CheckFailed("KiCad schematic ERC failed:\n  " + "\n  ".join(kerc["violations"]))
        canonical = ProjectPaths.at(paths.root)
        export_kicad_netlist(schematic, paths.netlist, canonical.rel(canonical.schematic))
        if docs:
            export_schematic_docs(schematic, paths.schematic_pictures)

    report = {
        "parts": len([p for p in circuit.parts if not p.ref.startswith("#")]),
        "nets": len([n for n in circuit.nets if not n.name.startswith("__NOCONNECT")]),
        "skidl_erc": {"errors": erc.errors, "warnings": erc.warnings,
                      "waived": [{"message": m, "reason": r} for m, r in erc.waived]},
        "kicad_erc": kerc,
    }
    write_text_if_changed(paths.reports / "erc.json", json.dumps(report, indent=2) + "\n")
    log(f"netlist: {paths.rel(paths.netlist)} ({report['parts']} parts, {report['nets']} nets); "
        f"SKiDL ERC clean; KiCad ERC clean "
        f"({sum(w['count'] for w in kerc['waived'].values())} waived)")
    return report
