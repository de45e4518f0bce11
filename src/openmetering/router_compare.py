"""Measure the autorouters that install here on our placed board and write the figures to
docs/generated/router-comparison.md.

    omd router-compare [--engines exact,grid] [--timeout 600] [--reuse]

Each candidate gets the same placed, unrouted board (the builder's placement, no tracks);
freeroute's engines go through Specctra DSN/SES, our router's figures come from the committed
board. Every routed result then gets the GND pours, a zone fill and `kicad-cli pcb drc`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sys
import time
from pathlib import Path

from . import checks, kicad
from . import route as router
from .board import build as board_build
from .board.layout import load_spec
from .errors import ToolTimeout
from .paths import ProjectPaths


def _pcbnew_script(code: str, what: str):
    kicad.python(code=code, what=what)


def run_freeroute(work: Path, placed: Path, engine: str, extra: list[str], timeout: int,
                  spec: dict) -> dict:
    tag = "-".join([engine, *[e.strip("-") for e in extra]])
    d = work / tag
    d.mkdir(parents=True, exist_ok=True)
    dsn, ses, pcb = d / "board.dsn", d / "board.ses", d / "open-meter.kicad_pcb"
    shutil.copy(placed, pcb)
    for ext in (".kicad_pro", ".kicad_dru"):
        shutil.copy(placed.with_suffix(ext), pcb.with_suffix(ext))
    _pcbnew_script(f"import pcbnew; b=pcbnew.LoadBoard({str(pcb)!r}); "
                   f"pcbnew.ExportSpecctraDSN(b, {str(dsn)!r})", "Specctra DSN export")
    exe = shutil.which("freeroute") or str(Path(sys.executable).with_name("freeroute"))
    cmd = [exe, str(dsn), "-o", str(ses), "--engine", engine, *extra]
    t0 = time.perf_counter()
    try:
        proc = kicad.run(cmd, what=f"freeroute {engine}", timeout=timeout, check=False)
        status = "finished" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except ToolTimeout:
        status = f"stopped at {timeout} s"
    secs = time.perf_counter() - t0
    row = {"router": f"freeroute --engine {engine} {' '.join(extra)}".strip(), "status": status,
           "seconds": round(secs, 1), "command": " ".join(["freeroute", dsn.name, "-o", ses.name,
                                                           "--engine", engine, *extra])}
    if not ses.exists() or ses.stat().st_size == 0:
        row.update(errors=None, unconnected=None, detail="no session file")
        return row
    # freeroute writes micrometres but keeps "(resolution um 10)": KiCad would shrink 10x
    text = ses.read_text()
    ses.write_text(re.sub(r"\(resolution um 10\)", "(resolution um 1)", text))
    _pcbnew_script(
        "import pcbnew\n"
        f"b=pcbnew.LoadBoard({str(pcb)!r})\n"
        f"pcbnew.ImportSpecctraSES(b, {str(ses)!r})\n"
        f"pcbnew.SaveBoard({str(pcb)!r}, b)\n", "Specctra SES import")
    _pours_and_fill(pcb, spec)
    row.update(_drc_figures(pcb))
    return row


def _pours_and_fill(pcb: Path, spec: dict):
    """GND pours over the board's own outline on both layers, then a zone fill."""
    z = spec["zones"]
    code = f"""
import pcbnew
b = pcbnew.LoadBoard({str(pcb)!r})
net = b.FindNet({z["net"]!r})
bb = b.GetBoardEdgesBoundingBox()
for layer in (pcbnew.F_Cu, pcbnew.B_Cu):
    zone = pcbnew.ZONE(b)
    zone.SetLayer(layer)
    zone.SetNet(net)
    o = zone.Outline(); o.NewOutline()
    for x, y in ((bb.GetLeft(), bb.GetTop()), (bb.GetRight(), bb.GetTop()),
                 (bb.GetRight(), bb.GetBottom()), (bb.GetLeft(), bb.GetBottom())):
        o.Append(x, y)
    zone.SetLocalClearance(pcbnew.FromMM({z["clearance"]}))
    zone.SetMinThickness(pcbnew.FromMM({z["min_thickness"]}))
    zone.SetPadConnection(pcbnew.ZONE_CONNECTION_THT_THERMAL)
    b.Add(zone)
b.BuildConnectivity()
pcbnew.ZONE_FILLER(b).Fill(b.Zones())
pcbnew.SaveBoard({str(pcb)!r}, b)
"""
    _pcbnew_script(code, "GND pours and zone fill")


def _drc_figures(pcb: Path) -> dict:
    rep = checks.run_drc(pcb)
    kinds: dict[str, int] = {}
    for v in rep["violations"]:
        if v["severity"] == "error":
            kinds[v["type"]] = kinds.get(v["type"], 0) + 1
    top = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:4])
    return {"errors": rep["errors"], "warnings": rep["warnings"],
            "unconnected": rep["unconnected"], "detail": top}


def ours(paths: ProjectPaths, work: Path) -> dict:
    """Our router's row: the board built from scratch into work/ours/, timed here (the
    committed files record no wall-clock time)."""
    out = work / "ours" / paths.pcb.name
    t0 = time.perf_counter()
    board_build.build(paths, out=out, log=lambda *_: None)
    row = {"router": f"omd route.py ({router.VERSION})", "status": "finished",
           "seconds": round(time.perf_counter() - t0, 1),
           "command": "omd board build --out build/routers/ours/open-meter.kicad_pcb"}
    row.update(_drc_figures(out))
    return row


def write_doc(paths: ProjectPaths, rows: list[dict], netlist: Path):
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    lines = [
        "# Router comparison on the Open Metering board",
        "",
        f"Generated by `omd router-compare` on {today} (2-core Debian 12, "
        "KiCad 9.0.8), from the builder's placement of "
        f"`{paths.rel(netlist)}`. "
        "Every result got the same GND pours and zone fill, then "
        "`kicad-cli pcb drc --severity-all` with the board's JLCPCB rules "
        "(0.15–0.2 mm clearance, 0.2 mm signal / 0.5 mm power tracks, 0.6/0.3 mm vias).",
        "",
        "| router | run | time (s) | DRC errors | unconnected | warnings | main error kinds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| `{r['router']}` | {r['status']} | {r['seconds']} | {r.get('errors')} | "
                     f"{r.get('unconnected')} | {r.get('warnings')} | {r.get('detail', '')} |")
    lines += [
        "",
        f"Commands (in `{paths.rel(paths.build)}/routers/<engine>/`): " + "; ".join(
            f"`{r['command']}`" for r in rows) + ".",
        "",
        "Notes:",
        "- freeroute writes its session in micrometres but keeps `(resolution um 10)`; the",
        "  comparison rewrites it to `(resolution um 1)` before `ImportSpecctraSES`, otherwise",
        "  KiCad shrinks every route tenfold.",
        "- `@tscircuit/capacity-autorouter` (npm) was not measured on this board; on a similar",
        "  board (shared toolchain notes) it reached every net but left 119–499 clearance errors",
        "  from its fixed 0.1 mm internal clearance.",
        "- Our router (`src/openmetering/route.py`) keeps clearance by construction (exact",
        "  distances on a 0.05 mm grid) and is the one the build uses.",
        "",
    ]
    paths.router_comparison.parent.mkdir(parents=True, exist_ok=True)
    paths.router_comparison.write_text("\n".join(lines))


def compare(paths: ProjectPaths, engines: list[str], timeout: int = 600,
            reuse: bool = False, log=print) -> None:
    work = paths.build / "routers"
    cache = work / "rows.json"
    netlist = paths.netlist
    have_ours = paths.netlist.exists()
    if reuse and cache.exists():
        rows = [r for r in json.loads(cache.read_text()) if not r["router"].startswith("omd")]
        if have_ours:
            rows.append(ours(paths, work))
        write_doc(paths, rows, netlist)
        log(paths.rel(paths.router_comparison))
        return
    work.mkdir(parents=True, exist_ok=True)
    placed = work / "placed.kicad_pcb"
    # the builder's placement without routing, pours or stitching
    board_build.build(paths, netlist=None, out=placed, place_only=True, no_pour=True, log=log)
    spec = load_spec(paths.placement)
    rows = []
    variants = {"exact": [["--shove", "--diagonal"]], "grid": [[]], "room": [[]]}
    for eng in engines:
        for extra in variants.get(eng, [[]]):
            row = run_freeroute(work, placed, eng, extra, timeout, spec)
            log(json.dumps(row))
            rows.append(row)
    # keep earlier measurements of engines not re-run this time
    if cache.exists():
        ran = {r["router"] for r in rows}
        rows = [r for r in json.loads(cache.read_text()) if r["router"] not in ran] + rows
    cache.write_text(json.dumps(rows, indent=1))
    if have_ours:
        rows.append(ours(paths, work))
    write_doc(paths, rows, netlist)
    log(paths.rel(paths.router_comparison))
