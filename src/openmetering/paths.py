"""Where things live in the repository; every stage finds its inputs and outputs here."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware"
PARTS_TOML = HARDWARE / "parts.toml"
KICAD_DIR = HARDWARE / "kicad"
NETLIST = KICAD_DIR / "open-meter.net"
SCHEMATIC = KICAD_DIR / "open-meter.kicad_sch"
BOARD = KICAD_DIR / "open-meter.kicad_pcb"
BOM_DIR = HARDWARE / "bom"
REPORTS_DIR = HARDWARE / "reports"
GERBER_DIR = HARDWARE / "gerber"
FIRMWARE = ROOT / "firmware"
PINMAP = FIRMWARE / "pinmap.py"
CONTRACT = ROOT / "contract"
DOCS = ROOT / "docs"
GENERATED_DOCS = DOCS / "generated"

KICAD_SYMBOL_DIR = Path("/usr/share/kicad/symbols")
KICAD_FOOTPRINT_DIR = Path("/usr/share/kicad/footprints")
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
# Every KiCad tool that stamps a date runs with this frozen clock (reproducible outputs).
FROZEN_TIME = "2000-01-01 00:00:00"
