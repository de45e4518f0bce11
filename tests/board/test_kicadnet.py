"""The netlist reader the board and the parity gate rely on."""

from pathlib import Path

import pytest

from openmetering import kicadnet, sexpr
from openmetering.errors import DesignError

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
    tree = sexpr.parse('(a "x \\"y\\"" (b c))')
    assert tree == ["a", 'x "y"', ["b", "c"]]


def test_unbalanced_input_is_a_clear_error():
    with pytest.raises(DesignError, match="unbalanced"):
        sexpr.parse("(a (b c)")
    with pytest.raises(DesignError, match="unbalanced"):
        sexpr.parse("(a))")


def test_pin_functions_and_design_net_names(tmp_path):
    p = tmp_path / "n.net"
    p.write_text("""(export (version "E") (nets
      (net (code "1") (name "/mcu/ADC_V")
        (node (ref "U1") (pin "39") (pinfunction "IO1") (pintype "bidirectional"))
        (node (ref "R10") (pin "2") (pintype "passive")))
      (net (code "2") (name "Net-(R1-Pad1)") (node (ref "R1") (pin "1")))))""")
    net = kicadnet.read_netlist(p)
    assert net.pin_function("U1", "39") == "IO1" and net.pin_function("R10", "2") == ""
    assert net.signal_nets()["ADC_V"] == [("R10", "2"), ("U1", "39")]
    p.write_text(p.read_text().replace('"Net-(R1-Pad1)"', '"/camera/ADC_V"'))
    with pytest.raises(DesignError, match="two nets named 'ADC_V'"):
        kicadnet.read_netlist(p).signal_nets()
