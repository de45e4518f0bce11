"""Assemble what goes onto the device: firmware/*.py plus contract/*.json (copied, not typed).

    python -m firmware.tools.bundle [--out build/firmware-bundle] [--mpy]
    mpremote connect /dev/ttyACM0 cp -r build/firmware-bundle/. :

--mpy compiles every module with mpy-cross -march=xtensawin (smaller, faster import);
main.py stays source because MicroPython only runs main.py, not main.mpy.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
CONTRACT = ROOT / "contract"
CONTRACT_FILES = ("reading.schema.json", "homeassistant.json", "transport.json",
                  "attestation.json")


def device_modules() -> list[Path]:
    """The modules that run on the ESP32 (host-only tools/ and sim/ stay behind)."""
    return sorted(p for p in FW.glob("*.py"))


def mpy_cross() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    return str(exe) if exe.exists() else "mpy-cross"


def build(out: Path, mpy: bool = False) -> list[Path]:
    if out.exists():
        shutil.rmtree(out)
    (out / "contract").mkdir(parents=True)
    written = []
    for p in device_modules():
        if mpy and p.name not in ("main.py", "boot.py"):
            dst = out / (p.stem + ".mpy")
            subprocess.run([mpy_cross(), "-march=xtensawin", "-o", str(dst), str(p)], check=True)
        else:
            dst = out / p.name
            shutil.copy2(p, dst)
        written.append(dst)
    for name in CONTRACT_FILES:
        dst = out / "contract" / name
        shutil.copy2(CONTRACT / name, dst)
        written.append(dst)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "build" / "firmware-bundle"))
    ap.add_argument("--mpy", action="store_true")
    a = ap.parse_args(argv)
    files = build(Path(a.out), a.mpy)
    print(f"{len(files)} files in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
