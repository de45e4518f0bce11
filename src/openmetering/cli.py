"""`omd STAGE ...` (or `python -m openmetering STAGE ...`): the pipeline's one command line.

Thin and lazy: parsing the arguments imports no stage; the chosen stage is imported when it
runs, so `omd --help` is instant and a stage's dependencies (SKiDL, pandas, pcbnew) load only
for the stage that needs them. A DesignError becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .errors import guarded
from .paths import ProjectPaths, project


def _netlist(a, paths: ProjectPaths):
    from . import netlist

    if a.kicad_dir or a.reports_dir:
        paths = dataclasses.replace(paths, kicad=a.kicad_dir or paths.kicad,
                                    reports=a.reports_dir or paths.reports)
    return netlist.build(paths, docs=not a.no_docs, redraw=a.force)


def _bom(a, paths):
    from . import bom

    if a.out:
        paths = dataclasses.replace(paths, bom=a.out)
    return bom.write(paths, a.netlist, a.parts)


def _assertions(a, paths):
    from . import assertions

    return assertions.write_report(paths, a.netlist, a.parts, a.pinmap, a.report)


def _board(a, paths):
    from .board import build

    if a.action == "verify":
        return build.verify(paths)
    if a.action == "render":
        from .board import render

        for p in render.render(paths, a.pcb, a.out):
            print(paths.rel(p))
        return None
    return build.build(paths, force=a.force, netlist=a.netlist, out=a.out,
                       place_only=a.place_only, no_pour=a.no_pour, from_scratch=a.from_scratch)


def _checks(a, paths):
    from . import checks

    if a.check == "drc":
        return checks.drc_gate(paths, a.pcb)
    return checks.parity_gate(paths, a.pcb, a.netlist)


def _fab(a, paths):
    from . import fab

    return fab.build(paths, a.pcb, a.out, keep_plots=a.keep_plots)


def _docs(a, paths):
    from .docs import diagrams, site

    if a.root:
        paths = ProjectPaths.at(a.root)
    if a.action == "generate":
        return site.generate(paths, diagrams=not a.no_diagrams)
    if a.action == "build":
        return site.build(paths, generate_pages=not a.no_generate)
    return {"diagrams": diagrams.render, "inputs": site.describe_inputs}[a.action](paths)


def _build(a, paths):
    from . import pipeline

    if a.check:
        return pipeline.check(paths)
    return pipeline.run(a.stages, paths, force=a.force, from_scratch=a.from_scratch,
                        jobs=a.jobs, explain=a.explain)


def _router_compare(a, paths):
    from . import router_compare

    return router_compare.compare(paths, a.engines.split(","), a.timeout, a.reuse)


def _chain(a, paths):
    from . import chain

    return chain.run(chain.parser().parse_args(a.args))


# stages with their own sub-commands and options, handed the rest of the command line as is
# (argparse cannot pass `-h` or `--opt` through a REMAINDER)
PASS_THROUGH = {"chain"}


def _paths(p: argparse.ArgumentParser, **options: str) -> None:
    """--name PATH options (name_with_underscores -> --name-with-dashes), with their help."""
    for name, help_text in options.items():
        p.add_argument("--" + name.replace("_", "-"), type=Path, help=help_text or None)


def _flags(p: argparse.ArgumentParser, **options: str) -> None:
    for name, help_text in options.items():
        p.add_argument("--" + name.replace("_", "-"), action="store_true", help=help_text)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="omd", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name, run, help_text, **kw):
        s = sub.add_parser(name, help=help_text, **kw)
        s.set_defaults(run=run)
        return s

    s = stage("build", _build, "bring stages (default: all) up to date, skipping current ones")
    s.add_argument("stages", nargs="*", metavar="STAGE", help="and everything upstream")
    s.add_argument("--jobs", "-j", type=int, help="stages at a time (default: one per core)")
    _flags(s, force="run every selected stage, current or not",
           from_scratch="route the board from scratch instead of updating its routes",
           explain="say why each stage runs or is current",
           check="exit 1 unless every committed stamp describes the tree (runs nothing)")

    s = stage("netlist", _netlist, "circuit -> ERC -> schematic, KiCad netlist, ERC report")
    _paths(s, kicad_dir="write the schematic and netlist here", reports_dir="write erc.json here")
    _flags(s, no_docs="skip the schematic PDF/SVG",
           force="draw every sheet, also those whose inputs are as recorded beside them")
    _paths(stage("bom", _bom, "netlist + catalogue -> BOM (CSV, XLSX) and cost"),
           out="folder for the BOM files", netlist="", parts="default hardware/parts.toml")
    _paths(stage("assertions", _assertions, "design assertions and pin rules on the netlist"),
           netlist="", parts="", pinmap="", report="default hardware/reports/assertions.json")

    actions = stage("board", _board, "build, verify or render the board").add_subparsers(
        dest="action", required=True)
    b = actions.add_parser("build", help="place, route and pour, keeping the committed routes "
                                         "the netlist change does not reach")
    _paths(b, netlist="build from this netlist instead", out="write the board here instead")
    _flags(b, force="route from scratch when the committed routes were made so (proves them)",
           from_scratch="route every net from scratch",
           place_only="placement preview: no routing (seconds; goes to build/preview/)",
           no_pour="no GND pours or stitching vias")
    actions.add_parser("verify", help="exit 1 unless the committed board matches its inputs")
    _paths(actions.add_parser("render", help="PNG renders and SVG plots for the docs"),
           pcb="", out="default docs/generated/board/")

    gates = stage("checks", _checks, "gates on the board: DRC, netlist parity").add_subparsers(
        dest="check", required=True)
    gates.add_parser("drc", help="kicad-cli DRC (with schematic parity)").add_argument(
        "pcb", nargs="?", type=Path)
    p = gates.add_parser("parity", help="our pad-to-net comparison with the netlist")
    p.add_argument("pcb", nargs="?", type=Path)
    _paths(p, netlist="")

    s = stage("fab", _fab, "board -> JLCPCB, PCBWay and panel packages")
    _paths(s, pcb="", out="default hardware/fab/")
    s.add_argument("--keep-plots", type=Path, metavar="STAMP",
                   help="keep the Gerbers and drill files this stamp of the stage records "
                        "(the build passes it when only assembly inputs changed)")
    s = stage("docs", _docs, "generate the site's pages, build the site")
    s.add_argument("action", choices=["generate", "build", "diagrams", "inputs"])
    _paths(s, root="repository root (tests use a copy)")
    _flags(s, no_diagrams="generate: leave the PlantUML drawings to `docs diagrams`",
           no_generate="build: run mkdocs on the pages as they are")
    s = stage("chain", _chain, "contracts: forge build, local anvil chain + deployment, "
              "meter registration, gas report (omd chain -h)", add_help=False)
    s.add_argument("args", nargs=argparse.REMAINDER)
    s = stage("router-compare", _router_compare, "freeroute vs our router, writes the docs table")
    s.add_argument("--engines", default="exact,grid")
    s.add_argument("--timeout", type=int, default=600)
    _flags(s, reuse="reuse the freeroute rows measured last time, re-measure only ours")
    return ap


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASS_THROUGH:
        from . import chain

        return chain.main(argv[1:])
    a = parser().parse_args(argv)
    return guarded(a.run, a, project())
