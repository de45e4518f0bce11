"""Open Metering Device tooling: one module per pipeline stage."""

import os

# SKiDL reads its KiCad library paths when first imported, wherever that happens.
os.environ.setdefault("KICAD9_SYMBOL_DIR", "/usr/share/kicad/symbols")
os.environ.setdefault("KICAD9_FOOTPRINT_DIR", "/usr/share/kicad/footprints")
