"""The drawn schematic holds to its rules (openmetering.schematic.rules), read back from the
files: no text on another text, a body or a wire; paper and fill; decoupling wired beside
the power pin it serves; every net named; KiCad's ERC clean. Each rule is shown to fail on a
sheet broken on purpose, the text metrics the rules use are measured again from KiCad, and
the generator draws a circuit it was not written against."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openmetering import kicad, netlist, sexpr
from openmetering.kicadnet import read_netlist
from openmetering.paths import project
from openmetering.schematic import font, rules
from openmetering.sexpr import Q

P = project()
SHEETS = sorted(P.kicad.glob(f"{P.name}*.kicad_sch"))
FIXTURES = Path(__file__).parent / "fixtures"


def sheet(name: str) -> Path:
    return P.kicad / f"{P.name}_{name}.kicad_sch"


def copy_sheets(tmp: Path) -> Path:
    for s in SHEETS:
        shutil.copyfile(s, tmp / s.name)
    return tmp / P.schematic.name


def load(path: Path) -> list:
    tree, _ = sexpr.parse_at(path.read_text(), 0)
    return tree


def save(path: Path, tree: list) -> None:
    path.write_text(sexpr.dump(tree) + "\n")


def symbol(tree, ref: str) -> list:
    for s in sexpr.children(tree, "symbol"):
        if any(p[1] == "Reference" and p[2] == ref for p in sexpr.children(s, "property")):
            return s
    raise AssertionError(f"no symbol {ref}")


def field(sym, name: str) -> list:
    return next(p for p in sexpr.children(sym, "property") if p[1] == name)


def export_netlist(top: Path) -> Path:
    out = top.parent / "k.net"
    kicad.cli("sch", "export", "netlist", "--format", "kicadsexpr", "-o", out, top.name,
              cwd=top.parent)
    return out


# --- the committed sheets ---------------------------------------------------------------------
def test_the_sheets_hold_to_the_rules():
    report = rules.check(SHEETS, P.netlist)
    assert report["violations"] == [], "\n".join(report["violations"])
    figures = report["sheets"]
    assert set(figures) == {s.name for s in SHEETS}
    for name, f in figures.items():
        assert f["paper"] in ("A5", "A4", "A3"), name
    # the block diagram, and the sheets with chips, carry their decoupling
    assert figures[sheet("mcu").name]["decoupling_mm"].keys() == {"C10", "C11"}
    # the buck's input capacitor at its IN pin (its output ones sit at the inductor, not a pin)
    assert figures[sheet("rail_3v3").name]["decoupling_pin"] == {"C4": "U3.3"}
    print(json.dumps(rules.summary(report), indent=1))


def test_the_report_holds_the_figures():
    report = json.loads((P.reports / "schematic.json").read_text())
    assert report == rules.summary(rules.check(SHEETS, P.netlist))
    assert report["max_decoupling_mm"] <= rules.DECOUPLING_MAX
    assert report["min_text_gap_mm"] > 0


def test_the_top_sheet_wires_its_blocks():
    """Every sheet pin of the top sheet is wired, power and signals alike."""
    tree = sexpr.parse(P.schematic.read_text())
    boxes = sexpr.children(tree, "sheet")
    assert {sexpr.child(b, "property")[2] for b in boxes} == \
        {s.name.removeprefix(f"{P.name}_").removesuffix(".kicad_sch") for s in SHEETS[1:]}
    ends = set()
    for w in sexpr.children(tree, "wire"):
        for xy in sexpr.children(sexpr.child(w, "pts"), "xy"):
            ends.add((float(xy[1]), float(xy[2])))
    pins = [(b, p) for b in boxes for p in sexpr.children(b, "pin")]
    assert len(pins) > 30
    unwired = [p[1] for _b, p in pins if (float(sexpr.child(p, "at")[1]),
                                          float(sexpr.child(p, "at")[2])) not in ends]
    assert unwired == []
    names = {p[1] for _b, p in pins}
    assert {"+5V", "+3V3", "MTR_CS", "USB_DP", "CAM_D0"} <= names


def test_no_net_is_auto_named():
    nets = read_netlist(P.netlist).nets
    assert rules.net_names(nets) == []
    assert "/power_input/USB_CC1" in nets and "/power_input/USB_CC2" in nets
    assert not [n for n in nets if "N$" in n or n.startswith("Net-(")]


# --- each rule fails on a sheet broken on purpose ---------------------------------------------
def test_a_text_moved_onto_another_fails(tmp_path):
    path = tmp_path / sheet("mcu").name
    shutil.copyfile(sheet("mcu"), path)
    tree = load(path)
    target = sexpr.child(field(symbol(tree, "C11"), "Value"), "at")
    at = sexpr.child(field(symbol(tree, "C10"), "Value"), "at")
    at[1], at[2] = target[1], target[2]
    save(path, tree)
    bad = rules.text_overlaps(rules.read_sheet(path))
    assert any("C10 Value" in b and "C11 Value" in b for b in bad), bad
    assert rules.text_overlaps(rules.read_sheet(sheet("mcu"))) == []


def test_a_text_on_a_body_or_a_wire_fails(tmp_path):
    path = tmp_path / sheet("rail_3v3").name
    shutil.copyfile(sheet("rail_3v3"), path)
    tree = load(path)
    u3 = symbol(tree, "U3")
    at = sexpr.child(field(u3, "Reference"), "at")
    origin = sexpr.child(u3, "at")
    at[1], at[2] = origin[1], origin[2]  # the reference in the middle of the chip
    wire = sexpr.children(sexpr.child(sexpr.children(tree, "wire")[0], "pts"), "xy")
    vat = sexpr.child(field(symbol(tree, "C2"), "Value"), "at")
    vat[1], vat[2] = wire[0][1], wire[0][2]  # a value on a wire
    save(path, tree)
    bad = rules.text_overlaps(rules.read_sheet(path))
    assert any("U3 Reference" in b and "body of U3" in b for b in bad), bad
    assert any("C2 Value" in b and "wire" in b for b in bad), bad


def test_a_small_drawing_on_a_big_paper_fails(tmp_path):
    path = tmp_path / sheet("rail_3v3").name
    shutil.copyfile(sheet("rail_3v3"), path)
    tree = load(path)
    sexpr.child(tree, "paper")[1] = Q("A3")
    save(path, tree)
    geo = rules.read_sheet(path)
    assert rules.fill(geo) < rules.FILL_MIN
    assert rules.fits_smaller(geo) == "A4"
    report = rules.check([path], P.netlist)
    assert any("fills" in v for v in report["violations"]), report["violations"]
    assert any("would fit A4" in v for v in report["violations"]), report["violations"]


def test_a_decoupling_cap_joined_by_label_or_far_away_fails(tmp_path):
    path = tmp_path / sheet("mcu").name
    shutil.copyfile(sheet("mcu"), path)
    tree = load(path)
    geo = rules.read_sheet(path)
    pin = next(p.point for p in geo.pins if p.ref == "C11" and p.number == "1")
    # cut C11 off the pin's line: its wires go, a +3V3 label would still join the net
    kept = [x for x in tree if not (isinstance(x, list) and x[0] == "wire" and any(
        (float(xy[1]), float(xy[2])) == pin for xy in sexpr.children(sexpr.child(x, "pts"), "xy")))]
    save(path, kept)
    net = {(r, p): n for n, nodes in read_netlist(P.netlist).nets.items() for r, p in nodes}
    bad, _ = rules.decoupling(rules.read_sheet(path), net)
    assert any(b.startswith("C11 on +3V3 is not wired") for b in bad), bad
    # wired, but 40 mm away: C11 and its ground symbol move, a wire reaches back
    tree = load(sheet("mcu"))
    c11 = symbol(tree, "C11")
    at = sexpr.child(c11, "at")
    at[1] = float(at[1]) + 40.64
    for f in sexpr.children(c11, "property"):
        f_at = sexpr.child(f, "at")
        f_at[1] = float(f_at[1]) + 40.64
    new_pin = (pin[0] + 40.64, pin[1])
    tree.append(["wire", ["pts", ["xy", pin[0], pin[1]], ["xy", new_pin[0], new_pin[1]]],
                 ["stroke", ["width", 0], ["type", "default"]], ["uuid", Q("0" * 8 + "-0000-5000-8000-" + "0" * 12)]])
    save(path, tree)
    bad, dist = rules.decoupling(rules.read_sheet(path), net)
    assert any(b.startswith("C11 is") and "from U1.2" in b for b in bad), bad
    assert dist["C11"][1] > rules.DECOUPLING_MAX


def test_a_net_that_loses_its_label_is_auto_named_and_fails(tmp_path):
    top = copy_sheets(tmp_path)
    path = tmp_path / sheet("mcu").name
    tree = load(path)
    tree = [x for x in tree if not (isinstance(x, list) and x[0] == "label" and x[1] == "EN")]
    save(path, tree)
    nets = read_netlist(export_netlist(top)).nets
    bad = rules.net_names(nets)
    assert any("Net-(" in b and "U1.3" in b for b in bad), bad


def test_erc_fails_on_a_broken_sheet(tmp_path):
    top = copy_sheets(tmp_path)
    assert netlist.run_kicad_erc(top)["violations"] == []
    path = tmp_path / sheet("power_input").name
    tree = load(path)
    # the flag that says +5V is driven (through D1 and Q1, which ERC cannot see) goes
    flag = next(s for s in sexpr.children(tree, "symbol")
                if sexpr.value(s, "lib_id") == "power:PWR_FLAG" and
                any(p[1] == "Reference" and p[2] == "#FLG02" for p in sexpr.children(s, "property")))
    tree.remove(flag)
    save(path, tree)
    violations = netlist.run_kicad_erc(top)["violations"]
    assert any("power_pin_not_driven" in v for v in violations), violations


# --- the metrics the rules work from are KiCad's ---------------------------------------------
def _svg_ink(svg: Path) -> list[tuple[float, float, float, float]]:
    """Extents of every stroked path in an Eeschema SVG plot (mm), pen included."""
    out = []
    text = svg.read_text()
    for d in re.findall(r'<path[^>]*\sd="([^"]*)"', text) + \
            re.findall(r'<polyline[^>]*points="([^"]*)"', text):
        nums = [float(v) for v in re.findall(r"-?\d+\.?\d*", d)]
        xs, ys = nums[0::2], nums[1::2]
        if xs and ys:
            h = 0.0762  # half of the 6 mil pen: the paths are the strokes' centre lines
            out.append((min(xs) - h, min(ys) - h, max(xs) + h, max(ys) + h))
    return out


PROBES = ["MMMM", "gjpq_y", "10uF", "ESP32-S3-WROOM-1", "V_{IN}", "~{RST}", "+3V3", "i"]


def test_text_boxes_cover_kicads_ink(tmp_path):
    """Each probe text and label is plotted by Eeschema alone in its own cell; the ink must
    lie inside the box the rules give it, and the box may not be much bigger."""
    from openmetering.schematic import writer
    from openmetering.schematic.drawing import Label, Sheet

    sh = Sheet(name="", title="probe")
    cells = []
    y = 25.4
    for text in PROBES:
        sh.texts.append((text, 50.8, y))  # left-justified and centred, as the notes are
        cells.append(("text", text, 50.8, y, "left", "center"))
        y += 6.35
        for kind, d in (("local", "right"), ("local", "left"), ("hier", "right"), ("hier", "left")):
            x = 50.8 if d == "right" else 150.0
            sh.labels.append(Label(kind, text, x, y, d, "input"))
            cells.append((kind, text, x, y, d, None))
            y += 6.35
    sh.paper = "A3"
    path = tmp_path / "probe.kicad_sch"
    path.write_text(writer.render(sh, project="probe", root_uuid="00000000-0000-5000-8000-00000000000a",
                                  sheet_uuid=None))
    kicad.cli("sch", "export", "svg", "-o", tmp_path, path.name, cwd=tmp_path)
    ink = _svg_ink(next(tmp_path.glob("*.svg")))
    for kind, text, x, y, how, _ in cells:
        if kind == "text":
            box = font.ink_box(text, x, y, 1.27, how)
        else:
            box = font.label_box(kind, text, x, y, how)
        # the ink plotted within this probe's cell (cells are 6 mm apart, 60 mm wide)
        cell = [r for r in ink if y - 3 < r[1] and r[3] < y + 3 and x - 30 < r[0] and r[2] < x + 30]
        assert cell, (kind, text)
        ix0, iy0 = min(r[0] for r in cell), min(r[1] for r in cell)
        ix1, iy1 = max(r[2] for r in cell), max(r[3] for r in cell)
        what = f"{kind} {text!r} at {x},{y}: ink {ix0:.2f},{iy0:.2f}..{ix1:.2f},{iy1:.2f} " \
               f"box {box[0]:.2f},{box[1]:.2f}..{box[2]:.2f},{box[3]:.2f}"
        tol = 0.06
        assert box[0] - tol <= ix0 and ix1 <= box[2] + tol and box[1] - tol <= iy0 and \
            iy1 <= box[3] + tol, what
        assert (ix0 - box[0]) + (box[2] - ix1) < 1.3 and (iy0 - box[1]) + (box[3] - iy1) < 0.8, what


def test_stroke_font_advances_are_kicads():
    """The width table is pcbnew's own stroke-font measure (the engine Eeschema shares)."""
    import pcbnew  # KiCad's own module, part of the set-up (the venv sees the system's)

    board = pcbnew.BOARD()
    t = pcbnew.PCB_TEXT(board)
    t.SetTextSize(pcbnew.VECTOR2I(pcbnew.FromMM(1.27), pcbnew.FromMM(1.27)))
    t.SetTextThickness(pcbnew.FromMM(0.1524))
    for text in ["GND", "+3V3", "10uF", "ESP32-S3-WROOM-1", "CAM_VSYNC", "a b", "Wi-Fi (2.4 GHz)",
                 "".join(chr(c) for c in range(33, 127))]:
        t.SetText(text)
        kicad_w = pcbnew.ToMM(t.GetBoundingBox().GetWidth())
        assert abs(font.text_width(text) - kicad_w) < 0.02, (text, font.text_width(text), kicad_w)


# --- a circuit the generator has not seen -----------------------------------------------------
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    proc = subprocess.run([sys.executable, str(FIXTURES / "synthetic_circuit.py"), str(out)],
                          capture_output=True, text=True, cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_an_unseen_circuit_is_drawn_to_the_rules(synthetic):
    top = synthetic / "synth.kicad_sch"
    assert netlist.run_kicad_erc(top)["violations"] == []
    net = export_netlist(top)
    report = rules.check(sorted(synthetic.glob("synth*.kicad_sch")), net)
    assert report["violations"] == [], "\n".join(report["violations"])
    # the 7805, the 555 and the op-amp's power unit each have their capacitor beside them
    pins = {k: v for s in report["sheets"].values() for k, v in s["decoupling_pin"].items()}
    assert pins["C2"].startswith("U1.") and pins["C3"] == "U2.8" and pins["C7"] == "U3.8"
    # every unit of the dual op-amp is drawn
    tree = sexpr.parse((synthetic / "synth_buffer.kicad_sch").read_text())
    units = sorted(sexpr.value(s, "unit") for s in sexpr.children(tree, "symbol")
                   if sexpr.value(s, "lib_id") == "Amplifier_Operational:LM358")
    assert units == ["1", "2", "3"]


def test_an_unseen_circuit_keeps_its_connectivity(synthetic):
    drawn = read_netlist(export_netlist(synthetic / "synth.kicad_sch"))
    skidl = read_netlist(synthetic / "skidl.net")

    def conn(n):
        return {frozenset(x for x in nodes if not x[0].startswith("#"))
                for nodes in n.nets.values() if len([x for x in nodes if not x[0].startswith("#")]) > 1}

    assert conn(drawn) == conn(skidl)
    assert rules.net_names(drawn.nets) == []


def test_drawing_is_deterministic(synthetic, tmp_path):
    proc = subprocess.run([sys.executable, str(FIXTURES / "synthetic_circuit.py"), str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    for f in sorted(synthetic.glob("synth*.kicad_sch")):
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f.name



# --- the cases board revision B brought -------------------------------------------------------
@pytest.fixture(scope="module")
def revb_cases(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("revb")
    proc = subprocess.run([sys.executable, str(FIXTURES / "revb_cases.py"), str(out)],
                          capture_output=True, text=True, cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _revb_report(revb_cases: Path) -> dict:
    return rules.check(sorted(revb_cases.glob("revb*.kicad_sch")), export_netlist(revb_cases / "revb.kicad_sch"))


def test_revb_cases_are_drawn_to_the_rules(revb_cases):
    """A header dense with pull-ups (its supply pin hemmed in by them, a power flag in line
    with it), a MOSFET switch, a chip with two supply pins on one rail: ERC clean, the
    connections kept, every rule but the decoupling distance (below) held."""
    top = revb_cases / "revb.kicad_sch"
    assert netlist.run_kicad_erc(top)["violations"] == []
    drawn = read_netlist(export_netlist(top))
    skidl = read_netlist(revb_cases / "skidl.net")

    def conn(n):
        return {frozenset(x for x in nodes if not x[0].startswith("#"))
                for nodes in n.nets.values() if len([x for x in nodes if not x[0].startswith("#")]) > 1}

    assert conn(drawn) == conn(skidl)
    report = _revb_report(revb_cases)
    others = [v for v in report["violations"] if " mm from " not in v]
    assert others == [], "\n".join(others)
    # each capacitor of the shared rail is wired to one of the chip's two supply pins
    pins = report["sheets"]["revb_mcu.kicad_sch"]["decoupling_pin"]
    assert {pins[c] for c in ("C1", "C2", "C3")} <= {"U1.4", "U1.6", "U1.18"}, pins


def test_revb_caps_shared_by_two_supply_pins_stay_close(revb_cases):
    """Three capacitors on two pins: one pin carries a row of two, the second within reach of
    the first (the row rule), none farther."""
    report = _revb_report(revb_cases)
    far = [v for v in report["violations"] if " mm from " in v]
    assert far == [], "\n".join(far)


# --- drawing only what changed ----------------------------------------------------------------
def _two_blocks(r1: str = "1k", sig_on: str = "R2"):
    """A supply block and an output block on two sheets (model.build: no SKiDL)."""
    from openmetering.schematic import model

    mk = model.make_part
    parts = [mk("J1", "Connector_Generic", "Conn_01x02", "IN", sheet="supply"),
             mk("R1", "Device", "R", r1, sheet="supply"),
             mk("D1", "Device", "LED", "red", sheet="supply"),
             mk("R2", "Device", "R", "10k", sheet="io"),
             mk("R3", "Device", "R", "4k7", sheet="io"),
             mk("J2", "Connector_Generic", "Conn_01x03", "OUT", sheet="io")]
    other = "R3" if sig_on == "R2" else "R2"
    return model.build("t", parts, {
        "+5V": [("J1", "1"), ("R1", "1"), ("R2", "1"), ("R3", "1")],
        "GND": [("J1", "2"), ("D1", "1"), ("J2", "3")],
        "LED_A": [("R1", "2"), ("D1", "2")],
        "SIG": [(sig_on, "2"), ("J2", "1")], "AUX": [(other, "2"), ("J2", "2")]},
        ["supply", "io"])


def _drawn(design, tmp: Path | None = None, kept=None) -> tuple[dict[str, str], list[str]]:
    from openmetering.schematic.project import generate

    log: list[str] = []
    files = generate(design, "t", kept=kept, code="c1", log=log.append)
    if tmp is not None:
        for name, text in files.items():
            (tmp / name).write_text(text)
    return files, log


def test_a_sheet_is_drawn_again_only_when_what_it_is_drawn_from_changes(tmp_path):
    base, log = _drawn(_two_blocks(), tmp_path)
    assert log == ["schematic: drew 3 of 3 sheets"]
    kept = netlist.kept_sheets(tmp_path, "t")
    assert sorted(kept) == ["t.kicad_sch", "t_io.kicad_sch", "t_supply.kicad_sch"]
    again, log = _drawn(_two_blocks(), kept=kept)
    assert again == base and log == ["schematic: drew 0 of 3 sheets; the others' inputs are unchanged"]
    # a value on the supply sheet: that sheet alone, and what a full drawing gives
    changed, log = _drawn(_two_blocks(r1="2k2"), kept=kept)
    assert log == ["schematic: drew 1 of 3 sheets (supply); the others' inputs are unchanged"]
    assert changed == _drawn(_two_blocks(r1="2k2"))[0]
    assert changed["t_io.kicad_sch"] == base["t_io.kicad_sch"]
    assert changed["t_supply.kicad_sch"] != base["t_supply.kicad_sch"]
    # two pins of the output block swap nets: its sheet and the block diagram are drawn, the
    # supply block (on neither net) is kept
    renet, log = _drawn(_two_blocks(sig_on="R3"), kept=kept)
    assert log == ["schematic: drew 2 of 3 sheets (top, io); the others' inputs are unchanged"]
    assert renet == _drawn(_two_blocks(sig_on="R3"))[0] and renet != base
    # a part of the output block joins the supply's LED net: both blocks are drawn again
    joined = _two_blocks()
    r3 = next(p for p in joined.parts if p.ref == "R3")
    led, aux = joined.net("LED_A"), joined.net("AUX")
    aux.pins.remove(r3.pins[1])
    led.pins.append(r3.pins[1])
    r3.pins[1].net = led
    out, log = _drawn(joined, kept=kept)
    assert log == ["schematic: drew 3 of 3 sheets"] and out != base
    # other drawing code: nothing is kept
    from openmetering.schematic.project import generate

    log = []
    generate(_two_blocks(), "t", kept=kept, code="c2", log=log.append)
    assert log == ["schematic: drew 3 of 3 sheets"]


def test_a_sheet_edited_by_hand_or_a_broken_record_keeps_nothing(tmp_path):
    _drawn(_two_blocks(), tmp_path)
    io = tmp_path / "t_io.kicad_sch"
    io.write_text(io.read_text().replace("10k", "22k"))
    assert sorted(netlist.kept_sheets(tmp_path, "t")) == ["t.kicad_sch", "t_supply.kicad_sch"]
    record = tmp_path / "t.sheets.json"
    for broken in ("{", "[]", '{"sheets": {"t_supply.kicad_sch": {"key": "k"}}}'):
        record.write_text(broken)
        assert netlist.kept_sheets(tmp_path, "t") == {}, broken
    record.unlink()
    assert netlist.kept_sheets(tmp_path, "t") == {}
