"""The circuit stage: circuit (found through [tool.openmetering]) -> ERC gates -> schematic +
KiCad netlist.

Outputs (all reproducible byte for byte):
- hardware/kicad/open-meter*.kicad_sch  schematic drawn by openmetering.schematic (one sheet per
                                        function block, a top sheet with the block diagram)
- hardware/kicad/open-meter.net         KiCad's own netlist of that schematic (the board's input)
- hardware/reports/erc.json             SKiDL and KiCad ERC results, with every waiver and reason
- hardware/reports/schematic.json       the drawing's figures against its rules (fill per sheet,
                                        closest texts, decoupling distances)
- docs/generated/schematic/             schematic PDF and SVG for the docs
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import circuit as design
from . import kicad, sexpr, stamps
from .errors import CheckFailed
from .paths import ProjectPaths, project
from .repro import sync_dir, write_text_if_changed

# SKiDL ERC warnings we accept, each with its reason. Anything else fails the build.
ERC_WAIVERS: list[tuple[str, str]] = []

# KiCad schematic ERC violation types we accept, with the reason. The sheets embed the
# library's own symbols (so no lib_symbol_mismatch) and flag every driven net.
KICAD_ERC_WAIVERS: dict[str, str] = {
    "lib_symbol_issues": "the ATM90E32AS comes from the project's own library "
                         "(hardware/symbols/OpenMeter.kicad_sym, embedded in the sheet), which "
                         "ERC on a copy of the sheets without a project file cannot resolve",
    "footprint_link_issues": "the same for the project's footprint variants "
                             "(hardware/footprints/OpenMeter.pretty); the catalogue check and "
                             "the board stage load them from there",
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
def kept_sheets(out_dir: Path, name: str) -> dict:
    """The sheets in out_dir that are as the record beside them says they were drawn
    (project.Drawn by file name): a sheet edited by hand, or a record that does not parse,
    keeps nothing."""
    from .schematic.project import Drawn, record_name

    try:
        record = json.loads((out_dir / record_name(name)).read_text(encoding="utf-8"))
        entries = record["sheets"].items()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    kept = {}
    for fname, entry in entries:
        try:
            text = (out_dir / fname).read_text(encoding="utf-8")
            if hashlib.sha256(text.encode()).hexdigest() == entry["sha256"]:
                kept[fname] = Drawn(str(entry["key"]), int(entry["power_symbols"]), text)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return kept


def drawing_code(paths: ProjectPaths) -> str:
    """The digest of the schematic drawing's source (and of our modules it imports)."""
    files = stamps.hash_files(paths.root, stamps.code_closure(paths.root, ["openmetering.schematic"]))
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def write_schematic(circuit, paths: ProjectPaths, redraw: bool = False, log=None) -> list[Path]:
    """Draw the circuit (openmetering.schematic) into paths.kicad: one sheet per function
    block and the top sheet, and the record of what each was drawn from; a sheet whose inputs
    are those recorded is kept unless `redraw`. Sheets of blocks that no longer exist are
    removed."""
    from .schematic import draw

    out_dir, name = paths.kicad, paths.name
    kept = {} if redraw else kept_sheets(out_dir, name)
    files = draw(circuit, name, kept=kept, code=drawing_code(paths), log=log)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in sorted(files.items()):
        dest = out_dir / fname
        write_text_if_changed(dest, text)
        written.append(dest)
    for stale in out_dir.glob(f"{name}*.kicad_sch"):
        if stale not in written:
            stale.unlink()
    return written


def export_kicad_netlist(schematic: Path, out: Path) -> None:
    """KiCad's own netlist of the schematic (its source path is the caller's to fix)."""
    kicad.cli("sch", "export", "netlist", "--format", "kicadsexpr", "-o", out,
              schematic.name, cwd=schematic.parent)


def write_netlist(raw: Path, out: Path, source: str) -> None:
    # The source path is absolute (and here a temporary copy): name the repository's file.
    text = re.sub(r'\(source "[^"]*"\)', f'(source "{source}")', raw.read_text())
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


def export_schematic_pdf(schematic: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    kicad.cli("sch", "export", "pdf", "-o", out_dir / f"{schematic.stem}-schematic.pdf",
              schematic.name, cwd=schematic.parent)


def export_schematic_svg(schematic: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    kicad.cli("sch", "export", "svg", "-o", out_dir, schematic.name, cwd=schematic.parent)


SCREENSHOT_DPI = 200  # 1.27 mm text is 10 px tall: readable at 100 % zoom


def screenshot_sheets(top: Path) -> list[tuple[str, int]]:
    """(sheet file stem, PDF page) of the sheets the docs show as pictures: the top sheet,
    the block most others talk to (most hierarchical labels) and the busiest other block
    (most parts)."""
    tree = sexpr.parse(top.read_text(), str(top))
    pages = []
    for box in sexpr.children(tree, "sheet"):
        fname = next(p[2] for p in sexpr.children(box, "property") if p[1] == "Sheetfile")
        page = sexpr.value(sexpr.child(sexpr.child(sexpr.child(box, "instances"), "project"),
                                       "path"), "page")
        sub = sexpr.parse((top.parent / fname).read_text(), fname)
        labels = len(sexpr.children(sub, "hierarchical_label"))
        parts = sum(1 for s in sexpr.children(sub, "symbol")
                    if not sexpr.value(s, "lib_id").startswith("power:"))
        pages.append((Path(fname).stem, int(page), labels, parts))
    if not pages:
        return [(top.stem, 1)]
    hub = max(pages, key=lambda p: (p[2], -p[1]))
    busy = max((p for p in pages if p is not hub), key=lambda p: (p[3], -p[1]), default=None)
    return [(top.stem, 1), (hub[0], hub[1])] + ([(busy[0], busy[1])] if busy else [])


def export_screenshots(schematic: Path, staged: Path) -> None:
    """PNG pictures (the staged PDF rasterised by poppler at SCREENSHOT_DPI) of the sheets the
    hardware page shows, side by side."""
    pdf = staged / f"{schematic.stem}-schematic.pdf"

    def shot(stem: str, page: int) -> None:
        name = schematic.stem + stem.removeprefix(schematic.stem).replace("_", "-", 1)
        kicad.run(["pdftoppm", "-png", "-r", str(SCREENSHOT_DPI), "-f", str(page), "-l",
                   str(page), "-singlefile", str(pdf), str(staged / name)],
                  what=f"pdftoppm (sheet {stem})")

    kicad.concurrently(*(lambda s=stem, p=page: shot(s, p)
                         for stem, page in screenshot_sheets(schematic)))


def build(paths: ProjectPaths | None = None, docs: bool = True, redraw: bool = False,
          log=print) -> dict:
    paths = paths or project()
    circuit, _nets = design.build(paths)
    check_single_pin_nets(circuit)
    erc = run_skidl_erc(circuit)
    for msg, why in erc.waived:
        log(f"SKiDL ERC waived: {msg}  (reason: {why})")
    if erc.errors or erc.warnings:
        raise CheckFailed("SKiDL ERC failed:\n  " + "\n  ".join(erc.errors + erc.warnings))

    write_schematic(circuit, paths, redraw=redraw, log=log)
    # KiCad reads the project file (.kicad_pro, the board's net classes and rule severities)
    # beside a schematic: work on a copy of the sheets alone, so every output here is a
    # function of the circuit only.
    # ERC, the netlist and the pictures are independent KiCad calls: side by side, into a
    # scratch folder; nothing reaches the tree unless ERC passes.
    with tempfile.TemporaryDirectory() as tmp:
        sheets, staged = Path(tmp) / "sheets", Path(tmp) / "pictures"
        sheets.mkdir()
        for sheet in paths.kicad.glob(f"{paths.name}*.kicad_sch"):
            shutil.copyfile(sheet, sheets / sheet.name)
        schematic = sheets / paths.schematic.name
        raw = Path(tmp) / "kicad.net"
        kerc, *_ = kicad.concurrently(
            lambda: run_kicad_erc(schematic),
            lambda: export_kicad_netlist(schematic, raw),
            *([lambda: (export_schematic_pdf(schematic, staged),
                        export_screenshots(schematic, staged)),
               lambda: export_schematic_svg(schematic, staged)] if docs else []))
        if kerc["violations"]:
            raise CheckFailed("KiCad schematic ERC failed:\n  " + "\n  ".join(kerc["violations"]))
        canonical = ProjectPaths.at(paths.root)
        write_netlist(raw, paths.netlist, canonical.rel(canonical.schematic))
        # the drawing's own rules (text clear of text, bodies and wires; paper and fill;
        # decoupling wired beside its pin; every net named), read back from the files
        from .schematic import rules

        drawn = rules.check(sorted(sheets.glob(f"{paths.name}*.kicad_sch")), paths.netlist)
        if drawn["violations"]:
            raise CheckFailed("schematic rules failed:\n  " + "\n  ".join(drawn["violations"]))
        write_text_if_changed(paths.reports / "schematic.json",
                              json.dumps(rules.summary(drawn), indent=2) + "\n")
        if docs:
            sync_dir(staged, paths.schematic_pictures)  # unchanged files left alone, stale ones gone

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
