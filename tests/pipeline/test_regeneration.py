"""The check mode: committed outputs equal a full forced regeneration, and the board's
incremental updates keep what they promise. Everything runs in scratch copies of the
repository that run their own code (`pipeline.copy_tree`), never in the tree.

- forced: `omd build --force` of every committed stage in a copy gives every committed
  output and stamp byte for byte (the few stages a test of their own regenerates are left
  to it: PROVEN_ELSEWHERE). The board is routed from scratch when its record says its
  routes were made so (the rule of hardware/board/README.md); an updated board is rebuilt
  from its own routes, which must give it back unchanged.
- a value change keeps every route and redraws one schematic sheet, which equals a full
  drawing, and changing it back gives the tree's outputs again;
- a one-pad re-net re-routes only the two nets it reaches, passes DRC and parity, and a
  second (forced) build of the board gives the same bytes.
"""

from __future__ import annotations

import json
import shutil

import pytest

from openmetering import buildbench, checks, kicadnet, pipeline
from openmetering.paths import project

P = project()
# stages whose committed outputs a test of their own regenerates with the same command (pure
# Python, minutes of simulation or a chain; nothing of the hardware chain reads them): forcing
# them again here would only double the test time. Their stamps are held to the tree by
# test_build.test_committed_stamps_describe_the_tree.
PROVEN_ELSEWHERE = {
    "accuracy-chip": "tests/firmware/test_chip.py::test_committed_chip_accuracy_page_is_current",
    "vectors": "tests/contracts/test_generated.py (attestation vectors --check)",
    "contracts": "tests/contracts/test_generated.py::test_gas_report_current",
    "openapi": "tests/server/test_openapi.py (openapi --check)",
}
COMMITTED = [s.name for s in pipeline.STAGES if s.committed and s.name not in PROVEN_ELSEWHERE]


def build(copy, *args: str) -> list[str]:
    lines: list[str] = []
    rc = pipeline.in_copy(["-m", "openmetering", "build", *args], copy, "omd build",
                          log=lines.append)
    assert rc == 0, "omd build failed in the copy:\n" + "\n".join(lines[-60:])
    return lines


def committed_files(paths) -> dict[str, bytes]:
    out = {}
    for stage in pipeline.STAGES:
        if stage.name in COMMITTED:
            for f in pipeline.output_files(stage, paths) + [stage.stamp_path(paths)]:
                out[paths.rel(f)] = f.read_bytes()
    return out


def differing(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def forced_build(copy) -> list[str]:
    """Every committed stage forced in the copy, except those proven elsewhere (they are
    current there, so they do not run)."""
    lines: list[str] = []
    code = ("from openmetering import pipeline; "
            f"pipeline.run({COMMITTED!r}, force=True, unforced={sorted(PROVEN_ELSEWHERE)!r})")
    rc = pipeline.in_copy(["-c", code], copy, "forced build", log=lines.append)
    assert rc == 0, "forced build failed in the copy:\n" + "\n".join(lines[-60:])
    return lines


@pytest.mark.slow
def test_committed_outputs_equal_a_forced_regeneration(tmp_path):
    copy = pipeline.copy_tree(tmp_path / "copy")
    lines = forced_build(copy)
    ran = {line.split("]")[0][1:] for line in lines if line.endswith("runs: forced")}
    assert ran == set(COMMITTED), f"forced: {sorted(ran)}, committed: {sorted(COMMITTED)}"
    record = json.loads(P.board_record.read_text())
    routed = [line for line in lines if "board: routing from scratch" in line]
    if record["routes"] == "from scratch":
        assert routed, "a forced build must route the board from scratch to prove its routes"
    diff = differing(committed_files(P), committed_files(copy))
    assert set(PROVEN_ELSEWHERE) <= {s.name for s in pipeline.STAGES}
    assert diff == [], f"committed outputs differ from a forced regeneration (run `make " \
                       f"rebuild` or `make` and commit): {diff}"


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """One copy for the edit tests, built once (it only builds the uncommitted site)."""
    copy = pipeline.copy_tree(tmp_path_factory.mktemp("edits") / "copy")
    build(copy)
    return copy


@pytest.mark.slow
def test_a_value_change_keeps_every_route_and_reverts_to_the_committed_bytes(edited):
    before = committed_files(edited)
    route = edited.route_report.read_bytes()
    edit = buildbench.edits(edited)["value"]
    value = kicadnet.read_netlist(edited.netlist).parts[edit.ref].value
    edit.apply(edited.root)
    lines = build(edited)
    assert any("board: kept" in line for line in lines), "\n".join(lines)
    # the schematic draws the edited block's sheet alone, and gives what a full drawing gives
    drew = [line for line in lines if "schematic: drew" in line]
    assert drew and "drew 1 of " in drew[0], "\n".join(lines)
    full = edited.root / "full"
    lines = []
    rc = pipeline.in_copy(["-m", "openmetering", "netlist", "--kicad-dir", str(full / "kicad"),
                           "--reports-dir", str(full / "reports"), "--no-docs"], edited,
                          "full drawing", log=lines.append)
    assert rc == 0, "\n".join(lines[-40:])
    drawn = sorted(p.name for p in (full / "kicad").iterdir())
    assert drawn == sorted([p.name for p in edited.kicad.glob(f"{edited.name}*.kicad_sch")] +
                           [f"{edited.name}.net", f"{edited.name}.sheets.json"])
    assert [n for n in drawn if (full / "kicad" / n).read_bytes() !=
            (edited.kicad / n).read_bytes()] == []
    shutil.rmtree(full)
    assert edited.route_report.read_bytes() == route
    assert checks.parity(edited.pcb, edited.netlist) == []
    assert kicadnet.read_netlist(edited.netlist).parts[edit.ref].value != value
    edit.apply(edited.root, forward=False)
    build(edited)
    assert differing(before, committed_files(edited)) == []


@pytest.mark.slow
def test_a_one_pad_renet_reroutes_only_the_nets_it_reaches(edited):
    edit = buildbench.edits(edited)["renet"]
    assert len(edit.reaches) == 2
    edit.apply(edited.root)
    build(edited)
    record = json.loads(edited.board_record.read_text())
    assert record["routes"] == "updated", "the update fell back to a route from scratch"
    # the top sheet names the nets between blocks (/I2C_SCL): the board carries those names
    assert record["rerouted_nets"] == list(edit.reaches)
    assert buildbench.check_board(edited) == {"drc_errors": 0, "unconnected": 0,
                                              "schematic_parity": 0, "parity": 0}
    board = edited.pcb.read_bytes()
    lines = build(edited, "--force", "board")  # an updated board rebuilt from its own routes
    assert not any("routing from scratch" in line for line in lines)
    assert edited.pcb.read_bytes() == board, "the update is not deterministic"
    edit.apply(edited.root, forward=False)
