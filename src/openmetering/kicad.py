"""The one way the pipeline runs external programs, KiCad above all.

Every KiCad call (kicad-cli, and pcbnew scripts in a child Python: the board builder, KiKit,
the iBoM, board readers) gets the same environment:
- a frozen clock (libfaketime, `clock.FAKETIME`), since KiCad stamps dates and has no flag
  against it;
- KiCad's library variables, the same ones SKiDL reads;
- a private configuration home (`ProjectPaths.kicad_config`) holding only KiCad's stock
  library tables, so a user's colour theme or libraries cannot change a render or an ERC;
- a fixed hash seed (KiKit walks sets of net names).

pcbnew scripts run in this interpreter (`sys.executable`): the project venv, which sees the
system's pcbnew through its system site-packages and also has numpy, KiKit and this package.

Failures raise `ToolError` with the command and the end of its output. Other programs
(PlantUML, mkdocs, freeroute, forge, slither) go through `run` for the same error dialect;
servers that run beside the caller (anvil) start with `spawn` and end with `stop`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import clock
from .errors import ToolError, ToolTimeout
from .paths import ProjectPaths, project

SYMBOL_DIR = Path("/usr/share/kicad/symbols")
FOOTPRINT_DIR = Path("/usr/share/kicad/footprints")
TEMPLATE_DIR = Path("/usr/share/kicad/template")
VERSION_DIR = "9.0"  # KiCad appends its major version to the configuration home
LIBRARY_VARS = {"KICAD9_SYMBOL_DIR": str(SYMBOL_DIR), "KICAD9_FOOTPRINT_DIR": str(FOOTPRINT_DIR)}
PYTHON = sys.executable
TAIL = 3000  # characters of a failed program's output kept in the error


def libfaketime() -> Path:
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        raise ToolError("libfaketime missing: install Debian's 'faketime' (scripts/setup.sh)")
    return found[0]


def config_home(paths: ProjectPaths | None = None) -> Path:
    """The private KiCad configuration home, with KiCad's stock library tables in it."""
    home = (paths or project()).kicad_config
    versioned = home / VERSION_DIR
    versioned.mkdir(parents=True, exist_ok=True)
    for table in ("sym-lib-table", "fp-lib-table"):
        dest = versioned / table
        if not dest.exists():
            src = TEMPLATE_DIR / table
            if not src.is_file():
                raise ToolError(f"{src} missing: install KiCad 9 (scripts/setup.sh)")
            tmp = dest.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dest)
    return home


def env(paths: ProjectPaths | None = None, extra: Mapping[str, str] | None = None) -> dict:
    """The environment of every KiCad call."""
    out = dict(os.environ)
    out.update(LIBRARY_VARS)
    out.update({
        "LD_PRELOAD": str(libfaketime()),
        "FAKETIME": clock.FAKETIME,
        # timeouts and progress inside KiCad keep a real monotonic clock
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": "UTC",
        "KICAD_CONFIG_HOME": str(config_home(paths)),
        "PYTHONHASHSEED": "0",
    })
    if extra:
        out.update(extra)
    return out


def _tail(proc_out: str | bytes | None) -> str:
    if isinstance(proc_out, bytes):
        proc_out = proc_out.decode(errors="replace")
    return (proc_out or "")[-TAIL:]


def run(argv: Sequence[str], *, what: str, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, check: bool = True, capture: bool = True,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a program; with check, a non-zero exit raises ToolError naming `what`."""
    exe = argv[0]
    if os.sep not in exe and shutil.which(exe) is None:
        raise ToolError(f"{what}: '{exe}' not found on PATH (scripts/setup.sh installs it)")
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                              capture_output=capture, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolTimeout(f"{what}: stopped after {timeout:g} s") from None
    except OSError as e:
        raise ToolError(f"{what}: cannot run {exe}: {e.strerror}") from None
    if check and proc.returncode != 0:
        raise ToolError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
                        f"{_tail(proc.stdout)}{_tail(proc.stderr)}")
    return proc


def cli(*args: str | Path, cwd: Path | None = None, check: bool = True,
        paths: ProjectPaths | None = None) -> subprocess.CompletedProcess:
    """`kicad-cli ARGS` under the frozen environment."""
    return run(["kicad-cli", *map(str, args)], what=f"kicad-cli {args[0]} {args[1]}"
               if len(args) > 1 else "kicad-cli", cwd=cwd, env=env(paths), check=check)


def python(*args: str | Path, code: str | None = None, module: str | None = None,
           what: str, cwd: Path | None = None, extra_env: Mapping[str, str] | None = None,
           check: bool = True, paths: ProjectPaths | None = None,
           capture: bool = True) -> subprocess.CompletedProcess:
    """A pcbnew script (`code`) or module (`python -m module`) in a child of this interpreter,
    under the frozen environment: pcbnew keeps global state that must not leak between
    boards, and KiCad's clock is only frozen in a child."""
    if (code is None) == (module is None):
        raise ValueError("give exactly one of code and module")
    head = ["-c", code] if code is not None else ["-m", module]
    paths = paths or project()
    return run([PYTHON, *head, *map(str, args)], what=what, cwd=cwd or paths.root,
               env=env(paths, extra_env), check=check, capture=capture)


def pcbnew_json(code: str, *args: str | Path, what: str,
                paths: ProjectPaths | None = None):
    """Run pcbnew code that prints one JSON document on its last line; return it parsed."""
    proc = python(*args, code=code, what=what, paths=paths)
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise ToolError(f"{what}: no JSON result from the pcbnew script:\n"
                        f"{_tail(proc.stdout)}{_tail(proc.stderr)}") from None


def spawn(argv: Sequence[str], *, what: str, log: Path | None = None,
          cwd: Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a program that keeps running (a local chain node); its output goes to `log`."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(list(map(str, argv)), cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT,
                                env=dict(env) if env is not None else None)
    except OSError as e:
        raise ToolError(f"{what}: cannot run {argv[0]}: {e.strerror}") from None
    finally:
        if log is not None:
            out.close()  # the child holds its own descriptor


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """End a spawned program the way Ctrl-C would (it may save state), killing it if it
    does not exit within `timeout`."""
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
