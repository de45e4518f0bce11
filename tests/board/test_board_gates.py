"""Gates on the committed board (hardware/kicad/open-meter.kicad_pcb): it is current for its
inputs, KiCad's DRC is clean, it matches the circuit's netlist pad for pad, and a planted
change in the netlist is caught."""

import json
import re
import subprocess
import sys

import pytest

from openmetering import board as B
from openmetering import checks, kicadnet


@pytest.fixture(scope="module")
def drc():
    if not B.PCB.exists():
        pytest.fail("no committed board: run `python -m openmetering.board build`")
    return checks.run_drc(B.PCB, schematic_parity=B.SCHEMATIC.exists())


def test_committed_board_matches_its_inputs():
    # the input record says which netlist/spec/rules/router made the board
    assert B.verify() == 0


def test_drc_has_no_errors_and_nothing_unconnected(drc):
    errors = [checks.describe(v) for v in drc["violations"] if v["severity"] == "error"]
    unconnected = [checks.describe(v) for v in drc["unconnected_items"]]
    assert errors == [] and unconnected == [], "\n".join(errors + unconnected)
    assert drc["exit_code"] == 0


def test_drc_has_no_warnings_left(drc):
    # warnings are either fixed or switched off in the project's rule severities with a reason
    warnings = [checks.describe(v) for v in drc["violations"] if v["severity"] != "error"]
    assert warnings == [], "\n".join(warnings)


def test_kicad_schematic_parity_is_clean(drc):
    if not B.SCHEMATIC.exists():
        pytest.fail("no schematic: KiCad's parity check would pass silently")
    assert drc["schematic_parity"] == [], "\n".join(map(checks.describe, drc["schematic_parity"]))


def test_board_matches_circuit_netlist():
    diffs = checks.parity(B.PCB, B.NETLIST)
    assert diffs == [], "\n".join(diffs)


def test_parity_catches_a_planted_change(tmp_path):
    net = kicadnet.read_netlist(B.NETLIST)
    # move one resistor pad from its net to another signal net, as a wrong edit would
    ref, pin, old = next((r, p, n) for n, nodes in sorted(net.nets.items()) for r, p in nodes
                         if r.startswith("R") and n != "GND" and len(nodes) > 1)
    new = "GND"
    text = B.NETLIST.read_text()
    node = re.compile(rf'\(node \(ref "{re.escape(ref)}"\)\s*\(pin "{re.escape(pin)}"\)(?:\s*\([^()]*\))*\s*\)')
    m = node.search(text)
    assert m, f"cannot find node {ref}.{pin} in the netlist"
    moved = text[:m.start()] + text[m.end():]
    gnd = re.search(r'\(net \(code "\d+"\)\s*\(name "GND"\)', moved)
    planted = moved[:gnd.end()] + f' (node (ref "{ref}") (pin "{pin}"))' + moved[gnd.end():]
    bad = tmp_path / "planted.net"
    bad.write_text(planted)
    assert kicadnet.read_netlist(bad).pad_nets()[(ref, pin)] == new
    diffs = checks.parity(B.PCB, bad)
    assert f"{ref} pad {pin}: board {old}, netlist {new}" in diffs
    # and a changed value is reported too
    val = net.parts[ref].value
    bad.write_text(re.sub(rf'(\(ref "{re.escape(ref)}"\)\s*\(value ")[^"]*', r"\g<1>999k", text, count=1))
    assert f"{ref} value: board {val}, netlist 999k" in checks.parity(B.PCB, bad)


def test_order_fields_never_print():
    text = B.PCB.read_text()
    for m in re.finditer(r'\(property "(LCSC|MPN)" "[^"]*"(.*?)\n\t\t\)', text, re.S):
        assert "(hide yes)" in m.group(2), m.group(0)[:80]


def test_power_nets_are_wide():
    spec = B.load_spec()
    text = B.PCB.read_text()
    widths = {}
    for m in re.finditer(r'\(segment\s+\(start [^)]*\)\s+\(end [^)]*\)\s+\(width ([\d.]+)\)\s+\(layer "[^"]*"\)\s+\(net (\d+)\)', text):
        widths.setdefault(int(m.group(2)), []).append(float(m.group(1)))
    names = {int(c): n for c, n in re.findall(r'^\t\(net (\d+) "([^"]*)"\)', text, re.M)}
    power = {c for c, n in names.items() if B.fnmatch_any(n, spec["netclass"]["Power"]["nets"])}
    pw = [w for c in power for w in widths.get(c, [])]
    assert pw, "no power tracks found"
    assert min(pw) >= 0.2
    # necking down is for the last millimetres at fine-pitch pads only
    assert sum(w >= 0.5 for w in pw) / len(pw) > 0.6
    assert min(w for ws in widths.values() for w in ws) >= 0.2


def test_project_file_is_what_the_spec_says(tmp_path):
    out = tmp_path / "open-meter.kicad_pro"
    B.write_project(B.load_spec(), out)
    assert out.read_text() == B.PCB.with_suffix(".kicad_pro").read_text()
    classes = {c["name"]: c for c in json.loads(out.read_text())["net_settings"]["classes"]}
    assert classes["Power"]["track_width"] >= 0.5 and classes["Default"]["track_width"] >= 0.2


def test_placement_preview_is_byte_identical(tmp_path):
    """The KiCad-writing step is deterministic: two placement-only builds, same bytes."""
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}.kicad_pcb"
        env = B.frozen_env()
        env["OMD_PLACE_ONLY"] = "1"
        env["OMD_NO_POUR"] = "1"
        subprocess.run([sys.executable, "-m", "openmetering.board", "_inner", str(B.NETLIST), str(out),
                        str(tmp_path / f"p{k}.json")], check=True, env=env, cwd=B.ROOT, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_pictures_exist_for_the_docs():
    for name in ("open-meter-top.png", "open-meter-bottom.png", "open-meter-front.svg", "open-meter-back.svg"):
        p = B.PICTURES / name
        assert p.exists() and p.stat().st_size > 10_000, p


def test_antenna_hangs_over_the_top_edge():
    # Espressif: antenna outside the base board; the module sits with its antenna root on the edge
    spec = B.load_spec()
    u1 = spec["parts"]["U1"]
    assert u1["rot"] == 0 and abs(u1["at"][1] - 6.75) < 1e-9

