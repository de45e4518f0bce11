"""The simulator's front end is the board's: each part value it models equals the committed
netlist's, and its voltage paths give the gain and phase that the design assertions' nodal
analysis of the netlist gives (so the accuracy benchmark runs on the board as built)."""

import cmath
import math

import pytest

from openmetering import assertions
from openmetering import parts as catalogue
from openmetering.kicadnet import read_netlist
from openmetering.paths import project
from sim import sensors

P = project()


@pytest.fixture(scope="module")
def design():
    board = assertions.Board.of(read_netlist(P.netlist))
    return board, catalogue.load(P.parts)


def _fact(design, ref, key):
    board, cat = design
    return float(assertions._entry(board, cat, ref).facts[key])


# (ref, its value in the simulator); divider lower legs follow from the ratio
PARTS = [
    ("C55", "farads", sensors.ZMPT_COUPLE_C),
    ("R60", "ohms", sensors.ZMPT_R_TOP),
    ("R62", "ohms", sensors.ADAPTER_R_TOP),
    ("R64", "ohms", sensors.ADAPTER_LAG_R),
    ("C56", "farads", sensors.ADAPTER_LAG_C),
    ("R65", "ohms", sensors.AA_R),
    ("C57", "farads", sensors.AA_C),
]


@pytest.mark.parametrize("ref,key,value", PARTS, ids=[p[0] for p in PARTS])
def test_each_modelled_part_is_the_netlists(design, ref, key, value):
    assert _fact(design, ref, key) == pytest.approx(value, rel=1e-9), ref


@pytest.mark.parametrize("top,bottom,ratio", [
    ("R60", "R61", sensors.ZMPT_DIVIDER), ("R62", "R63", sensors.ADAPTER_DIVIDER)])
def test_the_dividers_are_the_netlists(design, top, bottom, ratio):
    rt, rb = _fact(design, top, "ohms"), _fact(design, bottom, "ohms")
    assert rb / (rt + rb) == pytest.approx(ratio, rel=1e-9)


@pytest.mark.parametrize("f", [50.0, 60.0])
@pytest.mark.parametrize("source,path", [("J3", sensors.zmpt_path),
                                         ("J10", sensors.adapter_path)], ids=["zmpt", "adapter"])
def test_voltage_paths_match_the_nodal_analysis(design, f, source, path):
    board, cat = design
    rows = [r for r in assertions.chip_channels(board, cat, f)
            if r["channel"] == "V1" and r["source"].startswith(source + ".")]
    assert len(rows) == 1, rows
    h = path(f)
    assert abs(h) == pytest.approx(rows[0]["gain"], rel=1e-4)
    assert math.degrees(cmath.phase(h)) == pytest.approx(rows[0]["phase_deg"], abs=0.01)
