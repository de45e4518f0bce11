"""Each shared mechanism of the pipeline exists once: one KiCad runner, one frozen clock, one
s-expression reader, one netlist reader, one pin-map loader and alias table, one pin rule
set, one error dialect, one paths object, one version; and the circuit never imports the
tool. Read from the source (AST), so a second copy fails here by name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from openmetering.paths import project

P = project()
SRC = P.root / "src" / "openmetering"
PIPELINE = sorted(SRC.rglob("*.py"))
CIRCUIT = sorted((P.hardware / "skidl").glob("*.py"))
PINCHECK = P.firmware / "tools" / "pincheck.py"
ALL = PIPELINE + CIRCUIT + [PINCHECK]


def rel(p: Path) -> str:
    return p.relative_to(P.root).as_posix()


def tree(p: Path) -> ast.Module:
    return ast.parse(p.read_text(encoding="utf-8"), filename=str(p))


def imported(p: Path) -> set[str]:
    """Top-level names of every module p imports (relative imports resolved)."""
    out = set()
    pkg = rel(p).removeprefix("src/").removesuffix(".py").split("/")[:-1]
    for node in ast.walk(tree(p)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(pkg[:len(pkg) - node.level + 1]
                                + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def strings(p: Path) -> list[str]:
    return [n.value for n in ast.walk(tree(p))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def defined(p: Path) -> set[str]:
    return {n.name for n in ast.walk(tree(p))
            if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def where(pred) -> list[str]:
    return sorted(rel(p) for p in ALL if pred(p))


def test_one_module_runs_external_programs():
    assert where(lambda p: "subprocess" in imported(p)) == ["src/openmetering/kicad.py"]
    # and nobody picks another interpreter for pcbnew
    assert where(lambda p: any("/usr/bin/python" in s for s in strings(p))) == []


def test_one_frozen_clock_and_one_kicad_environment():
    assert where(lambda p: any("LD_PRELOAD" in s or "FAKETIME" in s for s in strings(p))) == \
        ["src/openmetering/kicad.py"]
    assert where(lambda p: any("KICAD9_SYMBOL_DIR" in s for s in strings(p))) == \
        ["src/openmetering/kicad.py"]
    # no date typed anywhere but in the clock
    dated = re.compile(r"\b(19|20)\d\d-\d\d-\d\d\b|\(20\d\d, 1, 1")
    assert where(lambda p: dated.search(p.read_text()) and p.name != "clock.py") == []


def test_one_sexpression_reader_and_one_netlist_reader():
    tokenizers = re.compile(r"""re\.(compile|findall)\(r?['"]\\s\*\(\?:\(\\\(\)|\\\(\|\\\)""")
    assert where(lambda p: tokenizers.search(p.read_text())) == ["src/openmetering/sexpr.py"]
    assert where(lambda p: "read_netlist" in defined(p)) == ["src/openmetering/kicadnet.py"]
    assert where(lambda p: {"parse_sexpr", "parse_netlist", "read_board"} & defined(p)) == []


def test_one_pinmap_loader_one_alias_table_one_rule_set():
    loaders = re.compile(r"spec_from_file_location|runpy")
    assert where(lambda p: loaders.search(p.read_text())) == ["src/openmetering/pins.py"]
    alias = [p for p in ALL + [P.pinmap] if '"USB_D-"' in p.read_text()]
    assert [rel(p) for p in alias] == ["firmware/pinmap.py"]
    assert where(lambda p: {"check_pinmap", "check_netlist"} & defined(p)) == \
        ["src/openmetering/pins.py"]
    assert "openmetering.pins" in imported(PINCHECK)


def test_one_error_dialect():
    assert where(lambda p: "guarded" in defined(p)) == ["src/openmetering/errors.py"]
    raises = []
    for p in PIPELINE:
        for node in ast.walk(tree(p)):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(call, ast.Name) and call.id in ("SystemExit", "RuntimeError",
                                                               "KeyError"):
                    raises.append(f"{rel(p)}:{node.lineno} {call.id}")
    assert raises == []
    # stages do not depend on the entry point
    assert where(lambda p: p.name != "__main__.py" and "openmetering.cli" in imported(p)) == []


def test_one_paths_object():
    anchored = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[")
    assert where(lambda p: anchored.search(p.read_text())) == [
        "src/openmetering/__init__.py", "src/openmetering/paths.py"]


def test_circuit_is_found_through_configuration_and_never_imports_the_tool():
    assert P.config()["circuit"] == "omd_circuit.top:build"
    assert [rel(p) for p in CIRCUIT if any(m.split(".")[0] == "openmetering"
                                            for m in imported(p))] == []
    assert where(lambda p: p in PIPELINE and any(m.startswith("omd_circuit")
                                                  for m in imported(p))) == []


def test_one_version():
    import omd_server

    import openmetering

    text = P.pyproject.read_text()
    version = re.search(r'^version = "([^"]+)"', text, re.M).group(1)
    assert openmetering.__version__ == omd_server.__version__ == version
    typed = [rel(p) for p in PIPELINE + sorted((P.root / "server").rglob("*.py"))
             if re.search(r'__version__\s*=\s*"', p.read_text())]
    assert typed == []
    # the device cannot read pyproject.toml: its copy must at least agree
    fw = re.search(r'^FW = "([^"]+)"', (P.firmware / "main.py").read_text(), re.M)
    assert fw and fw.group(1) == version, "firmware/main.py FW differs from pyproject's version"


@pytest.mark.parametrize("spec", ["nonsense", "omd_circuit.top:nope", "no_such_module:build"])
def test_a_bad_circuit_entry_is_a_clear_error(spec, tmp_path):
    import dataclasses

    from openmetering import circuit
    from openmetering.errors import DesignError

    (tmp_path / "pyproject.toml").write_text(f'[tool.openmetering]\ncircuit = "{spec}"\n')
    paths = dataclasses.replace(P, root=tmp_path)
    with pytest.raises(DesignError, match=r"\[tool.openmetering\] circuit"):
        circuit.entry(paths)
