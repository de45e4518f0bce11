"""The whole build as stages that declare their inputs and outputs, run only when stale.

`omd build [STAGE ...]` brings the named stages (default: all) and everything upstream of
them up to date. Each stage below declares, in the manner of KiBot's outputs or a DVC
stage, what it reads (files and folders, the code it runs, tool versions) and what it
writes; `stamps` records their content hashes after a run, and a stage whose inputs and
outputs still hash as recorded is skipped without starting a process. Because upstream
outputs are downstream inputs, a changed input re-runs only the stages it reaches, and a
stage that rewrites identical bytes (a comment edit in the circuit) stops the wave there.

Stamps live in `stamps/STAGE.json` and are committed with the outputs they describe, so a
fresh clone's first `make` is a no-op as well; a stage whose outputs are not committed (the
built site) keeps its stamp under `build/stamps/`, so a fresh clone builds it. `--force`
runs every selected stage regardless (the check mode of the tests: committed outputs must
equal a forced regeneration); `--from-scratch` also makes the board route from scratch
instead of updating the committed routes (see hardware/kicad/README.md).

Stale stages run as child processes, up to one per core at a time, as soon as the stages
they depend on are done; their output is passed through line by line, prefixed with the
stage's name.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from . import kicad, stamps
from .errors import CheckFailed, DesignError
from .paths import ProjectPaths, project

LOCK = "requirements.lock"  # every Python package's version: an input of every stage


@dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple[str, ...]  # after `python`: the command that runs the stage
    inputs: tuple[str, ...]  # root-relative files, folders or globs
    outputs: tuple[str, ...]  # the same, for what it writes
    after: tuple[str, ...] = ()  # stages whose outputs it reads
    code: tuple[str, ...] = ()  # modules whose source (and our modules they import) count
    tools: tuple[str, ...] = ()  # Debian packages whose version counts ("python": this one)
    committed: bool = True  # outputs (and so the stamp) are in git
    force_args: tuple[str, ...] = ()  # added when forced
    scratch_args: tuple[str, ...] = ()  # added for --from-scratch
    quiet: bool = False  # its output is a report it also writes: shown only when it fails
    dynamic_inputs: Callable[[ProjectPaths], Iterable[Path]] | None = field(default=None,
                                                                           compare=False)
    # inputs that are not whole files: name -> digest of the part of a file the stage reads
    digests: Callable[[ProjectPaths], dict[str, str]] | None = field(default=None,
                                                                     compare=False)
    # (inputs, args): when only these inputs changed since the stamp, the stage is told so
    # with args and the stamp's path, and may keep the outputs the stamp proves current
    narrow: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def stamp_path(self, paths: ProjectPaths) -> Path:
        return (paths.stamps if self.committed else paths.build / "stamps") / f"{self.name}.json"


def _board_pictures(paths: ProjectPaths) -> dict[str, str]:
    """The renders show the board, not its hidden fields (value, MPN, LCSC...)."""
    from . import sexpr
    from .board import facts

    digest = stamps.by_content(paths.root, "visible-digest", paths.pcb.read_bytes(),
                               lambda: facts.visible_digest(paths.pcb),
                               [Path(facts.__file__), Path(sexpr.__file__)])
    return {f"visible:{paths.rel(paths.pcb)}": digest}


def _docs_inputs(paths: ProjectPaths) -> list[Path]:
    """What the docs pages declare they read (the docs package holds that list)."""
    from .docs import site

    return [i.path(paths) for i in site.inputs() if i.key != "plantuml"]


OMD = ("-m", "openmetering")
KICAD = ("kicad", "python")
SCHEMATIC = "hardware/kicad/open-meter*.kicad_sch"
NETLIST = "hardware/kicad/open-meter.net"
BOARD = ("hardware/kicad/open-meter.kicad_pcb", "hardware/kicad/open-meter.kicad_pro",
         "hardware/kicad/open-meter.kicad_dru")
# the fab stage's inputs that only its assembly files (BOM, placement, the panel board with
# its fields) read, not its Gerbers and drill files: when only they and the board's hidden
# fields changed (its visible content is a digest of its own), the stage keeps the committed
# plots (openmetering.fab)
ASSEMBLY_ONLY = ("hardware/parts.toml", "hardware/board/jlcpcb-rotations.csv", "hardware/bom")

STAGES: tuple[Stage, ...] = (
    Stage("netlist", (*OMD, "netlist"),
          inputs=("hardware/skidl/**/*.py", "hardware/symbols", "hardware/parts.toml", "firmware/pinmap.py",
                  "pyproject.toml"),
          outputs=(SCHEMATIC, "hardware/kicad/open-meter.sheets.json", NETLIST,
                   "hardware/reports/erc.json", "hardware/reports/schematic.json",
                   "docs/generated/schematic"),
          code=("openmetering.netlist",), tools=(*KICAD, "kicad-symbols"), force_args=("--force",)),
    Stage("bom", (*OMD, "bom"), after=("netlist",),
          inputs=(NETLIST, "hardware/parts.toml"), outputs=("hardware/bom",),
          code=("openmetering.bom",), tools=("python",)),
    Stage("assertions", (*OMD, "assertions"), after=("netlist",),
          inputs=(NETLIST, "hardware/parts.toml", "firmware/pinmap.py"),
          outputs=("hardware/reports/assertions.json",),
          code=("openmetering.assertions",), tools=("python",)),
    Stage("board", (*OMD, "board", "build"), after=("netlist",),
          inputs=(NETLIST, "hardware/board/placement.toml", "hardware/board/rules.kicad_dru",
                  "hardware/footprints"),
          outputs=(*BOARD, "hardware/kicad/open-meter.inputs.json",
                   "hardware/kicad/open-meter.route.json"),
          code=("openmetering.board.build",), tools=(*KICAD, "kicad-footprints"),
          force_args=("--force",), scratch_args=("--from-scratch",)),
    Stage("render", (*OMD, "board", "render"), after=("board",),
          inputs=BOARD[1:2], digests=_board_pictures, outputs=("docs/generated/board",),
          code=("openmetering.board.render",), tools=(*KICAD, "kicad-packages3d")),
    Stage("fab", (*OMD, "fab"), after=("board", "bom"),
          inputs=(*BOARD, "hardware/board/panel.json", *ASSEMBLY_ONLY), digests=_board_pictures,
          outputs=("hardware/fab",), code=("openmetering.fab",), tools=KICAD,
          narrow=((BOARD[0], *ASSEMBLY_ONLY), ("--keep-plots",))),
    Stage("esphome", ("-m", "firmware.tools.gen_esphome"),
          inputs=("firmware/*.py", "firmware/tools/gen_esphome.py"),
          outputs=("firmware/esphome/open-meter.yaml",), tools=("python",)),
    Stage("accuracy-chip", ("-m", "firmware.tools.bench_chip", "--out",
                            "docs/generated/accuracy-chip.md"),
          inputs=("firmware/**/*.py",), outputs=("docs/generated/accuracy-chip.md",),
          tools=("python",), quiet=True),
    Stage("vectors", ("-m", "omd_server.attestation", "vectors"),
          inputs=("server/omd_server", "contract/attestation.json", "contract/vectors.json",
                  "pyproject.toml"),
          outputs=("contract/attestation-vectors.json",), tools=("python",)),
    Stage("openapi", ("-m", "omd_server.openapi"), after=("vectors",),
          inputs=("server/omd_server", "contract", "pyproject.toml"),
          outputs=("server/openapi.json",), tools=("python",)),
    # forge build (artifacts in contracts/out, not committed) and the gas measured on them
    Stage("contracts", (*OMD, "chain", "gas-report"), after=("vectors",),
          inputs=("contracts/src", "contracts/script", "contracts/foundry.toml",
                  "contract/attestation-vectors.json", "tools/solc",
                  "tools/node/package-lock.json"),
          outputs=("docs/generated/gas-report.md",), code=("openmetering.chain",),
          tools=("python",), quiet=True),
    Stage("diagrams", (*OMD, "docs", "diagrams"),
          inputs=("docs/diagrams", "tools/node/package-lock.json"),
          outputs=("docs/generated/diagrams",), code=("openmetering.docs.diagrams",),
          tools=("openjdk-17-jre-headless",)),
    Stage("docs", (*OMD, "docs", "generate", "--no-diagrams"),
          after=("netlist", "bom", "assertions", "board", "render", "fab", "accuracy-chip",
                  "openapi", "contracts"),
          inputs=(), dynamic_inputs=_docs_inputs,
          outputs=("docs/generated/include", "docs/generated/ibom"),
          code=("openmetering.docs.site",), tools=KICAD),
    Stage("site", (*OMD, "docs", "build", "--no-generate"), after=("docs", "diagrams"),
          inputs=("docs", "mkdocs.yml", "hardware/fab", "hardware/bom"), outputs=("site",),
          code=("openmetering.docs.hooks",), tools=("python",), committed=False),
)
BY_NAME = {s.name: s for s in STAGES}


def selected(names: Iterable[str], table: Sequence[Stage] = STAGES) -> list[Stage]:
    """The named stages and everything upstream of them, in the table's order."""
    by_name = {s.name: s for s in table}
    want: set[str] = set()
    todo = list(names) or list(by_name)
    while todo:
        n = todo.pop()
        if n not in by_name:
            raise DesignError(f"unknown stage '{n}' (stages: {', '.join(by_name)})")
        if n not in want:
            want.add(n)
            todo += by_name[n].after
    return [s for s in table if s.name in want]


# ---------------------------------------------------------------- what a stage depends on


def input_files(stage: Stage, paths: ProjectPaths) -> list[Path]:
    files = stamps.expand(paths.root, (*stage.inputs, LOCK))
    if stage.dynamic_inputs:
        files += stamps.expand(paths.root, [paths.rel(p) for p in stage.dynamic_inputs(paths)])
    files += stamps.code_closure(paths.root, stage.code)
    return sorted(set(files))


def input_hashes(stage: Stage, paths: ProjectPaths) -> dict[str, str]:
    out = stamps.hash_files(paths.root, input_files(stage, paths))
    out.update({f"tool:{t}": stamps.tool_version(t) for t in stage.tools})
    if stage.digests:
        out.update(stage.digests(paths))
    return out


def output_files(stage: Stage, paths: ProjectPaths) -> list[Path]:
    return stamps.expand(paths.root, stage.outputs)


def status(stage: Stage, paths: ProjectPaths) -> tuple[dict[str, str], list[str]]:
    """(input hashes now, reasons the stage must run: empty when current)."""
    inputs = input_hashes(stage, paths)
    return inputs, stamps.why_stale(paths.root, stamps.Stamp.read(stage.stamp_path(paths)),
                                    inputs)


def narrowed(stage: Stage, paths: ProjectPaths, inputs: dict[str, str]) -> list[str]:
    """The stage's narrow args and its stamp's path when only its narrow inputs changed."""
    old = stamps.Stamp.read(stage.stamp_path(paths))
    if stage.narrow is None or old is None:
        return []
    patterns, args = stage.narrow
    allowed = {paths.rel(f) for f in stamps.expand(paths.root, patterns)}
    diff = {k for k in old.inputs.keys() | inputs.keys() if old.inputs.get(k) != inputs.get(k)}
    return [*args, paths.rel(stage.stamp_path(paths))] if diff <= allowed else []


def record(stage: Stage, paths: ProjectPaths, inputs: dict[str, str]) -> None:
    outputs = stamps.hash_files(paths.root, output_files(stage, paths))
    if not outputs:
        raise CheckFailed(f"stage {stage.name} wrote none of its outputs "
                          f"({', '.join(stage.outputs)})")
    stamps.Stamp(inputs, outputs).write(stage.stamp_path(paths))


# ---------------------------------------------------------------- running


def run(names: Iterable[str] = (), paths: ProjectPaths | None = None, force: bool = False,
        from_scratch: bool = False, jobs: int | None = None, explain: bool = False,
        log=print, table: Sequence[Stage] = STAGES,
        unforced: Iterable[str] = ()) -> dict[str, str]:
    """Bring the selected stages up to date; returns stage -> "current" | "ran".
    force runs them current or not, except the `unforced` ones (they run only if stale)."""
    paths = paths or project()
    unforced = set(unforced)
    todo = selected(names, table)
    jobs = jobs or os.cpu_count() or 1
    result: dict[str, str] = {}
    failed: list[str] = []
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            log(line)

    def forced(stage: Stage) -> bool:
        return force and stage.name not in unforced

    def execute(stage: Stage, inputs: dict[str, str]) -> None:
        argv = [kicad.PYTHON, *stage.argv]
        if forced(stage):
            argv += stage.force_args
        elif stage.narrow:
            argv += narrowed(stage, paths, inputs)
        if from_scratch:
            argv += stage.scratch_args
        t0 = time.perf_counter()
        held: list[str] = []

        def line(text: str) -> None:
            if stage.quiet:
                held.append(text)
            else:
                say(f"[{stage.name}] {text}")

        rc = kicad.stream(argv, what=f"stage {stage.name}", cwd=paths.root,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"), on_line=line)
        if rc != 0:
            for text in held[-40:]:
                say(f"[{stage.name}] {text}")
            raise CheckFailed(f"stage {stage.name} failed (exit {rc})")
        record(stage, paths, inputs)
        say(f"[{stage.name}] done in {time.perf_counter() - t0:.1f} s")

    running: dict[Future, Stage] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while True:
            for stage in todo:
                if stage.name in result or stage in running.values() or failed:
                    continue
                if any(a in {s.name for s in todo} and result.get(a) not in ("current", "ran")
                       for a in stage.after):
                    continue
                inputs, reasons = status(stage, paths)
                if not reasons and not forced(stage):
                    result[stage.name] = "current"
                    if explain:
                        say(f"[{stage.name}] current")
                    continue
                if explain or reasons or forced(stage):
                    say(f"[{stage.name}] runs: "
                        f"{'forced' if forced(stage) else '; '.join(reasons)}")
                running[pool.submit(execute, stage, inputs)] = stage
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                stage = running.pop(fut)
                try:
                    fut.result()
                    result[stage.name] = "ran"
                except DesignError as e:
                    failed.append(stage.name)
                    say(f"[{stage.name}] {e}")
    if failed:
        raise CheckFailed(f"build stopped: {', '.join(failed)} failed")
    ran = [n for n, r in result.items() if r == "ran"]
    log(f"build: {len(ran)} of {len(todo)} stages ran" + (f" ({', '.join(ran)})" if ran else
                                                           ", everything current"))
    return result


def check(paths: ProjectPaths | None = None, log=print,
          table: Sequence[Stage] = STAGES) -> list[str]:
    """Stages whose committed stamp does not describe the tree (exit 1 if any)."""
    paths = paths or project()
    stale = []
    for stage in table:
        if stage.committed:
            _, reasons = status(stage, paths)
            if reasons:
                stale.append(f"{stage.name}: {'; '.join(reasons)}")
    for line in stale:
        log(line)
    if stale:
        raise CheckFailed(f"{len(stale)} stage(s) stale: run `make`")
    log(f"all {sum(s.committed for s in table)} committed stages current")
    return stale


# ---------------------------------------------------------------- scratch copies


def copy_tree(dest: Path, paths: ProjectPaths | None = None) -> ProjectPaths:
    """A copy of the repository's files (what git tracks, and new files it does not
    ignore) at dest, that runs its own code: the tests' forced regeneration and the build
    benchmark change files there, never in the tree."""
    paths = paths or project()
    listed = kicad.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       what="git ls-files", cwd=paths.root).stdout.split("\0")
    for rel in filter(None, listed):
        src = paths.root / rel
        if src.is_symlink():  # a tracked link (contracts/node_modules) stays a link
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).symlink_to(os.readlink(src))
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # tools the set-up installs, shared read-only
    for rel in ("tools/node/node_modules",):
        if (paths.root / rel).exists() and not (dest / rel).exists():
            (dest / rel).symlink_to(paths.root / rel)
    return ProjectPaths.at(dest)


def copy_env(paths: ProjectPaths) -> dict[str, str]:
    """Environment for running a copy's stages with the copy's own code: its packages
    first on the import path (the editable install points at the original tree)."""
    link_dir = paths.build / "pypath"
    link_dir.mkdir(parents=True, exist_ok=True)
    entries = [link_dir, paths.root]
    for name, folder in stamps.packages(paths.root).items():
        if folder.name == name:
            entries.append(folder.parent)
        elif not (link_dir / name).exists():
            (link_dir / name).symlink_to(folder)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, entries)))


def in_copy(argv: list[str], paths: ProjectPaths, what: str, log=None) -> int:
    """`python ARGV` in a copy made by copy_tree, streaming its lines to log."""
    return kicad.stream([sys.executable, *argv], what=what, cwd=paths.root,
                        env=dict(copy_env(paths), PYTHONUNBUFFERED="1"),
                        on_line=log or (lambda _line: None))
