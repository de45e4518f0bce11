"""Gates on the committed board (hardware/kicad/open-meter.kicad_pcb): it is current for its
inputs, KiCad's DRC is clean, it matches the circuit's netlist pad for pad, and a planted
change in the netlist is caught."""

import dataclasses
import json
import re

import pytest

from openmetering import checks, kicadnet
from openmetering.board import build, project
from openmetering.board.layout import load_spec
from openmetering.board.routing import fnmatch_any
from openmetering.errors import CheckFailed
from openmetering.paths import project as paths_of

P = paths_of()


@pytest.fixture(scope="module")
def drc():
    if not P.pcb.exists():
        pytest.fail("no committed board: run `omd board build`")
    return checks.run_drc(P.pcb, schematic_parity=P.schematic.exists())


def test_committed_board_matches_its_inputs():
    # the input record says which netlist/spec/rules/router made the board
    build.verify(P)


def test_verify_names_what_changed(tmp_path):
    record = json.loads(P.board_record.read_text())
    record["spec_sha256"] = record["inputs_sha256"] = "0" * 64  # as after a spec edit
    fake = dataclasses.replace(P, kicad=tmp_path)
    fake.pcb.write_bytes(P.pcb.read_bytes())
    fake.netlist.write_bytes(P.netlist.read_bytes())
    fake.board_record.write_text(json.dumps(record))
    with pytest.raises(CheckFailed, match=r"stale: .*spec_sha256.* changed"):
        build.verify(fake)


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
    if not P.schematic.exists():
        pytest.fail("no schematic: KiCad's parity check would pass silently")
    assert drc["schematic_parity"] == [], "\n".join(map(checks.describe, drc["schematic_parity"]))


def test_board_matches_circuit_netlist():
    diffs = checks.parity(P.pcb, P.netlist)
    assert diffs == [], "\n".join(diffs)


def test_parity_catches_a_planted_change(tmp_path):
    net = kicadnet.read_netlist(P.netlist)
    # move one resistor pad from its net to another signal net, as a wrong edit would
    ref, pin, old = next((r, p, n) for n, nodes in sorted(net.nets.items()) for r, p in nodes
                         if r.startswith("R") and n != "GND" and len(nodes) > 1)
    new = "GND"
    text = P.netlist.read_text()
    node = re.compile(rf'\(node \(ref "{re.escape(ref)}"\)\s*\(pin "{re.escape(pin)}"\)(?:\s*\([^()]*\))*\s*\)')
    m = node.search(text)
    assert m, f"cannot find node {ref}.{pin} in the netlist"
    moved = text[:m.start()] + text[m.end():]
    gnd = re.search(r'\(net \(code "\d+"\)\s*\(name "GND"\)', moved)
    planted = moved[:gnd.end()] + f' (node (ref "{ref}") (pin "{pin}"))' + moved[gnd.end():]
    bad = tmp_path / "planted.net"
    bad.write_text(planted)
    assert kicadnet.read_netlist(bad).pad_nets()[(ref, pin)] == new
    diffs = checks.parity(P.pcb, bad)
    assert f"{ref} pad {pin}: board {old}, netlist {new}" in diffs
    # and a changed value is reported too
    val = net.parts[ref].value
    bad.write_text(re.sub(rf'(\(ref "{re.escape(ref)}"\)\s*\(value ")[^"]*', r"\g<1>999k", text, count=1))
    assert f"{ref} value: board {val}, netlist 999k" in checks.parity(P.pcb, bad)


def test_order_fields_never_print():
    text = P.pcb.read_text()
    for m in re.finditer(r'\(property "(LCSC|MPN)" "[^"]*"(.*?)\n\t\t\)', text, re.S):
        assert "(hide yes)" in m.group(2), m.group(0)[:80]


def test_power_nets_are_wide():
    spec = load_spec(P.placement)
    text = P.pcb.read_text()
    widths = {}
    for m in re.finditer(r'\(segment\s+\(start [^)]*\)\s+\(end [^)]*\)\s+\(width ([\d.]+)\)\s+\(layer "[^"]*"\)\s+\(net (\d+)\)', text):
        widths.setdefault(int(m.group(2)), []).append(float(m.group(1)))
    names = {int(c): n for c, n in re.findall(r'^\t\(net (\d+) "([^"]*)"\)', text, re.M)}
    power = {c for c, n in names.items() if fnmatch_any(n, spec["netclass"]["Power"]["nets"])}
    pw = [w for c in power for w in widths.get(c, [])]
    assert pw, "no power tracks found"
    assert min(pw) >= 0.2
    # necking down is for the last millimetres at fine-pitch pads only
    assert sum(w >= 0.5 for w in pw) / len(pw) > 0.6
    assert min(w for ws in widths.values() for w in ws) >= 0.2


def test_project_file_is_what_the_spec_says(tmp_path):
    out = tmp_path / "open-meter.kicad_pro"
    project.write_project(load_spec(P.placement), out)
    assert out.read_text() == P.board_project.read_text()
    classes = {c["name"]: c for c in json.loads(out.read_text())["net_settings"]["classes"]}
    assert classes["Power"]["track_width"] >= 0.5 and classes["Default"]["track_width"] >= 0.2


def test_placement_preview_is_byte_identical(tmp_path):
    """The KiCad-writing step is deterministic: two placement-only builds, same bytes."""
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}" / P.pcb.name
        build.build(P, netlist=P.netlist, out=out, place_only=True, no_pour=True,
                    log=lambda *_: None)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert b"(segment" not in outs[0] and b"(zone" in outs[0]  # keep-outs only, no tracks


def test_a_preview_cannot_replace_the_committed_board():
    from openmetering.errors import DesignError

    with pytest.raises(DesignError, match="preview cannot replace"):
        build.build(P, out=P.pcb, place_only=True)


def test_pictures_exist_for_the_docs():
    for name in ("open-meter-top.png", "open-meter-bottom.png", "open-meter-front.svg", "open-meter-back.svg"):
        p = P.board_pictures / name
        assert p.exists() and p.stat().st_size > 10_000, p


def test_antenna_hangs_over_the_top_edge():
    # Espressif: antenna outside the base board; the module sits with its antenna root on the edge
    spec = load_spec(P.placement)
    u1 = spec["parts"]["U1"]
    assert u1["rot"] == 0 and abs(u1["at"][1] - 6.75) < 1e-9

