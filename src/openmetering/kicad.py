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

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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


def footprint_lib_dir(lib: str, paths: ProjectPaths | None = None) -> Path:
    """The folder of footprint library `lib`: the project's own (hardware/footprints, for
    variants KiCad's library lacks) before KiCad's."""
    own = (paths or project()).hardware / "footprints" / f"{lib}.pretty"
    return own if own.is_dir() else FOOTPRINT_DIR / f"{lib}.pretty"
TAIL = 3000  # characters of a failed program's output kept in the error


def libfaketime() -> Path:
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        raise ToolError("libfaketime missing: install Debian's 'faketime' (scripts/setup.sh)")
    return found[0]


_EMPTY_SCH = '(kicad_sch (version 20250114) (generator "eeschema") (paper "A4"))\n'
_EMPTY_PCB = '(kicad_pcb (version 20241229) (generator "pcbnew"))\n'


def config_home(paths: ProjectPaths | None = None) -> Path:
    """The private KiCad configuration home, with KiCad's stock library tables in it.

    KiCad writes its settings files there on first use. Several KiCad programs run side by
    side, and two of them creating the same file at once can read each other's half-written
    JSON: so the first caller (under a lock, across processes) lets KiCad write them all
    once, from empty files, before any real work."""
    home = (paths or project()).kicad_config
    versioned = home / VERSION_DIR
    ready = versioned / ".ready"
    if ready.exists():
        return home
    versioned.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():  # another process did it while we waited
            return home
        for table in ("sym-lib-table", "fp-lib-table"):
            src = TEMPLATE_DIR / table
            if not src.is_file():
                raise ToolError(f"{src} missing: install KiCad 9 (scripts/setup.sh)")
            shutil.copyfile(src, versioned / table)
        environment = _frozen(home)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "e.kicad_sch").write_text(_EMPTY_SCH)
            (work / "e.kicad_pcb").write_text(_EMPTY_PCB)
            for args in (("sch", "export", "netlist", "-o", "e.net", "e.kicad_sch"),
                         ("pcb", "export", "pos", "-o", "e.pos", "e.kicad_pcb"),
                         ("pcb", "render", "-o", "e.png", "e.kicad_pcb")):
                run(["kicad-cli", *args], what="KiCad settings set-up", cwd=work,
                    env=environment)
        ready.write_text("")
    return home


def _frozen(home: Path) -> dict:
    out = dict(os.environ)
    out.update(LIBRARY_VARS)
    out.update({
        "LD_PRELOAD": str(libfaketime()),
        "FAKETIME": clock.FAKETIME,
        # timeouts and progress inside KiCad keep a real monotonic clock
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": "UTC",
        "KICAD_CONFIG_HOME": str(home),
        "PYTHONHASHSEED": "0",
    })
    return out


def env(paths: ProjectPaths | None = None, extra: Mapping[str, str] | None = None) -> dict:
    """The environment of every KiCad call."""
    out = _frozen(config_home(paths))
    if extra:
        out.update(extra)
    return out


def unfrozen_env(home: Path, extra: Mapping[str, str] | None = None) -> dict:
    """KiCad's library variables and the configuration home `home`, but a running clock:
    for tools that are timed, not compared (KiBot in the build benchmark). KiAuto waits with
    time.sleep, which fails with EINVAL under the frozen clock (libfaketime 0.9.10 turns the
    absolute monotonic deadline of clock_nanosleep into an invalid one)."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")
           and k != "LD_PRELOAD"}
    out.update(LIBRARY_VARS)
    out.update({"KICAD_CONFIG_HOME": str(home), "TZ": "UTC", "PYTHONHASHSEED": "0"})
    out.update(extra or {})
    return out


def jobs() -> int:
    """How many programs to run at once: one per core."""
    return os.cpu_count() or 1


def pool() -> ThreadPoolExecutor:
    """Threads that each wait on one program, one per core: independent KiCad calls of a
    stage run side by side."""
    return ThreadPoolExecutor(max_workers=jobs())


def concurrently(*calls: Callable) -> list:
    """Run independent calls (each one or more programs) side by side; their results in
    order. The first failure is raised once the others have finished."""
    with pool() as p:
        futures = [p.submit(c) for c in calls]
        return [f.result() for f in futures]


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


def stream(argv: Sequence[str], *, what: str, cwd: Path | None = None,
           env: Mapping[str, str] | None = None, on_line=print) -> int:
    """Run a program, handing each line of its output (stdout and stderr together) to
    `on_line` as it comes; returns the exit status."""
    exe = argv[0]
    if os.sep not in exe and shutil.which(exe) is None:
        raise ToolError(f"{what}: '{exe}' not found on PATH (scripts/setup.sh installs it)")
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", bufsize=1)
    except OSError as e:
        raise ToolError(f"{what}: cannot run {exe}: {e.strerror}") from None
    with proc:
        for line in proc.stdout:
            on_line(line.rstrip("\n"))
    return proc.returncode


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
