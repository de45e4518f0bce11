"""The `omd` command line: lazy (parsing imports no stage), every stage reachable, bad input a
one-line error with exit status 1 and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openmetering import cli
from openmetering.paths import project

P = project()
STAGES = ("netlist", "bom", "assertions", "board", "checks", "fab", "docs", "router-compare")


def omd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openmetering", *args], cwd=P.root,
                          capture_output=True, text=True, timeout=300)


def test_help_lists_every_stage():
    proc = omd("--help")
    assert proc.returncode == 0
    for stage in STAGES:
        assert stage in proc.stdout


def test_parsing_imports_no_stage():
    code = ("import sys; from openmetering import cli; cli.parser().parse_args(['fab']); "
            "heavy = {'pandas', 'numpy', 'skidl', 'pcbnew', 'openmetering.fab', "
            "'openmetering.board.build', 'openmetering.docs.site', 'openmetering.netlist'}; "
            "print(sorted(heavy & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_unknown_stage_is_a_usage_error():
    proc = omd("route-everything")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (("checks", "parity", "--netlist", "nope.net"), "nope.net: netlist missing"),
    (("board", "build", "--place-only", "--out", str(P.pcb)), "preview cannot replace"),
    (("fab", "--pcb", "nope.kicad_pcb"), "board missing"),
])
def test_design_errors_are_one_line_and_exit_1(args, message):
    proc = omd(*args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failed_gate_exits_1(tmp_path):
    bad = tmp_path / "planted.net"
    bad.write_text(P.netlist.read_text().replace('(value "10k")', '(value "11k")', 1))
    proc = omd("checks", "parity", "--netlist", str(bad))
    assert proc.returncode == 1 and "value: board 10k, netlist 11k" in proc.stdout
    assert "parity: " in proc.stderr and "differences" in proc.stderr


def test_in_process_main_returns_the_exit_status(capsys):
    assert cli.main(["docs", "inputs"]) == 0
    out = capsys.readouterr().out
    assert "MISSING" not in out and "hardware/fab/" in out
