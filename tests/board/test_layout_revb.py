"""Layout rules of board revision B, checked on the committed board: no drill below JLCPCB's
0.3 mm two-layer minimum (board and panel), decoupling and the EN RC at their pins, an
unbroken ground under the camera bus and the metering chip's analog inputs, and every
connector and test point labelled on the silkscreen."""

import math
import re

import pytest

from openmetering.board.layout import load_spec
from openmetering.paths import project

P = project()
SPEC = load_spec(P.board_inputs / "placement.toml")
MIN_DRILL = SPEC["rules"]["min_drill"]
PANEL = P.fab / "panel" / "open-meter-panel.kicad_pcb"


def _drills(pcb_text: str) -> list[float]:
    """Every drill diameter (an oval's smaller side) of a .kicad_pcb file."""
    out = []
    for m in re.finditer(r"\(drill (oval )?([\d.]+)(?: ([\d.]+))?", pcb_text):
        sizes = [float(m.group(2))] + ([float(m.group(3))] if m.group(3) else [])
        out.append(min(sizes))
    return out


def test_rules_are_jlcpcb_two_layer():
    assert MIN_DRILL == 0.3 and SPEC["rules"]["min_via_diameter"] == 0.6
    assert SPEC["routing"]["via_drill"] >= MIN_DRILL


@pytest.mark.parametrize("path", [P.pcb, PANEL], ids=["board", "panel"])
def test_no_drill_below_the_two_layer_minimum(path):
    drills = _drills(path.read_text())
    assert len(drills) > 50
    small = sorted({d for d in drills if d < MIN_DRILL - 1e-9})
    assert small == [], f"{path.name}: drills below {MIN_DRILL} mm: {small}"


def test_the_drill_check_sees_a_small_drill():
    assert _drills('(pad "41" thru_hole circle (at 1 2) (size 0.6 0.6) (drill 0.2)') == [0.2]
    assert _drills("(pad 1 thru_hole oval (drill oval 0.6 1.2)") == [0.6]


@pytest.fixture(scope="module")
def board():
    import pcbnew

    return pcbnew.LoadBoard(str(P.pcb))


def _pads(board, ref):
    fp = board.FindFootprintByReference(ref)
    assert fp is not None, ref
    return list(fp.Pads())


def _gap_mm(a, b) -> float:
    """Edge-to-edge distance between two pads (their bounding boxes)."""
    import pcbnew

    ba, bb = a.GetBoundingBox(), b.GetBoundingBox()
    dx = max(0, max(ba.GetLeft(), bb.GetLeft()) - min(ba.GetRight(), bb.GetRight()))
    dy = max(0, max(ba.GetTop(), bb.GetTop()) - min(ba.GetBottom(), bb.GetBottom()))
    return pcbnew.ToMM(int(math.hypot(dx, dy)))


DECOUPLING = [  # (capacitor, the chip and pad it serves)
    ("C40", "U7", "1"), ("C42", "U7", "48"), ("C43", "U7", "42"), ("C45", "U7", "11"),
    ("C11", "U1", "2"), ("C33", "J5", "14"), ("C31", "U4", "5"), ("C32", "U5", "5"),
    ("C4", "U3", "3"),
]


@pytest.mark.parametrize("cap,chip,pad", DECOUPLING)
def test_decoupling_within_3_mm_of_its_pin(board, cap, chip, pad):
    target = next(p for p in _pads(board, chip) if p.GetNumber() == pad)
    near = min(_gap_mm(p, target) for p in _pads(board, cap)
               if p.GetNetname() == target.GetNetname() or p.GetNetname() == "GND")
    assert near <= 3.0, f"{cap} is {near:.2f} mm from {chip} pad {pad}"


def test_en_rc_at_the_pin(board):
    en = next(p for p in _pads(board, "U1") if p.GetNumber() == "3")
    for ref in ("C12", "R10"):
        gap = min(_gap_mm(p, en) for p in _pads(board, ref) if p.GetNetname() == en.GetNetname())
        assert gap <= 3.0, f"{ref} is {gap:.2f} mm from the EN pin"


def _in_rect(x, y, rect) -> bool:
    x0, y0, x1, y1 = rect
    return x0 <= x <= x1 and y0 <= y <= y1


def _local(board, pt):
    import pcbnew

    ox, oy = SPEC["board"]["origin"]
    return pcbnew.ToMM(pt.x) - ox, pcbnew.ToMM(pt.y) - oy


@pytest.mark.parametrize("area", SPEC["quiet"], ids=lambda a: a["name"])
def test_ground_under_the_quiet_areas_is_unbroken(board, area):
    """No signal track on the bottom layer crosses the area (its ground stays one plane), and
    stitching vias tie it to the top pour."""
    import pcbnew

    bad, vias = [], 0
    for t in board.GetTracks():
        if t.GetNetname() == "GND":
            if t.Type() == pcbnew.PCB_VIA_T and _in_rect(*_local(board, t.GetPosition()), area["rect"]):
                vias += 1
            continue
        if t.Type() == pcbnew.PCB_VIA_T or t.GetLayer() != pcbnew.B_Cu:
            continue
        a, b = _local(board, t.GetStart()), _local(board, t.GetEnd())
        for k in range(11):
            x = a[0] + (b[0] - a[0]) * k / 10
            y = a[1] + (b[1] - a[1]) * k / 10
            if _in_rect(x, y, area["rect"]):
                bad.append(f"{t.GetNetname()} at ({x:.1f}, {y:.1f})")
                break
    assert bad == [], f"bottom-layer signal tracks in {area['name']}: {bad[:5]}"
    assert vias >= 2, f"only {vias} GND stitching vias in {area['name']}"


LABELS = ["CT1 SOLAR", "CT2 GRID", "9VAC", "ZMPT101B", "ACS712", "5V IN", "USB 5V", "I2C",
          "UART"]


def test_connectors_and_test_points_are_labelled(board):
    import pcbnew

    texts = {d.GetText() for d in board.GetDrawings()
             if isinstance(d, pcbnew.PCB_TEXT) and d.GetLayer() == pcbnew.F_SilkS}
    missing = [t for t in LABELS if t not in texts]
    assert missing == [], missing
    tps = [f.GetReference() for f in board.GetFootprints() if f.GetReference().startswith("TP")]
    labelled = {pl["ref"] for pl in SPEC.get("pin_labels", [])}
    assert tps and set(tps) <= labelled, sorted(set(tps) - labelled)


@pytest.mark.parametrize("esc", SPEC["routing"].get("escape", []), ids=lambda e: e["pad"])
def test_routing_escapes_are_on_the_board(board, esc):
    """Each escape of the spec is on the board as its stub from the pad through its points,
    and ends in a via exactly where one belongs: at a `via` end of the poured net (which
    always keeps it), never at a `to` end."""
    import pcbnew

    ref, _, number = esc["pad"].partition(".")
    pad = next(p for p in _pads(board, ref) if p.GetNumber() == number)
    end = tuple(esc.get("via") or esc["to"])
    points = [_local(board, pad.GetPosition()), *map(tuple, esc.get("through", [])), end]
    segments = {(tuple(round(v, 3) for v in _local(board, t.GetStart())),
                 tuple(round(v, 3) for v in _local(board, t.GetEnd())))
                for t in board.GetTracks() if t.Type() == pcbnew.PCB_TRACE_T
                and t.GetNetname() == pad.GetNetname() and t.GetLayer() == pcbnew.F_Cu}
    for a, b in zip(points, points[1:]):
        a, b = tuple(round(v, 3) for v in a), tuple(round(v, 3) for v in b)
        assert (a, b) in segments or (b, a) in segments, f"{esc['pad']}: no stub {a} -> {b}"
    vias = [t for t in board.GetTracks() if t.Type() == pcbnew.PCB_VIA_T
            and math.dist(_local(board, t.GetPosition()), end) < 1e-3]
    if "to" in esc:
        assert vias == [], f"{esc['pad']}: a via at its top-layer lead-out end {end}"
    elif pad.GetNetname() == SPEC["zones"]["net"]:
        assert len(vias) == 1, f"{esc['pad']}: its escape via at {end} is missing"


def test_an_escape_names_one_kind_of_end():
    from openmetering.board import routing
    from openmetering.errors import DesignError

    with pytest.raises(DesignError, match="J5.13.*exactly one of via"):
        routing._escape(None, {"pad": "J5.13", "via": [1, 2], "to": [1, 2], "width": 0.2})
    with pytest.raises(DesignError, match="exactly one of via"):
        routing._escape(None, {"pad": "J5.13", "width": 0.2})
