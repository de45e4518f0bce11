"""Running KiCad's command-line tools reproducibly.

KiCad stamps dates into netlists, Gerbers, SVGs and PDFs and has no flag against it; under
libfaketime its clock is frozen, so two runs write the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import DesignError
from .paths import FROZEN_TIME, LIBFAKETIME


def frozen_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    if not LIBFAKETIME.exists():
        raise DesignError(f"{LIBFAKETIME} missing: install Debian's 'faketime' (scripts/setup.sh)")
    env["LD_PRELOAD"] = str(LIBFAKETIME)
    env["FAKETIME"] = FROZEN_TIME
    env["TZ"] = "UTC"
    env["KICAD9_SYMBOL_DIR"] = "/usr/share/kicad/symbols"
    env["KICAD9_FOOTPRINT_DIR"] = "/usr/share/kicad/footprints"
    if extra:
        env.update(extra)
    return env


def kicad_cli(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("kicad-cli")
    if not exe:
        raise DesignError("kicad-cli not found: install KiCad 9 (scripts/setup.sh)")
    proc = subprocess.run([exe, *args], cwd=cwd, env=frozen_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise DesignError(f"kicad-cli {' '.join(args)} failed ({proc.returncode}):\n"
                          f"{proc.stdout}{proc.stderr}")
    return proc
