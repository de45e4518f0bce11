"""The docs generator without a browser: inputs, determinism, freshness of the committed
pages, and the parsers behind the generated tables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from openmetering import pins
from openmetering.docs import site
from openmetering.docs.pages import FAMILIES, bom
from openmetering.errors import MissingInput
from openmetering.paths import ProjectPaths, project

P = project()
# What the docs stage itself writes; the rest of docs/generated/ belongs to other stages.
OWN = ("include", "diagrams", "ibom")


def tree_hashes(root: Path) -> dict[str, str]:
    gen = ProjectPaths.at(root).generated_docs
    return {p.relative_to(gen).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in OWN if (gen / sub).is_dir()
            for p in sorted((gen / sub).rglob("*")) if p.is_file()}


def test_a_missing_input_fails_the_build_naming_the_file(tmp_path):
    empty = ProjectPaths.at(tmp_path)
    with pytest.raises(MissingInput) as e:
        site.generate(empty)
    msg = str(e.value)
    for i in site.inputs():
        assert i.rel(empty) in msg, i.key
    assert "upstream" in msg


def test_every_fragment_is_declared_once_with_its_inputs():
    names = [f.name for f in site.fragments()]
    assert len(names) == len(set(names))
    for fam in FAMILIES:
        for frag in fam.FRAGMENTS:
            assert frag.inputs, frag.name
    keys = [i.key for i in site.inputs()]
    assert len(keys) == len(set(keys))
    nav = P.mkdocs.read_text()
    for inp in site.WRITTEN_ELSEWHERE:
        assert P.rel(inp.path(P)).removeprefix("docs/") in nav


def test_regenerating_gives_identical_bytes(real_root):
    before = tree_hashes(real_root)
    assert any(k.startswith("ibom/") for k in before)
    assert {f"diagrams/{p.stem}.svg" for p in P.diagrams.glob("*.puml")} <= set(before)
    site.generate(ProjectPaths.at(real_root))
    assert tree_hashes(real_root) == before


def test_committed_generated_pages_are_current(real_root):
    committed, fresh = tree_hashes(P.root), tree_hashes(real_root)
    stale = sorted(k for k in committed.keys() | fresh.keys()
                   if committed.get(k) != fresh.get(k))
    assert not stale, f"run `omd docs build` and commit: {stale}"


def test_pin_table_has_every_signal_of_the_pin_map(real_root):
    pm = pins.load_pinmap(P.pinmap)
    text = (ProjectPaths.at(real_root).docs_include / "pinmap.md").read_text()
    for sig, (gpio, _kind) in pm.PINS.items():
        assert f"| GPIO{gpio} | `{sig}` |" in text


def test_bom_lcsc_numbers_become_links(tmp_path):
    paths = ProjectPaths.at(tmp_path)
    paths.bom.mkdir(parents=True)
    paths.bom_csv.write_text("Designators,Qty,Value,LCSC\n\"R1,R2\",2,10k|x,C25804\nJ1,1,mod,\n")
    md = bom.gen_bom(paths)
    assert "[C25804](https://www.lcsc.com/product-detail/C25804.html)" in md
    assert "10k\\|x" in md  # a pipe in a value cannot break the table
