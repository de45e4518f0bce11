"""The docs generator without a browser: inputs, determinism, freshness of the committed
pages, and the parsers behind the generated tables."""

from __future__ import annotations

import hashlib
import runpy
from pathlib import Path

import pytest

from openmetering import docs

# What docs.py itself writes; the rest of docs/generated/ belongs to other stages.
OWN = ("include", "diagrams", "ibom")


def tree_hashes(root: Path) -> dict[str, str]:
    gen = root / docs.GEN
    return {p.relative_to(gen).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in OWN if (gen / sub).is_dir()
            for p in sorted((gen / sub).rglob("*")) if p.is_file()}


def test_a_missing_input_fails_the_full_build_naming_the_file(tmp_path):
    with pytest.raises(SystemExit) as e:
        docs.main(["generate", "--root", str(tmp_path), "--require-all"])
    msg = str(e.value)
    for i in docs.INPUTS:
        assert i.path in msg
    assert "upstream" in msg


def test_pending_and_foreign_keys_are_inputs():
    assert docs.PENDING <= set(docs.BY_KEY)
    assert set(docs.FOREIGN_PAGES) <= set(docs.BY_KEY)
    nav = (docs.ROOT / "mkdocs.yml").read_text()
    for key in docs.FOREIGN_PAGES:
        assert docs.BY_KEY[key].path.removeprefix("docs/") in nav


def test_regenerating_gives_identical_bytes(full_root):
    before = tree_hashes(full_root)
    assert any(k.startswith("ibom/") for k in before)
    assert {f"diagrams/{p.stem}.svg" for p in (docs.ROOT / "docs/diagrams").glob("*.puml")} \
        <= set(before)
    docs.generate(full_root, frozenset())
    assert tree_hashes(full_root) == before


def test_committed_generated_pages_are_current(real_root):
    committed, fresh = tree_hashes(docs.ROOT), tree_hashes(real_root)
    stale = sorted(k for k in committed.keys() | fresh.keys()
                   if committed.get(k) != fresh.get(k))
    assert not stale, f"run `python -m openmetering.docs build` and commit: {stale}"


def test_pin_table_has_every_signal_of_the_pin_map(real_root):
    pins = runpy.run_path(str(docs.ROOT / "firmware/pinmap.py"))["PINS"]
    text = (real_root / docs.INC / "pinmap.md").read_text()
    for sig, (gpio, _kind) in pins.items():
        assert f"| GPIO{gpio} | `{sig}` |" in text


def test_netlist_parser_reads_nodes_and_pin_functions():
    text = """(export (version "E") (nets
      (net (code "1") (name "/mcu/ADC_V")
        (node (ref "U1") (pin "39") (pinfunction "IO1") (pintype "bidirectional"))
        (node (ref "R10") (pin "2") (pintype "passive")))
      (net (code "2") (name "Net-(R1-Pad1)") (node (ref "R1") (pin "1")))))"""
    nets = docs.parse_netlist(text)
    assert nets["/mcu/ADC_V"] == [("R10", "2", ""), ("U1", "39", "IO1")]
    assert nets["Net-(R1-Pad1)"] == [("R1", "1", "")]


def test_bom_lcsc_numbers_become_links(tmp_path):
    (tmp_path / "hardware/bom").mkdir(parents=True)
    (tmp_path / docs.BY_KEY["bom"].path).write_text(
        "Designators,Qty,Value,LCSC\n\"R1,R2\",2,10k|x,C25804\nJ1,1,mod,\n")
    md = docs.gen_bom(tmp_path)
    assert "[C25804](https://www.lcsc.com/product-detail/C25804.html)" in md
    assert "10k\\|x" in md  # a pipe in a value cannot break the table
