"""The netlist reader the board and the parity gate rely on."""

from pathlib import Path

from openmetering import kicadnet

FIX = Path(__file__).parent / "fixtures" / "synthetic.net"


def test_reads_parts_fields_and_pad_nets():
    net = kicadnet.read_netlist(FIX)
    assert net.parts["U1"].footprint == "RF_Module:ESP32-S3-WROOM-1"
    assert net.parts["C2"].value == "100n"
    assert "LCSC" in net.parts["R1"].fields
    pads = net.pad_nets()
    assert pads[("U1", "39")] == "ADC_V" and pads[("J1", "A6")] == "USB_DP_C"


def test_digest_ignores_dates_but_not_connectivity(tmp_path):
    text = FIX.read_text()
    a = tmp_path / "a.net"
    a.write_text(text.replace('(version "E")', '(version "E") (design (date "2000-01-01"))'))
    assert kicadnet.read_netlist(a).digest == kicadnet.read_netlist(FIX).digest
    b = tmp_path / "b.net"
    b.write_text(text.replace('(pin "39")', '(pin "38")', 1))
    assert kicadnet.read_netlist(b).digest != kicadnet.read_netlist(FIX).digest


def test_quoted_strings_with_escapes():
    tree = kicadnet.parse_sexpr('(a "x \\"y\\"" (b c))')
    assert tree == ["a", 'x "y"', ["b", "c"]]
