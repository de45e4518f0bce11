"""Check the firmware pin map against the board's KiCad netlist.

    python -m firmware.tools.pincheck [hardware/kicad/open-meter.net] [--pinmap firmware/pinmap.py]

The firmware-side entry to the project's one pin rule set (`openmetering.pins`, which the
design assertions of `make` also run): every pin-map signal must be a net that reaches the
ESP32-S3-WROOM-1 (U1) on the pad of its GPIO and the parts it is meant for (the OV2640 FPC at
the right contact for camera lines); analog inputs must be ADC1 channels; flash/PSRAM, USB
and strapping pins must not be misused; no GPIO twice. Each problem names the signal, GPIO
and pad it concerns; exit status 1 if any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openmetering import pins
from openmetering.errors import DesignError, guarded
from openmetering.kicadnet import read_netlist
from openmetering.paths import project


def check(pinmap_path: Path | None = None, netlist_path: Path | None = None) -> list[pins.Finding]:
    paths = project()
    pm = pins.load_pinmap(Path(pinmap_path or paths.pinmap))
    return pins.check(pm, read_netlist(Path(netlist_path or paths.netlist)))


def _report(pinmap_path: Path, netlist_path: Path) -> int:
    found = check(pinmap_path, netlist_path)
    for f in found:
        print("PIN ERROR:", f)
    if found:
        raise DesignError(f"{len(found)} pin map problem(s) against {netlist_path}")
    print(f"pin map OK against {netlist_path}")
    return 0


def main(argv=None) -> int:
    paths = project()
    ap = argparse.ArgumentParser(description="check firmware/pinmap.py against the netlist")
    ap.add_argument("netlist", nargs="?", type=Path, default=paths.netlist)
    ap.add_argument("--pinmap", type=Path, default=paths.pinmap)
    a = ap.parse_args(argv)
    return guarded(_report, a.pinmap, a.netlist)


if __name__ == "__main__":
    sys.exit(main())
