import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openmetering.paths import project

P = project()


def run_stage(stage: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a pipeline stage through the CLI, in its own process (SKiDL keeps global state)."""
    proc = subprocess.run([sys.executable, "-m", "openmetering", stage, *args], cwd=P.root,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"omd {stage} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory) -> Path:
    """The circuit stage run afresh into a temp dir: schematic, netlist, ERC report."""
    out = tmp_path_factory.mktemp("circuit")
    (out / "kicad").mkdir()
    (out / "reports").mkdir()
    run_stage("netlist", "--kicad-dir", str(out / "kicad"),
              "--reports-dir", str(out / "reports"), "--no-docs")
    run_stage("bom", "--out", str(out / "bom"),
              "--netlist", str(out / "kicad" / "open-meter.net"))
    return out


def edit_comp_field(netlist_text: str, ref: str, field: str, value: str) -> str:
    """Change one field of one component in a KiCad netlist text."""
    start = netlist_text.index(f'(comp (ref "{ref}")')
    end = netlist_text.index("(comp (ref", start + 10)
    block = netlist_text[start:end]
    new, n = re.subn(rf'\(field \(name "{field}"\) "[^"]*"\)', f'(field (name "{field}") "{value}")',
                     block)
    assert n == 1, f"{ref} has no field {field}"
    return netlist_text[:start] + new + netlist_text[end:]


def move_node(netlist_text: str, ref: str, pin: str, to_net: str) -> str:
    """Move pad `ref`.`pin` to the net named `to_net` (which must exist)."""
    node = re.search(rf'\(node \(ref "{ref}"\) \(pin "{pin}"\)(?: \([^()]*\))*\)', netlist_text)
    assert node, f"no node {ref}.{pin}"
    text = netlist_text[:node.start()] + netlist_text[node.end():]
    net = re.search(rf'\(net \(code "\d+"\) \(name "{re.escape(to_net)}"\)[^\n]*', text)
    assert net, f"no net {to_net}"
    return text[:net.end()] + "\n      " + node.group(0) + text[net.end():]


@pytest.fixture
def variant(tmp_path):
    """Copies of the design inputs to break on purpose."""
    d = tmp_path / "variant"
    d.mkdir()
    for src in (P.netlist, P.parts, P.pinmap):
        shutil.copy(src, d / src.name)
    return d


class _Tools:
    run_stage = staticmethod(run_stage)
    edit_comp_field = staticmethod(edit_comp_field)
    move_node = staticmethod(move_node)


@pytest.fixture(scope="session")
def tools():
    """Helpers for the tests (importlib import mode keeps conftest out of sys.path)."""
    return _Tools
