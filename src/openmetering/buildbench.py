"""`make bench-build`: the build's wall time with nothing changed, after a one-line change of
the circuit, and against KiBot making the same outputs, side by side in one run.

    python -m openmetering.buildbench [--runs 3] [--no-kibot] [--json FILE]

Everything runs in scratch copies of the repository under build/bench/ (`pipeline.copy_tree`,
which run their own code), never in the tree:

- no-op: `make` on a copy whose committed outputs and stamps are current, as a fresh clone
  is; every file's bytes and time are compared before and after (it must touch none);
- value change: an LED's series resistor to the catalogue's nearest other value (470 Ohm ->
  1 kOhm on revision A), `make`, then back, and so on (each run is one one-line value
  change); the board must keep every route;
- one-pad re-net: a pin header's pad to its neighbour's signal net (J6 pin 2 from I2C_SDA
  to I2C_SCL on revision A), `make`, then back, and so on; the board must re-route only the
  nets reached, with DRC and parity at 0/0 after each run;
  both edits are found in the committed circuit by role (`edits`), so any revision works;
- KiBot (.venv-kibot, tools/kibot/open-meter.kibot.yaml) against the project's own stage
  functions making the same outputs: ERC, DRC, JLCPCB Gerbers with PTH/NPTH drill, position
  file, BOM CSV, front/back PNG and SVG, schematic PDF, iBoM; runs interleaved, the order
  alternating.

Medians of --runs runs, CPU seconds of the children beside wall seconds (the machine may be
shared: CPU moves less with load), and the load average before and after, so the figures can
be re-measured on a quiet machine. Nothing here is tuned for the benchmark: the builds are
`make`, the project side calls the functions the stages call, in the stages' parallelism.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import resource
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import checks, kicad, kicadnet, pipeline, stamps
from . import parts as catalogue
from .errors import CheckFailed, DesignError, MissingInput
from .paths import ProjectPaths, project

KIBOT_VENV = ".venv-kibot"
KIBOT_CONFIG = "tools/kibot/open-meter.kibot.yaml"
TARGETS = {"noop": 2.0, "value": 30.0, "renet": 60.0, "ratio": 2.0}


@dataclass(frozen=True)
class Edit:
    """A one-line change of a source file, and its way back."""
    what: str
    file: str
    old: str
    new: str
    ref: str = ""  # the part it changes
    reaches: tuple[str, ...] = ()  # the board nets whose copper it must re-route

    def apply(self, root: Path, forward: bool = True) -> None:
        path = root / self.file
        text = path.read_text(encoding="utf-8")
        a, b = (self.old, self.new) if forward else (self.new, self.old)
        if text.count(a) != 1:
            raise DesignError(f"bench edit '{self.what}': {self.file} no longer holds "
                              f"{a!r} exactly once")
        path.write_text(text.replace(a, b), encoding="utf-8")


# ---------------------------------------------------------------- the edits, found by role
# The edits are chosen from the committed netlist and catalogue by what the parts do, not
# by designator, so the bench runs on whatever board revision is committed: the resistor
# in series with an indicator LED gets the catalogue's nearest other value on the same
# footprint (the net they share is a signal, not a rail: KiCad names signals by their sheet
# path, /LED_A); a pin header's pad moves to the net of a neighbouring pad (the two smallest
# signal nets such a move can join without leaving a net with a single pad).

_CALL = re.compile(r'\bpart\(\s*"(?P<key>[^"]+)"\s*,\s*"(?P<ref>[^"]+)"')


def _calls(paths: ProjectPaths) -> dict[str, tuple[str, str, re.Match]]:
    """ref -> (root-relative circuit file, its text, the `part(key, ref` call)."""
    out = {}
    for f in stamps.expand(paths.root, pipeline.BY_NAME["netlist"].inputs[:1]):
        text = f.read_text(encoding="utf-8")
        for m in _CALL.finditer(text):
            out[m["ref"]] = (paths.rel(f), text, m)
    return out


def _value_edit(paths: ProjectPaths, net, cat, calls) -> Edit:
    leds = {r for r, p in net.parts.items()
            if p.fields.get("PartID") in cat.parts
            and cat.parts[p.fields["PartID"]].symbol.startswith("LED")}
    pad_net = net.pad_nets()
    for ref in sorted(net.parts, key=kicadnet.ref_key):
        entry = cat.parts.get(net.parts[ref].fields.get("PartID", ""))
        if entry is None or "ohms" not in entry.facts or ref not in calls:
            continue
        mine = {pad_net[k] for k in pad_net if k[0] == ref and pad_net[k].startswith("/")}
        if not any(r in leds for n in mine for r, _ in net.nets[n]):
            continue
        others = [p for p in cat.parts.values() if p.key != entry.key and "ohms" in p.facts
                  and (p.lib, p.symbol, p.footprint) == (entry.lib, entry.symbol,
                                                         entry.footprint)]
        if not others:
            continue
        to = min(others, key=lambda p: (abs(math.log(p.facts["ohms"] / entry.facts["ohms"])),
                                        p.key))
        file, _, m = calls[ref]
        return Edit(f"{ref} (LED resistor) {entry.value} -> {to.value} (value, MPN, LCSC, "
                    f"PartID)", file, m[0], m[0].replace(f'"{entry.key}"', f'"{to.key}"', 1), ref)
    raise DesignError("bench: no resistor in series with an LED whose value the catalogue "
                      "can change on the same footprint")


def _renet_edit(paths: ProjectPaths, net, cat, calls) -> Edit:
    pad_net = net.pad_nets()
    options = []
    for ref, (file, text, m) in calls.items():
        if not cat.parts.get(m["key"]) or not m["key"].startswith("header") \
                or ref not in net.parts:
            continue
        pins = sorted(((pin, pad_net[(r, pin)]) for r, pin in pad_net if r == ref),
                      key=lambda x: kicadnet.ref_key(x[0]))
        for (pa, na), (pb, nb) in zip(pins, pins[1:], strict=False):
            for pin, src, dst in ((pa, na, nb), (pb, nb, na)):
                # KiCad names a sheet's signals by their path (/I2C_SDA), power symbols'
                # nets (GND, +3V3) and unconnected pins otherwise
                if src == dst or not (src.startswith("/") and dst.startswith("/")) \
                        or len(net.nets[src]) < 3:
                    continue
                options.append((len(net.nets[src]) + len(net.nets[dst]),
                                kicadnet.ref_key(ref), kicadnet.ref_key(pin), ref, pin, src,
                                dst, file, text, m))
    for *_, ref, pin, src, dst, file, text, m in sorted(options):
        end = _CALL.search(text, m.end())
        call = text[m.start():end.start() if end else len(text)]
        bare_src, bare_dst = src.rsplit("/", 1)[-1], dst.rsplit("/", 1)[-1]
        b = re.search(rf'(["\']{re.escape(pin)}["\']\s*:\s*\w+\.){re.escape(bare_src)}\b',
                      call)
        if not b:
            continue
        old = call[:b.end()]
        new = old[:b.start()] + b[1] + bare_dst
        return Edit(f"{ref} pin {pin} {bare_src} -> {bare_dst} (one pad to another net)",
                    file, old, new, ref, tuple(sorted({src, dst})))
    raise DesignError("bench: no pin header pad found that can move to a neighbouring "
                      "pad's signal net")


def edits(paths: ProjectPaths | None = None) -> dict[str, Edit]:
    """The value change and the one-pad re-net of the committed circuit."""
    paths = paths or project()
    net = kicadnet.read_netlist(paths.netlist)
    cat = catalogue.load(paths.parts, check_footprints=False)
    calls = _calls(paths)
    return {"value": _value_edit(paths, net, cat, calls),
            "renet": _renet_edit(paths, net, cat, calls)}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child processes) of fn()."""
    w, c = time.perf_counter(), _children_cpu()
    fn()
    return time.perf_counter() - w, _children_cpu() - c


# ---------------------------------------------------------------- builds in a copy


def make_copy(dest: Path, paths: ProjectPaths) -> ProjectPaths:
    """A copy to build in: the repository's files, the tree's venv (read only)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copy = pipeline.copy_tree(dest, paths)
    (dest / ".venv").symlink_to(paths.root / ".venv")
    return copy


def make(copy: ProjectPaths, log=None) -> None:
    """`make` in the copy, as a user runs it; the set-up it starts with is the tree's, so
    it is declared current (-o) rather than run again against the copy."""
    lines: list[str] = []
    rc = kicad.stream(["make", "-s", "-o", ".venv/.setup/ok", "all"], what="make",
                      cwd=copy.root, env=dict(pipeline.copy_env(copy), PYTHONUNBUFFERED="1"),
                      on_line=lines.append)
    if log:
        for line in lines:
            log(line)
    if rc != 0:
        raise CheckFailed("make failed in the bench copy:\n" + "\n".join(lines[-40:]))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def board_record(copy: ProjectPaths) -> dict:
    return json.loads(copy.board_record.read_text(encoding="utf-8"))


def check_board(copy: ProjectPaths) -> dict:
    """DRC (with KiCad's schematic parity) and our parity on the copy's board."""
    rep = checks.run_drc(copy.pcb, schematic_parity=True)
    diffs = checks.parity(copy.pcb, copy.netlist)
    return {"drc_errors": rep["errors"], "unconnected": rep["unconnected"],
            "schematic_parity": rep["parity"], "parity": len(diffs)}


def bench_noop(copy: ProjectPaths, runs: int, log) -> dict:
    make(copy)  # a fresh clone's first make builds only what is not committed (the site)
    before = snapshot(copy.root)
    rows = [timed(lambda: make(copy)) for _ in range(runs)]
    after = snapshot(copy.root)
    touched = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for k, (w, c) in enumerate(rows):
        log(f"  no-op {k + 1}: {w:.2f} s wall, {c:.2f} s CPU")
    return {"runs": rows, "touched": touched}


def bench_edit(copy: ProjectPaths, key: str, runs: int, log) -> dict:
    edit = edits(copy)[key]
    rows, checks_ = [], []
    for k in range(runs):
        edit.apply(copy.root, forward=k % 2 == 0)
        w, c = timed(lambda: make(copy))
        rec = board_record(copy)
        row = {"wall": w, "cpu": c, "routes": rec["routes"],
               "rerouted": rec["rerouted_nets"]}
        route = json.loads(copy.route_report.read_text())
        if key == "value":
            row["board"] = "routes kept" if route.get("rerouted_nets", []) == [] else "re-routed"
        else:
            row.update(check_board(copy))
            checks_.append(row)
        rows.append(row)
        log(f"  {key} {k + 1}: {w:.1f} s wall, {c:.1f} s CPU" + (
            f"; re-routed {', '.join(rec['rerouted_nets'])}; DRC {row['drc_errors']} errors, "
            f"{row['unconnected']} unconnected, parity {row['parity']}/"
            f"{row['schematic_parity']}" if key == "renet" else f"; {row['board']}"))
    if runs % 2:
        edit.apply(copy.root, forward=False)  # leave the copy as it came
        make(copy)
    return {"edit": edit.what, "runs": rows}


# ---------------------------------------------------------------- KiBot and the project


def kicad_files(paths: ProjectPaths, dest: Path) -> Path:
    """The schematic sheets, board, project and rules, alone in dest (both sides read
    these)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(paths.kicad.iterdir()):
        if f.suffix in (".kicad_sch", ".kicad_pcb", ".kicad_pro", ".kicad_dru"):
            shutil.copyfile(f, dest / f.name)
    return dest / paths.pcb.name


def kibot_exe(paths: ProjectPaths) -> Path:
    exe = paths.root / KIBOT_VENV / "bin" / "kibot"
    if not exe.is_file():
        raise MissingInput(f"{exe} missing: tools/kibot/setup.sh (make bench-build) makes "
                           "the benchmark's KiBot venv")
    return exe


def kibot_env(paths: ProjectPaths, home: Path) -> dict:
    """KiBot's environment: a configuration home of its own, a copy of the project's
    (already set up, so neither side pays KiCad's first start). KiBot and KiAuto write
    settings there (colour themes, the 3D viewer's): in the project's home they changed
    its renders. A running clock: KiBot's outputs here are timed, not compared."""
    if not home.exists():
        shutil.copytree(kicad.config_home(paths), home,
                        ignore=shutil.ignore_patterns(".lock"))
    return kicad.unfrozen_env(home, {"PATH": f"{kibot_exe(paths).parent}{os.pathsep}"
                                             f"{os.environ.get('PATH', '')}"})


def run_kibot(paths: ProjectPaths, work: Path) -> list[Path]:
    pcb = kicad_files(paths, work / "in")
    out = work / "out"
    env = kibot_env(paths, work.parent / "kibot-config")
    kicad.run([str(kibot_exe(paths)), "-A", "-c", str(paths.root / KIBOT_CONFIG),
               "-e", pcb.with_suffix(".kicad_sch").name, "-b", pcb.name, "-d", str(out)],
              what="KiBot", cwd=pcb.parent, env=env)
    return sorted(p for p in out.rglob("*") if p.is_file())


def run_project(paths: ProjectPaths, work: Path) -> list[Path]:
    """The same outputs from the project's own stage functions, as the stages run them:
    independent KiCad calls side by side on every core."""
    from . import bom, netlist
    from .board import facts, render
    from .docs.pages import board as board_page
    from .fab import common, jlcpcb

    pcb = kicad_files(paths, work / "in")
    out = work / "out"
    sheets = work / "sheets"  # ERC and the PDF on the sheets alone, as the netlist stage does
    sheets.mkdir()
    for sch in pcb.parent.glob("*.kicad_sch"):
        shutil.copyfile(sch, sheets / sch.name)
    schematic = sheets / pcb.with_suffix(".kicad_sch").name
    with kicad.pool() as pool:
        jobs = {
            "erc": pool.submit(netlist.run_kicad_erc, schematic),
            "drc": pool.submit(checks.run_drc, pcb, True),
            "gerbers": pool.submit(common.plot_gerbers, pcb, out / "jlcpcb"),
            "drill": pool.submit(common.plot_drill, pcb, out / "jlcpcb", True),
            "positions": pool.submit(common.positions, pcb),
            "footprints": pool.submit(facts.footprints, pcb),
            "pdf": pool.submit(netlist.export_schematic_pdf, schematic, out / "schematic"),
            "ibom": pool.submit(board_page.write_ibom, paths, pcb, out / "ibom"),
        }
        (out / "pictures").mkdir(parents=True)
        pictures = [pool.submit(kicad.cli, *args, paths=paths)
                    for _, args in render.calls(paths, pcb, out / "pictures")]
        (out / "bom").mkdir(parents=True)
        bom.write(dataclasses.replace(paths, bom=out / "bom"), log=lambda *_: None)
        done = {k: f.result() for k, f in jobs.items()}
        for f in pictures:
            f.result()
    if done["erc"]["violations"]:
        raise CheckFailed(f"ERC: {done['erc']['violations'][:3]}")
    if done["drc"]["errors"] or done["drc"]["unconnected"] or done["drc"]["parity"]:
        raise CheckFailed("DRC found problems on the benchmark's board")
    plots = common.Plots(done["gerbers"], done["drill"], [], done["positions"],
                         done["footprints"])
    rows = jlcpcb.assembly_rows(plots, catalogue.load(paths.parts))
    common.write_csv(jlcpcb.bom(rows), out / "jlcpcb" / f"{paths.name}-jlcpcb-bom.csv")
    common.write_csv(jlcpcb.cpl(rows, jlcpcb.load_rotations(paths.rotations)),
                     out / "jlcpcb" / f"{paths.name}-jlcpcb-cpl.csv")
    return sorted(p for p in out.rglob("*") if p.is_file())


def bench_kibot(paths: ProjectPaths, work: Path, runs: int, log) -> dict:
    kibot_exe(paths)
    sides = {"kibot": run_kibot, "project": run_project}
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    files: dict[str, int] = {}
    for k in range(runs):
        order = list(sides) if k % 2 == 0 else list(reversed(sides))
        for side in order:
            d = work / f"{side}-{k}"
            if d.exists():
                shutil.rmtree(d)
            made: list[Path] = []
            w, c = timed(lambda s=side, d=d, m=made: m.extend(sides[s](paths, d)))
            rows[side].append((w, c))
            files[side] = len(made)
            log(f"  {side} {k + 1}: {w:.1f} s wall, {c:.1f} s CPU, {len(made)} files")
    return {"runs": rows, "files": files}


# ---------------------------------------------------------------- report


def median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(res: dict, log=print) -> list[str]:
    """The table, and the targets missed (empty when every figure meets its target)."""
    missed = []
    rows = []

    def row(name, walls, cpus, target, note=""):
        med = median(walls)
        cells = "  ".join(f"{w:6.1f}" for w in walls)
        ok = "" if target is None else ("ok" if med <= target else "MISSED")
        if ok == "MISSED":
            missed.append(f"{name}: median {med:.1f} s > {target} s")
        rows.append(f"{name:34} {cells}   median {med:6.2f} s wall, {median(cpus):6.1f} s CPU"
                    + (f"   target <= {target} s {ok}" if target is not None else "")
                    + (f"   {note}" if note else ""))

    if "noop" in res:
        n = res["noop"]
        row("no-op make", [w for w, _ in n["runs"]], [c for _, c in n["runs"]],
            TARGETS["noop"], f"files touched: {len(n['touched'])}")
        if n["touched"]:
            missed.append(f"no-op make touched {n['touched'][:5]}")
    for key in ("value", "renet"):
        if key in res:
            r = res[key]["runs"]
            note = "; ".join(sorted({x.get("board") or
                                     f"re-routed {','.join(x['rerouted']) or 'nothing'}"
                                     for x in r}))
            if key == "renet":
                bad = [x for x in r if x["drc_errors"] or x["unconnected"] or x["parity"]
                       or x["schematic_parity"]]
                note += f"; DRC/parity 0/0 in {len(r) - len(bad)} of {len(r)} runs"
                if bad:
                    missed.append("re-net: DRC or parity not clean")
                if any(x["routes"] != "updated" for x in r):
                    missed.append("re-net: routed from scratch instead of updating")
            elif any(x["board"] != "routes kept" for x in r):
                missed.append("value change: the board was re-routed")
            row(f"{key} change ({res[key]['edit'][:22]}...)" if len(res[key]["edit"]) > 25
                else key, [x["wall"] for x in r], [x["cpu"] for x in r], TARGETS[key], note)
    if "kibot" in res:
        k = res["kibot"]
        kb, pr = k["runs"]["kibot"], k["runs"]["project"]
        row(f"KiBot 1.9 ({k['files']['kibot']} files)", [w for w, _ in kb],
            [c for _, c in kb], None)
        row(f"project ({k['files']['project']} files)", [w for w, _ in pr],
            [c for _, c in pr], None)
        ratio = median([w for w, _ in kb]) / median([w for w, _ in pr])
        cpu_ratio = median([c for _, c in kb]) / median([c for _, c in pr])
        ok = "ok" if ratio >= TARGETS["ratio"] else "MISSED"
        if ok == "MISSED":
            missed.append(f"KiBot/project ratio {ratio:.2f} < {TARGETS['ratio']}")
        rows.append(f"{'KiBot / project':34} wall {ratio:.2f}x, CPU {cpu_ratio:.2f}x"
                    f"   target >= {TARGETS['ratio']} {ok}")
    for line in rows:
        log(line)
    return missed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openmetering.buildbench",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=["noop", "value", "renet", "kibot"], action="append")
    ap.add_argument("--no-kibot", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)
    paths = project()
    parts = a.only or [p for p in ("noop", "value", "renet", "kibot")
                       if not (p == "kibot" and a.no_kibot)]

    def log(m):
        print(m, flush=True)

    load0 = os.getloadavg()
    log(f"bench-build: {os.cpu_count()} cores, load average {load0[0]:.2f} "
        f"(1 min) {load0[1]:.2f} (5 min) at the start; {a.runs} runs each")
    work = paths.build / "bench"
    res: dict = {}
    failed: list[str] = []

    def part(key: str, title: str, fn) -> None:
        """One part of the benchmark; a failure is reported and the others still run."""
        log(title)
        try:
            res[key] = fn()
        except DesignError as e:
            failed.append(f"{key}: {e}")
            log(f"  {key} failed: {str(e)[:2000]}")

    copy = None
    if {"noop", "value", "renet"} & set(parts):
        copy = make_copy(work / "copy", paths)
    if "noop" in parts:
        part("noop", "no-op make (a copy as a fresh clone has it):",
             lambda: bench_noop(copy, a.runs, log))
    for key in ("value", "renet"):
        if key in parts:
            part(key, f"{edits(copy)[key].what}:",
                 lambda k=key: bench_edit(copy, k, a.runs, log))
    if "kibot" in parts:
        part("kibot", "KiBot and the project, the same outputs, interleaved:",
             lambda: bench_kibot(paths, work / "outputs", a.runs, log))
    load1 = os.getloadavg()
    log("")
    missed = report(res, log) + [f"failed: {f.splitlines()[0]}" for f in failed]
    log(f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end "
        f"(1 min; {os.cpu_count()} cores)")
    if a.json:
        a.json.write_text(json.dumps({"load_start": load0, "load_end": load1, **res},
                                     indent=1, default=str) + "\n")
    for m in missed:
        log(f"target missed: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
