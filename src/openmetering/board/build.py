"""The board stage: build the board when its inputs changed, verify the committed one.

Inputs: the netlist (the schematic's own export when the schematic exists: its symbol UUIDs
make KiCad's schematic parity possible), the spec (hardware/board/placement.toml), the rules
template (hardware/board/rules.kicad_dru) and the router's version. Their hash is recorded in
open-meter.inputs.json beside the board; a build with an unchanged hash keeps the board.

Everything that creates KiCad items runs in one child process (`assemble`) under the frozen
environment with seeded UUIDs, so the same inputs give a byte-identical board.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from .. import kicad, kicadnet
from .. import route as router
from ..errors import CheckFailed, DesignError, MissingInput
from ..paths import ProjectPaths, project
from . import outline, placement, routing, zones
from . import project as kicad_project
from .layout import Layout, load_spec

BUILD_VERSION = "omd-board 1"  # bump when the board's bytes change for the same inputs


def source_netlist(paths: ProjectPaths, netlist: Path | None = None) -> Path:
    """The netlist the board follows: the schematic's own export when a schematic exists,
    else the given (SKiDL or test) netlist."""
    netlist = netlist or paths.netlist
    if not netlist.is_file():
        raise MissingInput(f"{netlist}: netlist missing; run the circuit stage first "
                           f"(make circuit)")
    if paths.schematic.exists() and netlist == paths.netlist:
        out = paths.build / f"{paths.name}.sch.net"
        out.parent.mkdir(parents=True, exist_ok=True)
        kicad.cli("sch", "export", "netlist", "--format", "kicadsexpr", "-o", out,
                  paths.schematic, paths=paths)
        return out
    return netlist


def input_hash(paths: ProjectPaths, netlist: Path) -> dict:
    net = kicadnet.read_netlist(netlist)
    spec = paths.placement
    h = hashlib.sha256()
    dru = paths.rules_template.read_text()
    for part in (net.digest, spec.read_bytes().decode(), dru, router.VERSION, BUILD_VERSION):
        h.update(part.encode() if isinstance(part, str) else part)
    return {
        "netlist_digest": net.digest,
        "spec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest(),
        "router": router.VERSION,
        "builder": BUILD_VERSION,
        "inputs_sha256": h.hexdigest(),
    }


# ---------------------------------------------------------------- the child


def place_board(spec: dict, netlist: Path) -> Layout:
    """Footprints from the netlist, placed, with outline, keep-outs and silkscreen: the board
    the router gets (the router's benchmark places it the same way)."""
    lay = Layout(netlist, spec)
    kicad_project.design_settings(lay)
    lay.add_footprints()
    outline.outline(lay)
    placement.place(lay)
    zones.keepouts(lay)
    outline.trim_silk(lay)
    outline.silkscreen(lay)
    return lay


def assemble(spec_path: Path, netlist: Path, out: Path, report: Path, place_only: bool = False,
             no_pour: bool = False) -> None:
    """Runs in the frozen-clock child: place, route, pour and save the board. The order of
    the steps is the order in which KiCad items get their seeded UUIDs."""
    spec = load_spec(spec_path)
    t0 = time.perf_counter()
    lay = place_board(spec, netlist)
    t1 = time.perf_counter()
    prob = routing.problem(lay, h=spec["routing"]["grid"])
    rt = router.Router(prob)
    if place_only:  # placement preview while editing the spec
        res = router.Result([], [], [], {})
    else:
        res = rt.route(max_ripups=spec["routing"]["max_ripups"])
    t2 = time.perf_counter()
    print(f"routed in {t2 - t1:.0f} s: {len(res.tracks)} tracks, {len(res.vias)} vias, "
          f"{len(res.unrouted)} unrouted", file=sys.stderr)
    routing.add_routes(lay, res)
    stitches = [] if no_pour else zones.stitching(lay, prob, rt)
    if not no_pour:
        zones.pours(lay)
    lay.save(out)
    zones.fill(out)
    t3 = time.perf_counter()
    info = {
        "tracks": len(res.tracks), "vias": len(res.vias), "stitching_vias": len(stitches),
        "unrouted": res.unrouted, "stats": res.stats,
        "seconds": {"place": round(t1 - t0, 1), "route": round(t2 - t1, 1), "finish": round(t3 - t2, 1)},
        "log": lay.log,
    }
    report.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def _child_main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", type=Path)
    ap.add_argument("netlist", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("report", type=Path)
    ap.add_argument("--place-only", action="store_true")
    ap.add_argument("--no-pour", action="store_true")
    a = ap.parse_args(argv)
    assemble(a.spec, a.netlist, a.out, a.report, a.place_only, a.no_pour)


CHILD = "from openmetering.board.build import _child_main; _child_main()"


# ---------------------------------------------------------------- the stage


def build(paths: ProjectPaths | None = None, force: bool = False, netlist: Path | None = None,
          out: Path | None = None, place_only: bool = False, no_pour: bool = False,
          log=print) -> dict:
    """Build the board (when its inputs changed, or with force). A preview (place_only or
    no_pour) goes to build/preview/ unless `out` says otherwise, and never counts as the
    committed board."""
    paths = paths or project()
    preview = place_only or no_pour
    if out is None:
        out = paths.build / "preview" / paths.pcb.name if preview else paths.pcb
    committed = out == paths.pcb
    if preview and committed:
        raise DesignError("a placement preview cannot replace the committed board: give --out")
    src = source_netlist(paths, netlist)
    inputs = input_hash(paths, src)
    if not force and committed and out.exists() and paths.board_record.exists():
        if json.loads(paths.board_record.read_text()).get("inputs_sha256") == inputs["inputs_sha256"]:
            log(f"{paths.rel(out)} is current (inputs {inputs['inputs_sha256'][:12]})")
            return {"current": True, **inputs}
    spec = load_spec(paths.placement)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.kicad_pcb")
    report = out.with_suffix(".route.json")
    flags = [*(["--place-only"] if place_only else []), *(["--no-pour"] if no_pour else [])]
    kicad.python(paths.placement, src, tmp, report, *flags, code=CHILD, what="board build",
                 paths=paths, capture=False)
    tmp.replace(out)
    for stray in (tmp.with_suffix(".kicad_pro"), tmp.with_suffix(".kicad_prl")):
        stray.unlink(missing_ok=True)
    kicad_project.write_project(spec, out.with_suffix(".kicad_pro"))
    kicad_project.write_dru(spec, paths.rules_template, out.with_suffix(".kicad_dru"))
    if committed:
        paths.board_record.write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    info = json.loads(report.read_text())
    summary = {k: info[k] for k in ("tracks", "vias", "stitching_vias", "unrouted", "seconds")}
    log(json.dumps(summary))
    return summary


def verify(paths: ProjectPaths | None = None, log=print) -> None:
    """Fail unless the committed board was built from the current inputs."""
    paths = paths or project()
    inputs = input_hash(paths, source_netlist(paths))
    if not paths.pcb.exists() or not paths.board_record.exists():
        raise CheckFailed(f"no committed board or inputs record in {paths.rel(paths.kicad)}")
    have = json.loads(paths.board_record.read_text())
    if have.get("inputs_sha256") != inputs["inputs_sha256"]:
        diff = [k for k in inputs if inputs[k] != have.get(k)]
        raise CheckFailed(f"committed board is stale: {', '.join(diff)} changed; run "
                          f"`omd board build`")
    log(f"board current for inputs {inputs['inputs_sha256'][:12]}")
