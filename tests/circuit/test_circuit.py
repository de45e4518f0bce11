"""The circuit stage: reproducible outputs, KiCad can use them, ERC and design assertions hold,
and each assertion fires on a deliberately broken design, naming the part and pin."""

import json
import re
import subprocess
import sys

import pytest

from openmetering import assertions, parts
from openmetering.errors import DesignError
from openmetering.kicadnet import read_netlist
from openmetering.paths import project

P = project()
ROOT, KICAD_DIR, NETLIST, REPORTS_DIR, BOM_DIR = P.root, P.kicad, P.netlist, P.reports, P.bom


# --- reproducibility -----------------------------------------------------------------------
def test_regenerated_outputs_equal_committed(regenerated):
    """Running the stage again gives the committed files byte for byte (so it is both
    deterministic and up to date)."""
    pairs = [(regenerated / "kicad" / f.name, f) for f in sorted(KICAD_DIR.glob("open-meter*.kicad_sch"))]
    pairs += [(regenerated / "kicad" / "open-meter.net", NETLIST),
              (regenerated / "kicad" / "open-meter.sheets.json", KICAD_DIR / "open-meter.sheets.json"),
              (regenerated / "reports" / "erc.json", REPORTS_DIR / "erc.json"),
              (regenerated / "reports" / "schematic.json", REPORTS_DIR / "schematic.json")]
    pairs += [(regenerated / "bom" / f.name, f) for f in sorted(BOM_DIR.iterdir())]
    assert len(pairs) > 12
    stale = [str(c.relative_to(ROOT)) for new, c in pairs if new.read_bytes() != c.read_bytes()]
    assert not stale, f"committed outputs differ from regenerated ones: {stale} (run `make`)"


# --- KiCad can use what we write ------------------------------------------------------------
def test_netlist_builds_a_board_in_pcbnew(tmp_path):
    """Every footprint of the netlist loads from the project's library or KiCad 9's, and every
    pad the netlist names exists on it: the proof that the netlist is usable for layout."""
    script = tmp_path / "load.py"
    script.write_text(f"""
import pcbnew
from openmetering.kicad import footprint_lib_dir
from openmetering.kicadnet import read_netlist
net = read_netlist({str(NETLIST)!r})
board = pcbnew.BOARD()
missing = []
for ref, p in net.parts.items():
    if ref.startswith("#"):
        continue
    lib, name = p.footprint.split(":")
    fp = pcbnew.FootprintLoad(str(footprint_lib_dir(lib)), name)
    assert fp is not None, p.footprint
    fp.SetReference(ref)
    board.Add(fp)
pads = {{(f.GetReference(), p.GetNumber()) for f in board.GetFootprints() for p in f.Pads()}}
for netname, nodes in net.nets.items():
    for ref, pin in nodes:
        if not ref.startswith("#") and (ref, pin) not in pads:
            missing.append(f"{{ref}}.{{pin}} ({{netname}})")
print(len(board.GetFootprints()), "footprints", len(pads), "pads")
assert not missing, missing
""")
    # KiCad's own Python, with nothing of the project's venv: the file stands on its own
    proc = subprocess.run(["/usr/bin/python3", str(script)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "footprints" in proc.stdout


def test_schematic_reads_with_a_second_parser():
    """Other tools (KiBot, kiutils-based scripts) must read our schematic, not only KiCad."""
    from kiutils.schematic import Schematic

    sheets = sorted(KICAD_DIR.glob("open-meter*.kicad_sch"))
    assert len(sheets) >= 8
    symbols = 0
    for sheet in sheets:
        sch = Schematic.from_file(str(sheet))
        symbols += len([s for s in sch.schematicSymbols if not s.libId.startswith("power:")])
    assert symbols == len([r for r in read_netlist(NETLIST).parts if not r.startswith("#")]) + 0


def test_schematic_connectivity_equals_skidl_netlist(tmp_path):
    """The drawn schematic has exactly the circuit's connectivity."""
    code = f"""
from openmetering.circuit import build
c, _ = build()
c.no_files = False  # this test wants the netlist file (side files land in tmp_path)
c.generate_netlist(file_={str(tmp_path / 'skidl.net')!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=tmp_path)
    skidl_net = read_netlist(tmp_path / "skidl.net")
    kicad_net = read_netlist(NETLIST)

    def conn(n):
        groups = set()
        for _name, nodes in n.nets.items():
            real = frozenset(x for x in nodes if not x[0].startswith("#"))
            if len(real) > 1:
                groups.add(real)
        return groups

    assert conn(skidl_net) == conn(kicad_net)
    assert {r for r in skidl_net.parts if not r.startswith("#")} == set(kicad_net.parts)


# --- ERC gate -------------------------------------------------------------------------------
def test_erc_report_is_clean_and_waivers_have_reasons():
    report = json.loads((REPORTS_DIR / "erc.json").read_text())
    assert report["skidl_erc"]["errors"] == [] and report["skidl_erc"]["warnings"] == []
    assert report["kicad_erc"]["violations"] == []
    for kind, w in report["kicad_erc"]["waived"].items():
        assert len(w["reason"]) > 20, kind


# --- design assertions ----------------------------------------------------------------------
def test_design_assertions_pass_on_the_design():
    findings, summary = assertions.run_all()
    assert findings == [], "\n".join(map(str, findings))
    channels = {r["channel"] for r in summary["chip_inputs"]}
    assert {"I1", "I2", "I3", "V1"} <= channels
    full_scale = 0.720 * 2 ** 0.5
    for r in summary["chip_inputs"]:
        assert 0.1 < r["vpk"] <= full_scale, r
    lo, hi = summary["rails"]["+5VS"]
    assert 4.5 <= lo < hi <= 5.5   # the ACS712's supply range, from the boost's divider
    assert summary["rail_loads_ma"]["+5V"] <= 500


def _findings(variant, netlist=None, parts_text=None, pinmap_text=None):
    if netlist is not None:
        (variant / "open-meter.net").write_text(netlist)
    if parts_text is not None:
        (variant / "parts.toml").write_text(parts_text)
    if pinmap_text is not None:
        (variant / "pinmap.py").write_text(pinmap_text)
    found, _ = assertions.run_all(variant / "open-meter.net", variant / "parts.toml",
                                  variant / "pinmap.py")
    return [str(f) for f in found]


def _net(variant):
    return (variant / "open-meter.net").read_text()


def _parts(variant):
    return (variant / "parts.toml").read_text()


def _pinmap(variant):
    return (variant / "pinmap.py").read_text()


def _sub(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


def test_module_on_the_usb_rail_fires(variant, tools):
    """The ACS712 on the unregulated +5V: USB's cable, fuse and Schottky leave < 4.5 V."""
    found = _findings(variant, netlist=tools.move_node(_net(variant), "J4", "1", "+5V"))
    assert any(f.startswith("[module-supply] J4 pin 1 (VCC)") and "ACS712" in f for f in found), found


def test_opamp_swing_fires(variant, tools):
    """The seed's mistake: the ZMPT101B on 3.3 V clips (its LM358 reaches VCC - 1.5 V)."""
    found = _findings(variant, netlist=tools.move_node(_net(variant), "J3", "1", "+3V3"))
    assert any(f.startswith("[opamp-swing] J3 pin 2 (OUT)") for f in found), found


def test_chip_input_over_range_fires(variant, tools):
    # a 12 k burden leg on CT1: 100 A with crest factor 2 is hundreds of volts at I1P
    found = _findings(variant, netlist=tools.edit_comp_field(_net(variant), "R52", "PartID", "r_12k"))
    assert any(f.startswith("[chip-input] U7 pin 3 (I1P)") for f in found), found


def test_burden_dissipation_fires(variant):
    text = _sub(_parts(variant), "power_w = 0.1                 # 0603 thick film",
                "power_w = 0.01                # 0603 thick film")
    found = _findings(variant, parts_text=text)
    assert any(f.startswith("[burden] R52 pin 1") for f in found), found


def test_fuse_hold_at_45c_fires(variant):
    text = _sub(_parts(variant), "hold_45c_a = 0.865", "hold_45c_a = 0.3")
    found = _findings(variant, parts_text=text)
    assert any(f.startswith("[fuse] F1 pin 1") for f in found), found
    assert any(f.startswith("[fuse] F2 pin 1") for f in found), found


def test_usb_budget_fires(variant):
    text = _sub(_parts(variant), 'load_ma = { "3V3" = 355 }', 'load_ma = { "3V3" = 500 }')
    found = _findings(variant, parts_text=text)
    assert any(f.startswith("[usb-budget] J1 pin A4 (VBUS)") for f in found), found


def test_an_ldo_in_place_of_the_buck_overheats(variant):
    """Why the 3.3 V rail is a buck: the same load through a linear regulator from 5.25 V
    passes its junction limit (the figure the rev A review found)."""
    text = _sub(_parts(variant), 'regulator = { kind = "buck",', 'regulator = { kind = "ldo", dropout_v = 0.6,')
    found = _findings(variant, parts_text=text)
    assert any(f.startswith("[thermal] U3 pin VOUT") for f in found), found


def test_rail_budget_fires(variant):
    text = _sub(_parts(variant), "rating_ma = 500, dropout_v = 0.2, iq_ma = 0.1, theta_ja = 250.0",
                "rating_ma = 20, dropout_v = 0.2, iq_ma = 0.1, theta_ja = 250.0")
    found = _findings(variant, parts_text=text)
    assert any(f.startswith("[rail-budget] U4 pin VOUT") for f in found), found


def test_anti_alias_corner_fires(variant, tools):
    # 100 nF instead of 18 nF at I1P: the corner drops to 1.6 kHz, and I1 no longer matches V
    found = _findings(variant, netlist=tools.edit_comp_field(_net(variant), "C50", "PartID", "c_100n"))
    assert any(f.startswith("[anti-alias] U7 pin 3 (I1P)") and "corner" in f for f in found), found


def test_phase_mismatch_fires(variant, tools):
    # the design note's first 10 uF coupling: the ZMPT path then lags the CTs by > 2.24 deg
    found = _findings(variant, netlist=tools.edit_comp_field(_net(variant), "C55", "PartID", "c_10u"))
    assert any(f.startswith("[phase] U7 pin 3 (I1P)") and "J3.2" in f for f in found), found


def test_twelve_volt_mistake_fires(variant):
    text = _sub(_parts(variant), 'farads = 10e-6\nvmax_v = 25.0', 'farads = 10e-6\nvmax_v = 6.3')
    found = _findings(variant, parts_text=text)
    assert any(f.startswith("[twelve-volt] C1 pin") and "+5V" in f for f in found), found


def test_power_pin_on_wrong_rail_fires(variant, tools):
    found = _findings(variant, netlist=tools.move_node(_net(variant), "U4", "1", "+5V"))
    assert any("[power-rail] U4 pin 1 (V_{IN}): on +5V, must be on +3V3" in f for f in found), found


def test_gpio_used_twice_fires(variant):
    text = _sub(_pinmap(variant), '"LED_NET": (48, "led")', '"LED_NET": (47, "led")')
    found = _findings(variant, pinmap_text=text)
    assert any(f.startswith("[gpio-unique] U1 pin IO47") for f in found), found


def test_spi_pin_off_the_chip_fires(variant, tools):
    # MTR_MISO wired to nothing but the module: the spi rule wants the metering chip on it
    found = _findings(variant, netlist=tools.move_node(_net(variant), "U7", "39", "/LED_NET"))
    assert any(f.startswith("[neighbours] U1 pin 32 (IO39)") and "MTR_MISO" in f for f in found), found


def test_flash_psram_pin_fires(variant, tools):
    text = _sub(_pinmap(variant), '"LED_STATUS": (47, "led")', '"LED_STATUS": (35, "led")')
    found = _findings(variant, pinmap_text=text)
    assert any(f.startswith("[flash-psram] U1 pin IO35") for f in found), found
    # and on the board side: something wired to GPIO36
    net = _net(variant)
    found = _findings(variant, netlist=tools.move_node(net, "U1", "29", "/LED_NET"))
    assert any(f.startswith("[flash-psram] U1 pin 29 (IO36)") for f in found), found


def test_usb_pin_misuse_fires(variant):
    text = _sub(_pinmap(variant), '"UART_TX": (43, "uart")', '"UART_TX": (19, "uart")')
    found = _findings(variant, pinmap_text=text)
    assert any(f.startswith("[usb-pins] U1 pin IO19") for f in found), found


def test_strapping_pin_misuse_fires(variant, tools):
    text = _sub(_pinmap(variant), '"LED_STATUS": (47, "led")', '"LED_STATUS": (46, "led")')
    found = _findings(variant, pinmap_text=text)
    assert any(f.startswith("[strapping] U1 pin IO46") for f in found), found
    # BOOT pull-up removed: GPIO0 left without its intended pull
    found = _findings(variant, pinmap_text=_pinmap(variant).replace("(46,", "(47,"),
                      netlist=tools.move_node(_net(variant), "R11", "1", "GND"))
    assert any(f.startswith("[strapping] U1 pin 27 (IO0)") for f in found), found


def test_dim_led_fires(variant):
    text = _sub(_parts(variant), "diode = { vf_v = 1.8 }", "diode = { vf_v = 3.3 }")
    found = _findings(variant, parts_text=text)
    assert any(f.startswith("[led-current] D10 pin 2") for f in found), found


# --- bad input: clear errors, no tracebacks --------------------------------------------------
def test_unknown_part_names_close_matches():
    cat = parts.load()
    with pytest.raises(DesignError, match=r"unknown part 'r_10K'.*did you mean r_10k"):
        cat["r_10K"]


def _one_part_catalogue(tmp_path, **override):
    entry = {"ref": '"R"', "lib": '"Device"', "symbol": '"R"',
             "footprint": '"Resistor_SMD:R_0603_1608Metric"', "value": '"10k"',
             "manufacturer": '"UNI-ROYAL"', "mpn": '"0603WAF1002T5E"', "lcsc": '"C25804"',
             "price": '{ usd = 0.01, at_qty = 100, date = "2026-11", source = "test" }',
             "description": '"r"', "assembly": '"smt"', "jlc_tier": '"basic"'}
    entry.update(override)
    body = "[design]\n[parts.r_test]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items())
    path = tmp_path / "parts.toml"
    path.write_text(body)
    return path


def test_invalid_lcsc_is_rejected(tmp_path):
    with pytest.raises(DesignError, match=r"\[parts.r_test\]: invalid LCSC number 'C25O04'"):
        parts.load(_one_part_catalogue(tmp_path, lcsc='"C25O04"'))


def test_missing_footprint_is_rejected(tmp_path):
    path = _one_part_catalogue(tmp_path, footprint='"Resistor_SMD:R_0603_NOPE"')
    with pytest.raises(DesignError, match=r"footprint 'Resistor_SMD:R_0603_NOPE' not found"):
        parts.load(path)


def test_single_pin_net_is_rejected():
    code = """
from openmetering.circuit import skidl_module
from openmetering.errors import DesignError
from openmetering.netlist import check_single_pin_nets
skidl = skidl_module()
c = skidl.Circuit()
r = skidl.Part("Device", "R", footprint="Resistor_SMD:R_0603_1608Metric", ref="R42", tag="R42",
               circuit=c)
gnd, lonely = skidl.Net("GND", circuit=c), skidl.Net("ORPHAN", circuit=c)
gnd += r[1]
lonely += r[2]
try:
    check_single_pin_nets(c)
except DesignError as e:
    print("ERR", e)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "net 'ORPHAN' has a single pin: R42 pin 2" in proc.stdout, proc.stdout + proc.stderr


def test_cli_reports_bad_catalogue_without_traceback(tmp_path, tools):
    path = _one_part_catalogue(tmp_path, lcsc='"X1"')
    proc = tools.run_stage("bom", "--parts", str(path), "--out", str(tmp_path / "o"),
                           check=False)
    assert proc.returncode == 1
    assert "invalid LCSC number 'X1'" in proc.stderr and "Traceback" not in proc.stderr


# --- BOM ------------------------------------------------------------------------------------
def test_bom_covers_the_board_and_the_original_bom():
    import pandas as pd

    bom = pd.read_csv(BOM_DIR / "open-meter-bom.csv", keep_default_na=False)
    net = read_netlist(NETLIST)
    cat = parts.load()
    placed = {r for r, p in net.parts.items()
              if not r.startswith("#") and cat[p.fields["PartID"]].assembly != "board"}
    listed = [d for ds in bom["Designators"] if ds for d in ds.split(",")]
    assert sorted(listed) == sorted(placed)
    assert int(bom[bom["Assembly"] != "module"]["Qty"].sum()) == len(placed)
    # an LCSC number, or the plain statement that none could be verified: never a guess
    assert all(re.fullmatch(r"C\d+|not verified", x) for x in bom[bom["Assembly"] != "module"]["LCSC"])
    # the lines of the original specification's BOM
    by_value = bom.groupby("Value")["Qty"].sum()
    assert by_value["10k"] >= 5 and by_value["10uF"] >= 3
    assert "ESP32-S3-WROOM-1-N8R8" in set(bom["Value"])
    assert {"ZMPT101B module", "ACS712-5A module", "OV2640 camera"} <= set(bom["Value"])
    assert bom[bom["Value"] == "red"]["Qty"].sum() == 2
    cost = json.loads((BOM_DIR / "cost.json").read_text())
    assert cost["qty5"]["total_per_meter"] > cost["qty100"]["total_per_meter"] > 0
