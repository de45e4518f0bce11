"""The pin table: every pin-map signal with its GPIO, kind, ADC channel, the pads its net
reaches in the netlist, and the reason written beside it in pinmap.py."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from ... import pins
from ...kicadnet import read_netlist
from ...paths import ProjectPaths
from ..core import Fragment, Input, Raw, cell, table

PINMAP = Input("pinmap", "pinmap", "pin map (firmware/pinmap.py)")
NETLIST = Input("netlist", "netlist", "circuit stage (omd netlist)")


def natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def pinmap_comments(path: Path) -> dict[str, str]:
    """Signal -> the comment at the end of its line in pinmap.py (the why of each pin)."""
    source = path.read_text(encoding="utf-8")
    comments = {}
    with io.StringIO(source) as f:
        for tok in tokenize.generate_tokens(f.readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "PINS" for t in node.targets):
            for k in node.value.keys:
                if isinstance(k, ast.Constant) and k.lineno in comments:
                    out[k.value] = comments[k.lineno]
    return out


def gen_pinmap(paths: ProjectPaths) -> str:
    path = PINMAP.path(paths)
    mod = pins.load_pinmap(path)
    adc = mod.ADC1_CHANNEL
    notes = pinmap_comments(path)
    net = read_netlist(NETLIST.path(paths))
    nets = net.signal_nets()
    header = ["GPIO", "Signal (net)", "Kind", "ADC1 channel", "Reaches (netlist)", "Note"]
    rows = []
    for sig, (gpio, kind) in sorted(mod.PINS.items(), key=lambda kv: (kv[1][0], kv[0])):
        nodes = nets.get(sig)
        if nodes is None:
            reach = "**not in netlist**"
        else:
            nodes = sorted(nodes, key=lambda t: (natural_key(t[0]), natural_key(t[1])))
            reach = ", ".join(f"{r}.{p}" + (f" ({fn})" if (fn := net.pin_function(r, p)) else "")
                              for r, p in nodes)
        rows.append([f"GPIO{gpio}", Raw(f"`{sig}`"), kind,
                     f"CH{adc[gpio]}" if kind == "adc" and gpio in adc else "",
                     Raw(cell(reach)), notes.get(sig, "")])
    text = table(header, rows)
    reserved = [[label, ", ".join(f"GPIO{g}" for g in getattr(mod, name))]
                for name, label in (("FLASH_PSRAM_GPIOS", "flash + octal PSRAM (never touch)"),
                                    ("STRAPPING_GPIOS", "strapping pins"),
                                    ("USB_GPIOS", "native USB"))]
    text += "\nReserved by the module:\n\n" + table(["Group", "GPIOs"], reserved)
    return text


FRAGMENTS = (Fragment("pinmap", (PINMAP, NETLIST), gen_pinmap),)
