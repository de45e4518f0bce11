"""The camera FPC's pad-to-net order, held to a known-good board's table, not to the circuit's
own (a mirrored ribbon puts 1.2 V on camera DGND and 2.8/3.3 V on data lines).

The table is the AI-Thinker ESP32-CAM's camera connector (schematic V1.6, connector Cam1,
24 pins 0.5 mm): its pad n meets OV2640 module contact 25 - n, the module's ribbon entering
contacts down into a bottom-contact connector. UC Berkeley's PolymorphicBlocks
(edg/parts/sensor/Camera_Ov2640_Fpc24.py, commit 9c698579) gives the same table for the same
JUSHUO AFC01-S24FCA-00 bottom-contact connector on KiCad's Hirose FH12-24S footprint, which
is this board's land pattern. The module's own numbering (drawing HDF3M-811: 1 STROBE,
2 AGND, 3 SIO_D, ... 24 Y0) is the same table read from the other end.
"""

import pytest

from openmetering.kicadnet import read_netlist
from openmetering.paths import project

P = project()

# ESP32-CAM V1.6 Cam1: connector pad -> OV2640 signal
KNOWN_GOOD = {
    1: "Y0", 2: "Y1", 3: "Y4", 4: "Y3", 5: "Y5", 6: "Y2", 7: "Y6", 8: "PCLK", 9: "Y7",
    10: "DGND", 11: "Y8", 12: "XCLK", 13: "Y9", 14: "DOVDD", 15: "DVDD", 16: "HREF",
    17: "PWDN", 18: "VSYNC", 19: "RESET", 20: "SIO_C", 21: "AVDD", 22: "SIO_D", 23: "AGND",
    24: "NC",
}
# OV2640 module drawing HDF3M-811, ribbon contact -> signal
MODULE = {
    1: "STROBE", 2: "AGND", 3: "SIO_D", 4: "AVDD", 5: "SIO_C", 6: "RESET", 7: "VSYNC",
    8: "PWDN", 9: "HREF", 10: "DVDD", 11: "DOVDD", 12: "Y9", 13: "XCLK", 14: "Y8", 15: "DGND",
    16: "Y7", 17: "PCLK", 18: "Y6", 19: "Y2", 20: "Y5", 21: "Y3", 22: "Y4", 23: "Y1", 24: "Y0",
}
# what each camera signal must meet on this board (DVP bus Y2..Y9 = CAM_D0..CAM_D7;
# the 8-bit bus leaves Y0/Y1 open, STROBE/NC open)
NET_OF = {
    "AGND": "GND", "DGND": "GND", "AVDD": "+2V8", "DVDD": "+1V2", "DOVDD": "+3V3",
    "SIO_D": "CAM_SIOD", "SIO_C": "CAM_SIOC", "RESET": "CAM_RESET", "VSYNC": "CAM_VSYNC",
    "PWDN": "CAM_PWDN", "HREF": "CAM_HREF", "XCLK": "CAM_XCLK", "PCLK": "CAM_PCLK",
    **{f"Y{k}": f"CAM_D{k - 2}" for k in range(2, 10)},
}


def _fpc_nets(net, ref="J5"):
    out = {}
    for name, nodes in net.signal_nets().items():
        for r, pin in nodes:
            if r == ref:
                out[int(pin)] = name
    return out


def _check(fpc: dict[int, str], table: dict[int, str]) -> list[str]:
    bad = []
    for pad, signal in sorted(table.items()):
        want = NET_OF.get(signal)
        got = fpc.get(pad)
        got = None if got is None or got.startswith("unconnected-") else got
        if got != want:
            bad.append(f"J5 pad {pad} ({signal}): on {got}, the known-good board has {want}")
    return bad


def test_the_two_cited_tables_agree():
    """The connector table is the module's read from the other end (pad n = contact 25 - n)."""
    for pad, signal in KNOWN_GOOD.items():
        assert MODULE[25 - pad] in (signal, "STROBE") or signal == "NC", pad


def test_netlist_matches_the_known_good_board():
    fpc = _fpc_nets(read_netlist(P.netlist))
    assert len(fpc) >= 20
    assert _check(fpc, KNOWN_GOOD) == []


def test_a_mirrored_ribbon_is_caught():
    """The rev A numbering (module contacts on the pads): the check names the pads."""
    fpc = _fpc_nets(read_netlist(P.netlist))
    mirrored = {25 - pad: name for pad, name in fpc.items()}
    bad = _check(mirrored, KNOWN_GOOD)
    assert any(b.startswith("J5 pad 15 (DVDD): on GND") for b in bad), bad
    assert any(b.startswith("J5 pad 10 (DGND): on +1V2") for b in bad), bad


@pytest.mark.parametrize("rail,pad", [("+2V8", 21), ("+1V2", 15), ("+3V3", 14), ("GND", 10),
                                       ("GND", 23)])
def test_catalogue_rails_are_in_pad_numbering(rail, pad):
    """The FPC's catalogue rails (checked by the design assertions) name connector pads."""
    from openmetering import parts

    rails = parts.load()["fpc_24"].facts["rails"]
    assert rails[str(pad)] == rail
