"""Pin map vs the generated KiCad netlist, planted mistakes, ESPHome YAML from the same map."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from firmware.tools import gen_esphome, pincheck
from openmetering import pins

ROOT = Path(__file__).resolve().parents[2]
NETLIST = ROOT / "hardware" / "kicad" / "open-meter.net"
PINMAP = ROOT / "firmware" / "pinmap.py"


def sample_netlist(pm, overrides=None) -> str:
    """A small hand-made KiCad netlist wired as the pin map says (format of kicad-cli 'E')."""
    overrides = overrides or {}
    parts = {"spi": ["U3"], "irq": ["U3"], "led": ["R8"], "button": ["SW1"], "i2c": ["R7"],
             "uart": ["J7"], "usb": ["J1"], "strap": ["SW2", "R6"]}
    nets = []
    for code, (sig, (g, kind)) in enumerate(pm.PINS.items(), 1):
        pad, fn = overrides.get(sig, (pins.MODULE_PAD[g], pm.symbol_pin(g)))
        nodes = [f'(node (ref "U1") (pin "{pad}") (pinfunction "{fn}") (pintype "bidirectional"))']
        if sig in pins.FPC_PIN:
            nodes.append(f'(node (ref "J5") (pin "{pins.FPC_PIN[sig]}") (pintype "passive"))')
        for ref in parts.get(kind, []):
            nodes.append(f'(node (ref "{ref}") (pin "1") (pintype "passive"))')
        nets.append(f'(net (code "{code}") (name "/{sig}") (class "Default") {" ".join(nodes)})')
    # the BOOT strap's pull-up goes to the 3.3 V rail
    nets.append('(net (code "99") (name "+3V3") (node (ref "R6") (pin "2") (pintype "passive")))')
    return ('(export (version "E") (design (source "sample.kicad_sch") (tool "Eeschema 9.0"))\n'
            '  (components (comp (ref "U1") (value "ESP32-S3-WROOM-1"))\n'
            '    (comp (ref "J1") (value "USB-C") (fields (field (name "PartID") "usb_c"))))\n'
            '  (nets\n    ' + "\n    ".join(nets) + "))\n")


@pytest.fixture()
def pm():
    return pins.load_pinmap(PINMAP)


def test_real_netlist_matches_pinmap():
    # must FAIL (not skip) while the circuit has not produced the netlist
    assert NETLIST.is_file(), f"{NETLIST} missing: build the circuit (hardware/skidl) first"
    errs = pincheck.check(PINMAP, NETLIST)
    assert errs == []


def test_sample_netlist_passes(tmp_path, pm):
    p = tmp_path / "ok.net"
    p.write_text(sample_netlist(pm))
    assert pincheck.check(PINMAP, p) == []
    assert pincheck.main([str(p)]) == 0


def test_planted_netlist_mistake_names_the_pin(tmp_path, pm):
    p = tmp_path / "bad.net"
    # the chip's SDO wired to IO12 (pad 20) instead of IO39
    p.write_text(sample_netlist(pm, {"MTR_MISO": ("20", "IO12")}))
    errs = [str(e) for e in pincheck.check(PINMAP, p)]
    assert any("MTR_MISO" in e and "GPIO39" in e and "GPIO12" in e for e in errs), errs
    assert pincheck.main([str(p)]) == 1


def test_planted_mistake_in_real_netlist_copy(tmp_path):
    text = NETLIST.read_text()
    # move CAM_XCLK's module pad (IO16 = pad 9) to IO35 (pad 28, octal PSRAM)
    m = re.search(r'\(net\s*\(code\s*"?\d+"?\)\s*\(name\s*"/?CAM_XCLK"\)(.*?)\)\s*\(net', text, re.S)
    assert m, "CAM_XCLK net not found in the netlist"
    seg = m.group(0)
    bad = re.sub(r'(\(ref\s*"U1"\)\s*\(pin\s*)"9"', r'\1"28"', seg)
    assert bad != seg
    p = tmp_path / "open-meter.net"
    p.write_text(text.replace(seg, bad))
    errs = [str(e) for e in pincheck.check(PINMAP, p)]
    assert any("CAM_XCLK" in e and "GPIO16" in e for e in errs), errs


@pytest.mark.parametrize("edit,needle", [
    ('"MTR_CS": (1, "spi")', ('"MTR_CS": (22, "spi")', "[module-pad] U1 pin IO22: MTR_CS on GPIO22")),
    ('"LED_NET": (48, "led")', ('"LED_NET": (35, "led")', "[flash-psram] U1 pin IO35: LED_NET on")),
    ('"LED_NET": (48, "led")', ('"LED_NET": (47, "led")', "[gpio-unique] U1 pin IO47: GPIO47 assigned to both")),
    ('"BUTTON_USER": (14, "button")', ('"BUTTON_USER": (46, "button")', "[strapping] U1 pin IO46: BUTTON_USER")),
    ('"I2C_SDA": (41, "i2c")', ('"I2C_SDA": (19, "i2c")', "[usb-pins] U1 pin IO19: I2C_SDA")),
])
def test_planted_pinmap_mistake_names_the_pin(tmp_path, pm, edit, needle):
    old, (new, msg) = edit, needle
    src = PINMAP.read_text()
    assert old in src
    p = tmp_path / "pinmap.py"
    p.write_text(src.replace(old, new))
    good = tmp_path / "ok.net"
    good.write_text(sample_netlist(pm))  # wired per the original map
    errs = [str(e) for e in pincheck.check(p, good)]
    assert any(msg in e for e in errs), errs


def test_pinmap_altered_against_real_netlist(tmp_path):
    src = PINMAP.read_text().replace('"CAM_D0": (11, "cam")', '"CAM_D0": (38, "cam")')
    p = tmp_path / "pinmap.py"
    p.write_text(src)
    errs = [str(e) for e in pincheck.check(p, NETLIST)]
    assert any("CAM_D0" in e and "GPIO38" in e for e in errs), errs


def test_esphome_yaml_is_generated_from_pinmap(pm):
    text = (ROOT / "firmware" / "esphome" / "open-meter.yaml").read_text()
    assert text == gen_esphome.generate(), "run python -m firmware.tools.gen_esphome"
    for sig in ("MTR_CS", "MTR_SCLK", "MTR_MOSI", "MTR_MISO", "CAM_XCLK", "CAM_VSYNC",
                "LED_STATUS", "BUTTON_USER"):
        assert f"GPIO{pm.gpio(sig)}" in text, sig
    data = "[" + ", ".join(str(pm.gpio(f"CAM_D{i}")) for i in range(8)) + "]"
    assert f"data_pins: {data}" in text


def test_esphome_config_validates(tmp_path):
    exe = ROOT / ".venv-esphome" / "bin" / "esphome"
    assert exe.exists(), "create it: python3 -m venv .venv-esphome && .venv-esphome/bin/pip install esphome==2026.6.5"
    shutil.copy(ROOT / "firmware" / "esphome" / "open-meter.yaml", tmp_path / "open-meter.yaml")
    shutil.copy(ROOT / "firmware" / "esphome" / "secrets.yaml.example", tmp_path / "secrets.yaml")
    p = subprocess.run([str(exe), "config", str(tmp_path / "open-meter.yaml")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "Configuration is valid" in p.stdout + p.stderr
