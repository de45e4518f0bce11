"""The board stage: the circuit's netlist -> a placed, routed, poured board, keeping the
committed board's routes when only the netlist changed.

Inputs: the netlist (KiCad's own export of the schematic: its symbol UUIDs make KiCad's
schematic parity possible), the spec (hardware/board/placement.toml), the rules template
(hardware/board/rules.kicad_dru) and the builder itself (its code, the locked packages and
KiCad's version). The record open-meter.inputs.json beside the board says what it was built
from and how its routes were made; `omd board verify` fails when it no longer describes the
inputs.

How a build gets its routes (hardware/board/README.md states the rule `make test` checks):
- from scratch: no committed board, `--from-scratch`, or the spec, the rules or the builder
  changed; and with `--force` when the committed routes were made from scratch, so a forced
  build proves they still are what the router makes;
- kept (`reuse`): only the netlist changed. A change no pad's net sees (value, MPN, LCSC,
  any field) keeps every route, and the board is byte for byte the one a route from scratch
  gives; a change that adds, removes or re-nets pads re-routes only the nets it reaches,
  around the kept copper, and the result must pass DRC and parity, or the build routes from
  scratch instead.

Everything that creates KiCad items runs in one child process (`assemble`) under the frozen
environment with seeded UUIDs, so the same inputs give a byte-identical board.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .. import checks, kicad, kicadnet, stamps
from .. import route as router
from ..errors import CheckFailed, DesignError, MissingInput
from ..paths import ProjectPaths, project
from ..repro import copy_if_changed, write_text_if_changed
from . import outline, placement, reuse, routing, zones
from . import project as kicad_project
from .layout import POUR_SEED, Layout, load_spec

FROM_SCRATCH, UPDATED = "from scratch", "updated"
ROUTER_MODULES = ("route", "pathsearch")  # the router's own modules (src/openmetering/)
DESIGN_KEYS = ("spec_sha256", "rules_sha256", "builder_sha256")


def design(paths: ProjectPaths) -> dict[str, str]:
    """What the routes depend on besides the netlist: a change here routes from scratch.
    The builder is the board package and the router (not the shared runner, paths or
    checks: a change there that moved a track would fail the forced regeneration of the
    tests), with the locked packages and KiCad's version."""
    root = paths.root
    src = root / "src" / "openmetering"
    code = [f for f in stamps.code_closure(root, ["openmetering.board.build"])
            if f.parent == src / "board" and f.stem not in ("render", "facts")]
    code += [src / f"{m}.py" for m in ROUTER_MODULES if (src / f"{m}.py").is_file()]
    h = hashlib.sha256()
    for f in sorted(set(code)) + [root / "requirements.lock"]:
        h.update(f"{f.relative_to(root).as_posix()}\0{stamps.file_sha256(f)}\0".encode())
    h.update(stamps.tool_version("kicad").encode())
    return {"spec_sha256": stamps.file_sha256(paths.placement),
            "rules_sha256": stamps.file_sha256(paths.rules_template),
            "builder_sha256": h.hexdigest()}


def read_record(paths: ProjectPaths) -> dict | None:
    try:
        return json.loads(paths.board_record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- the child


def place_board(spec: dict, netlist: Path, keep: dict | None = None) -> Layout:
    """Footprints from the netlist, placed (those in `keep` where the committed board has
    them), with outline, keep-outs and silkscreen: the board the router gets (the router's
    benchmark places it the same way)."""
    lay = Layout(netlist, spec)
    kicad_project.design_settings(lay)
    lay.add_footprints()
    outline.outline(lay)
    placement.place(lay, keep)
    zones.keepouts(lay)
    outline.trim_silk(lay)
    outline.silkscreen(lay)
    return lay


def assemble(spec_path: Path, netlist: Path, out: Path, report: Path, base: Path | None = None,
             place_only: bool = False, no_pour: bool = False) -> None:
    """Runs in the frozen-clock child: place, route (or keep the routes of `base`), pour and
    save the board. The order of the steps is the order in which KiCad items get their
    seeded UUIDs."""
    import pcbnew

    spec = load_spec(spec_path)
    t0 = time.perf_counter()
    committed = reuse.read(base) if base else None
    lay = place_board(spec, netlist, keep=committed and {
        ref: state[1:] for ref, state in committed.footprints.items()})
    t1 = time.perf_counter()
    rerouted: list[str] = []
    res = None
    stitches: list | None = None
    if committed is None:
        prob = routing.problem(lay, h=spec["routing"]["grid"])
        rt = router.Router(prob)
        res = router.Result([], [], [], {}) if place_only else \
            rt.route(max_ripups=spec["routing"]["max_ripups"])
        routing.add_routes(lay, res)
        stitches = [] if no_pour else zones.stitching(lay, prob, rt)
        mode = "scratch"
    else:
        reached = reuse.reached(committed, lay)
        kept = [c for c in committed.copper if c.net not in reached]
        reuse.add_kept(lay, kept)
        mode = "kept"
        if reached:
            # new items must not repeat the committed UUIDs the kept ones carry
            pcbnew.KIID.SeedGenerator(int(lay.net.digest[:8], 16))
            prob = routing.problem(lay, h=spec["routing"]["grid"])
            prob.rules = {n: r for n, r in prob.rules.items() if n in reached}
            prob.obstacles = prob.obstacles + reuse.obstacles(lay, kept)
            rt = router.Router(prob)
            res = rt.route(max_ripups=spec["routing"]["max_ripups"])
            routing.add_routes(lay, res)
            if not no_pour and spec["zones"]["net"] in reached:
                stitches = zones.stitching(lay, prob, rt)
            rerouted, mode = sorted(reached), "rerouted"
    t2 = time.perf_counter()
    if not no_pour:
        pcbnew.KIID.SeedGenerator(POUR_SEED)
        zones.pours(lay)
    lay.save(out)
    zones.fill(out)
    t3 = time.perf_counter()
    tracks = [t for t in lay.board.GetTracks() if t.GetClass() == "PCB_TRACK"]
    info = {"mode": mode, "rerouted_nets": rerouted, "tracks": len(tracks),
            "vias": len(lay.board.GetTracks()) - len(tracks), "log": lay.log}
    if res is not None:
        info.update(unrouted=res.unrouted, stats=res.stats)
    if stitches is not None:
        info["stitching_vias"] = len(stitches)
    # wall-clock seconds go to the terminal only: a committed file must not change with load
    print(f"board: {mode}{' ' + ', '.join(rerouted) if rerouted else ''}; placed in "
          f"{t1 - t0:.1f} s, routed in {t2 - t1:.1f} s, poured and saved in {t3 - t2:.1f} s"
          + (f"; {len(res.unrouted)} unrouted" if res is not None else ""), file=sys.stderr)
    report.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def _child_main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", type=Path)
    ap.add_argument("netlist", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("report", type=Path)
    ap.add_argument("--base", type=Path)
    ap.add_argument("--place-only", action="store_true")
    ap.add_argument("--no-pour", action="store_true")
    a = ap.parse_args(argv)
    assemble(a.spec, a.netlist, a.out, a.report, a.base, a.place_only, a.no_pour)


CHILD = "from openmetering.board.build import _child_main; _child_main()"


# ---------------------------------------------------------------- the stage


def _make(paths: ProjectPaths, spec: dict, src: Path, work: Path, base: Path | None,
          flags: list[str]) -> dict:
    """One run of the child into work/; the .kicad_pro and .kicad_dru beside its board."""
    pcb = work / paths.pcb.name
    for old in work.iterdir():
        old.unlink()
    report = work / "report.json"
    kicad.python(paths.placement, src, pcb, report, *(["--base", base] if base else []),
                 *flags, code=CHILD, what="board build", paths=paths, capture=False)
    for stray in (pcb.with_suffix(".kicad_pro"), pcb.with_suffix(".kicad_prl")):
        stray.unlink(missing_ok=True)  # pcbnew's default project, written beside on save
    kicad_project.write_project(spec, pcb.with_suffix(".kicad_pro"))
    kicad_project.write_dru(spec, paths.rules_template, pcb.with_suffix(".kicad_dru"))
    return json.loads(report.read_text())


def gate(paths: ProjectPaths, pcb: Path, netlist: Path) -> list[str]:
    """What keeps a re-routed board from being kept: DRC errors, unconnected items and
    schematic parity (KiCad's, with the schematic beside it), and our own parity."""
    for sheet in paths.kicad.glob(f"{paths.name}*.kicad_sch"):
        shutil.copyfile(sheet, pcb.parent / sheet.name)
    rep = checks.run_drc(pcb, schematic_parity=True)
    found = [checks.describe(v) for v in rep["violations"] if v["severity"] == "error"]
    found += [checks.describe(v) for v in rep["unconnected_items"] + rep["schematic_parity"]]
    return found + checks.parity(pcb, netlist)


def build(paths: ProjectPaths | None = None, force: bool = False, netlist: Path | None = None,
          out: Path | None = None, place_only: bool = False, no_pour: bool = False,
          from_scratch: bool = False, log=print) -> dict:
    """Build the board. The committed one keeps its routes where it can (module docstring);
    a build to `out` routes from scratch. A preview (place_only or no_pour) goes to
    build/preview/ unless `out` says otherwise, and never counts as the committed board."""
    paths = paths or project()
    preview = place_only or no_pour
    if out is None:
        out = paths.build / "preview" / paths.pcb.name if preview else paths.pcb
    committed = out == paths.pcb
    if preview and committed:
        raise DesignError("a placement preview cannot replace the committed board: give --out")
    src = netlist or paths.netlist
    if not src.is_file():
        raise MissingInput(f"{src}: netlist missing; run the circuit stage first (make circuit)")
    digest = kicadnet.read_netlist(src).digest
    now = design(paths)
    record = read_record(paths) if committed and paths.pcb.exists() else None
    if not committed or preview or from_scratch:
        why = None
    elif record is None:
        why = "no committed board"
    elif changed := [k for k in DESIGN_KEYS if record.get(k) != now[k]]:
        why = f"{', '.join(changed)} changed"
    elif force and record.get("routes") == FROM_SCRATCH:
        why = "forced: the committed routes must be what a route from scratch gives"
    else:
        why = ""
    spec = load_spec(paths.placement)
    flags = [*(["--place-only"] if place_only else []), *(["--no-pour"] if no_pour else [])]
    paths.build.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.build, prefix="board-") as tmp:
        work = Path(tmp)
        if why:
            log(f"board: routing from scratch ({why})")
        info = _make(paths, spec, src, work, paths.pcb if why == "" else None, flags)
        if info["mode"] == "rerouted":
            problems = gate(paths, work / paths.pcb.name, src)
            if problems:
                log(f"board: re-routing {', '.join(info['rerouted_nets'])} around the kept "
                    f"copper left {len(problems)} problem(s), e.g. {problems[0]}; routing "
                    f"from scratch")
                info = _make(paths, spec, src, work, None, flags)
        out.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".kicad_pcb", ".kicad_pro", ".kicad_dru"):
            copy_if_changed(work / paths.pcb.with_suffix(suffix).name, out.with_suffix(suffix))
    if info["mode"] != "kept":
        routes = {k: info[k] for k in ("tracks", "vias", "stitching_vias", "unrouted", "stats",
                                       "log", "rerouted_nets") if k in info}
        if info["mode"] == "rerouted":
            routes["routes"] = UPDATED
        write_text_if_changed(out.with_suffix(".route.json"),
                              json.dumps(routes, indent=2, sort_keys=True) + "\n")
    if committed:
        if info["mode"] == "scratch":
            routes, rerouted = FROM_SCRATCH, []
        elif info["mode"] == "rerouted":
            routes = UPDATED
            rerouted = sorted(set(record.get("rerouted_nets", [])) | set(info["rerouted_nets"]))
        else:  # the same routes as before
            routes, rerouted = record["routes"], record.get("rerouted_nets", [])
        rec = {**now, "netlist_digest": digest, "routes": routes, "rerouted_nets": rerouted}
        write_text_if_changed(paths.board_record, json.dumps(rec, indent=2, sort_keys=True)
                              + "\n")
    summary = {"mode": info["mode"], "rerouted_nets": info["rerouted_nets"],
               "tracks": info["tracks"], "vias": info["vias"],
               "unrouted": info.get("unrouted", [])}
    log(json.dumps(summary))
    return summary


def verify(paths: ProjectPaths | None = None, log=print) -> dict:
    """Fail unless the committed board's record describes the current inputs."""
    paths = paths or project()
    record = read_record(paths)
    if not paths.pcb.exists() or record is None:
        raise CheckFailed(f"no committed board or inputs record in {paths.rel(paths.kicad)}")
    now = {**design(paths), "netlist_digest": kicadnet.read_netlist(paths.netlist).digest}
    diff = [k for k in now if record.get(k) != now[k]]
    if diff:
        raise CheckFailed(f"committed board is stale: {', '.join(diff)} changed; run "
                          f"`omd build board`")
    log(f"board current for netlist {now['netlist_digest'][:12]}; routes "
        f"{record.get('routes')}" + (f" (re-routed since: {', '.join(record['rerouted_nets'])})"
                                     if record.get("rerouted_nets") else ""))
    return record
