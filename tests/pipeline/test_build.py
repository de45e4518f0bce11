"""The incremental build (`omd build`): content stamps, the stage table, the runner on a toy
pipeline, and the facts about the real one that a fresh clone depends on (every generated
file belongs to one stage, the committed stamps describe the tree). Also the KiCad
environment every stage's KiCad calls get: a private configuration and a clock that stands
still."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from openmetering import clock, kicad, pipeline, stamps
from openmetering.errors import CheckFailed, DesignError
from openmetering.paths import ProjectPaths, project

P = project()
GENERATED = ("hardware/kicad", "hardware/bom", "hardware/reports", "hardware/fab",
             "docs/generated", "server/openapi.json", "firmware/esphome/open-meter.yaml",
             "contract/attestation-vectors.json")
# written by hand-run benchmarks, not by `make` (inputs of the docs stage)
NOT_BUILT = {"docs/generated/router-comparison.md", "docs/generated/signature-cost.md",
             "hardware/kicad/.gitignore"}


def tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--", *paths], cwd=P.root,
                         capture_output=True, text=True, check=True).stdout
    return sorted(f for f in out.split("\0") if f)


# ---------------------------------------------------------------- the real pipeline


def test_every_generated_file_is_the_output_of_exactly_one_stage():
    owners: dict[str, list[str]] = {}
    for stage in pipeline.STAGES:
        for f in pipeline.output_files(stage, P):
            owners.setdefault(P.rel(f), []).append(stage.name)
    orphans = [f for f in tracked(*GENERATED) if f not in owners and f not in NOT_BUILT]
    shared = {f: o for f, o in owners.items() if len(o) > 1}
    assert orphans == [], f"generated files no stage declares (add them to pipeline.py): {orphans}"
    assert shared == {}, f"files two stages claim: {shared}"


def test_a_stage_runs_after_every_stage_whose_outputs_it_reads():
    made_by = {P.rel(f): s.name for s in pipeline.STAGES for f in pipeline.output_files(s, P)}

    def upstream(name: str) -> set[str]:
        out, todo = set(), list(pipeline.BY_NAME[name].after)
        while todo:
            n = todo.pop()
            if n not in out:
                out.add(n)
                todo += pipeline.BY_NAME[n].after
        return out

    missing = sorted({(s.name, made_by[P.rel(f)]) for s in pipeline.STAGES
                      for f in pipeline.input_files(s, P)
                      if P.rel(f) in made_by and made_by[P.rel(f)] != s.name
                      and made_by[P.rel(f)] not in upstream(s.name)})
    assert missing == [], f"(stage, stage it reads from but does not run after): {missing}"


def test_committed_stamps_describe_the_tree():
    """So a fresh clone's `make` runs no stage (only the uncommitted site): run `make` and
    commit the stamps with the outputs."""
    pipeline.check(P, log=lambda *_: None)


def test_stamps_record_no_absolute_path_and_no_time():
    for f in sorted(P.stamps.glob("*.json")):
        data = json.loads(f.read_text())
        for name in list(data["inputs"]) + list(data["outputs"]):
            assert not name.startswith("/") and ".." not in name, (f.name, name)
        assert set(data) == {"inputs", "outputs"}, f.name


def test_the_route_report_records_no_wall_clock_time():
    report = json.loads(P.route_report.read_text())
    assert "seconds" not in json.dumps(report), "a re-route would dirty the committed file"


def test_selection_takes_everything_upstream_and_names_unknown_stages():
    assert [s.name for s in pipeline.selected(["fab"])] == ["netlist", "bom", "board", "fab"]
    with pytest.raises(DesignError, match="unknown stage 'nope'"):
        pipeline.selected(["nope"])


def test_build_check_fails_naming_the_stale_stage_and_input(tmp_path):
    copy = pipeline.copy_tree(tmp_path / "copy")
    parts = copy.parts.read_text()
    copy.parts.write_text(parts + "\n# a comment is a change of the catalogue\n")
    lines: list[str] = []
    with pytest.raises(CheckFailed, match="stale"):
        pipeline.check(copy, log=lines.append)
    stale = [line.split(":")[0] for line in lines]
    assert {"netlist", "bom", "assertions", "fab"} <= set(stale)
    assert all("hardware/parts.toml changed" in line for line in lines)


# ---------------------------------------------------------------- stamps


def test_code_closure_follows_relative_absolute_and_lazy_imports(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools.package-dir]\npkg = "src/pkg"\n')
    src = tmp_path / "src" / "pkg"
    (src / "sub").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "a.py").write_text("from . import b\nimport numpy\n")
    (src / "b.py").write_text("def f():\n    from .sub import c\n")
    (src / "sub" / "__init__.py").write_text("")
    (src / "sub" / "c.py").write_text("from pkg import d\n")
    (src / "d.py").write_text("")
    (src / "unused.py").write_text("")
    stamps.packages.cache_clear()
    got = [p.relative_to(src).as_posix() for p in stamps.code_closure(tmp_path, ["pkg.a"])]
    assert got == ["__init__.py", "a.py", "b.py", "d.py", "sub/__init__.py", "sub/c.py"]


def test_an_answer_kept_by_content_is_computed_once_per_content_and_code(tmp_path):
    code = tmp_path / "code.py"
    code.write_text("v1")
    calls = []

    def answer(value):
        def compute():
            calls.append(value)
            return value
        return compute

    def fresh(data, value, kind="k"):
        stamps._cache.cache_clear()  # as a new process: read back from build/cache
        return stamps.by_content(tmp_path, kind, data, answer(value), [code])

    assert fresh(b"board", "d1") == "d1" and calls == ["d1"]
    assert fresh(b"board", "other") == "d1" and calls == ["d1"]  # kept: not computed again
    assert fresh(b"board 2", "d2") == "d2" and calls == ["d1", "d2"]
    code.write_text("v2")  # the function changed: its old answers do not count
    assert fresh(b"board", "d3") == "d3"
    (tmp_path / "build" / "cache" / "k.json").write_text("{ half a file")
    assert fresh(b"board", "d4") == "d4"  # a broken cache is computed again, and rewritten
    assert json.loads((tmp_path / "build" / "cache" / "k.json").read_text())
    (tmp_path / "build" / "cache" / "other.json").mkdir()  # cannot be read or written
    assert fresh(b"board 3", "d5", kind="other") == "d5"
    assert fresh(b"board 3", "d6", kind="other") == "d6"  # so it is computed every time
    assert sorted(p.name for p in (tmp_path / "build" / "cache").iterdir()) == ["k.json", "other.json"]


def test_why_stale_names_the_changed_input_and_the_edited_or_missing_output(tmp_path):
    (tmp_path / "in.txt").write_text("1")
    (tmp_path / "out.txt").write_text("x")
    inputs = stamps.hash_files(tmp_path, [tmp_path / "in.txt"])
    stamp = stamps.Stamp(inputs, stamps.hash_files(tmp_path, [tmp_path / "out.txt"]))
    assert stamps.why_stale(tmp_path, None, inputs) == ["no stamp (never built here)"]
    assert stamps.why_stale(tmp_path, stamp, inputs) == []
    (tmp_path / "in.txt").write_text("2")
    now = stamps.hash_files(tmp_path, [tmp_path / "in.txt"])
    assert stamps.why_stale(tmp_path, stamp, now) == ["input in.txt changed"]
    (tmp_path / "out.txt").write_text("edited by hand")
    assert stamps.why_stale(tmp_path, stamp, inputs) == ["output out.txt edited"]
    (tmp_path / "out.txt").unlink()
    assert stamps.why_stale(tmp_path, stamp, inputs) == ["output out.txt missing"]


def test_a_touched_file_is_not_a_change(tmp_path):
    """Contents, not times: a checkout or a `touch` must not re-run a stage."""
    f = tmp_path / "in.txt"
    f.write_text("same")
    before = stamps.hash_files(tmp_path, [f])
    os.utime(f, (0, 0))
    assert stamps.hash_files(tmp_path, [f]) == before


# ---------------------------------------------------------------- the runner, on a toy table


def _toy(root: Path) -> tuple[ProjectPaths, list[pipeline.Stage]]:
    """a.txt -> [upper] -> b.txt -> [count] -> c.txt, and src2.txt -> [copy] -> d.txt;
    each stage appends its name to runs.log when it runs."""
    paths = ProjectPaths.at(root)
    (root / "pyproject.toml").write_text("")
    (root / "requirements.lock").write_text("")
    (root / "a.txt").write_text("hello")
    (root / "src2.txt").write_text("other")

    def stage(name, code, inputs, outputs, after=()):
        body = textwrap.dedent(code) + f"\nopen('runs.log', 'a').write('{name}\\n')\n"
        return pipeline.Stage(name, ("-c", body), inputs=inputs, outputs=outputs, after=after)

    table = [
        stage("upper", "import pathlib; p = pathlib.Path\n"
                       "p('b.txt').write_text(p('a.txt').read_text()[:3].upper())",
              ("a.txt",), ("b.txt",)),
        stage("count", "import pathlib; p = pathlib.Path\n"
                       "p('c.txt').write_text(str(len(p('b.txt').read_text())))",
              ("b.txt",), ("c.txt",), after=("upper",)),
        stage("copy", "import shutil; shutil.copy('src2.txt', 'd.txt')",
              ("src2.txt",), ("d.txt",)),
    ]
    return paths, table


def _runs(root: Path) -> list[str]:
    log = root / "runs.log"
    out = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(out)


def test_runner_skips_current_stages_and_reruns_only_downstream(tmp_path):
    paths, table = _toy(tmp_path)
    quiet = {"log": lambda *_: None, "table": table}
    assert pipeline.run((), paths, **quiet) == {"upper": "ran", "count": "ran", "copy": "ran"}
    assert _runs(tmp_path) == ["copy", "count", "upper"]
    assert set(pipeline.run((), paths, **quiet).values()) == {"current"}
    assert _runs(tmp_path) == []
    # a change that reaches b.txt: upper and count run, copy does not
    (tmp_path / "a.txt").write_text("world")
    pipeline.run((), paths, **quiet)
    assert _runs(tmp_path) == ["count", "upper"]
    # a change upper turns into the same b.txt: the wave stops there
    (tmp_path / "a.txt").write_text("wor, the rest differs")
    pipeline.run((), paths, **quiet)
    assert _runs(tmp_path) == ["upper"]
    # an output edited by hand is made again
    (tmp_path / "c.txt").write_text("99")
    pipeline.run((), paths, **quiet)
    assert _runs(tmp_path) == ["count"] and (tmp_path / "c.txt").read_text() == "3"
    # forced: everything selected runs, current or not
    pipeline.run(["count"], paths, force=True, **quiet)
    assert _runs(tmp_path) == ["count", "upper"]
    # forced except a current upstream stage: that one is left alone
    pipeline.run(["count"], paths, force=True, unforced=["upper"], **quiet)
    assert _runs(tmp_path) == ["count"]


def test_a_stage_is_told_when_only_its_narrow_inputs_changed(tmp_path):
    """The fab stage's mechanism: a change confined to the declared inputs passes the
    narrow args and the stamp; any other change, a missing stamp or --force does not."""
    paths, _ = _toy(tmp_path)
    (tmp_path / "fields.txt").write_text("470")
    body = "import sys; open('args.log', 'a').write(' '.join(sys.argv[1:]) + '\\n')\n" \
           "open('out.txt', 'w').write(open('a.txt').read() + open('fields.txt').read())"
    stage = pipeline.Stage("fab", ("-c", body), inputs=("a.txt", "fields.txt"),
                           outputs=("out.txt",), narrow=(("fields.txt",), ("--keep",)))
    quiet = {"log": lambda *_: None, "table": [stage]}

    def args() -> list[str]:
        log = tmp_path / "args.log"
        out = log.read_text().splitlines()
        log.unlink()
        return out

    pipeline.run((), paths, **quiet)
    assert args() == [""]  # no stamp yet
    (tmp_path / "fields.txt").write_text("1k")
    pipeline.run((), paths, **quiet)
    assert args() == ["--keep stamps/fab.json"]
    (tmp_path / "a.txt").write_text("moved")
    (tmp_path / "fields.txt").write_text("470")
    pipeline.run((), paths, **quiet)
    assert args() == [""]
    pipeline.run((), paths, force=True, **quiet)
    assert args() == [""]


def test_a_failing_stage_stops_the_build_and_keeps_its_old_stamp(tmp_path):
    paths, table = _toy(tmp_path)
    pipeline.run((), paths, log=lambda *_: None, table=table)
    stamp = (paths.stamps / "upper.json").read_text()
    broken = [pipeline.Stage("upper", ("-c", "raise SystemExit(3)"), inputs=("a.txt",),
                             outputs=("b.txt",)), *table[1:]]
    (tmp_path / "a.txt").write_text("changed")
    lines: list[str] = []
    with pytest.raises(CheckFailed, match="upper failed"):
        pipeline.run((), paths, log=lines.append, table=broken)
    assert (paths.stamps / "upper.json").read_text() == stamp
    assert not any(line.startswith("[count] runs") for line in lines)  # nothing downstream


# ---------------------------------------------------------------- KiCad's environment


def test_kicad_runs_with_a_private_configuration_and_a_clock_that_stands_still():
    # the monotonic clock keeps running (KiCad's timeouts need it): wait on it
    code = ("import os, time; a = time.time(); t = time.monotonic()\n"
            "while time.monotonic() - t < 1.5: pass\n"
            "print(a, time.time(), os.environ['KICAD_CONFIG_HOME'])")
    a, b, home = kicad.python(code=code, what="clock check").stdout.split()
    assert float(a) == float(b) == clock.EPOCH, "the frozen clock ticks"
    assert Path(home) == P.kicad_config and (Path(home) / kicad.VERSION_DIR / ".ready").exists()


def test_committed_pictures_carry_the_frozen_instant():
    """KiCad writes the clock into every SVG title. A clock started at the frozen instant
    (libfaketime's "@" form) rather than stopped there read 00:00:01 when an export took
    over a second under load, and dirtied the tree on a no-op."""
    import re

    titles = {P.rel(f): re.search(r"<title>[^<]*date ([^<]*?) *</title>", f.read_text())
              for f in sorted(P.generated_docs.rglob("*.svg"))}
    dated = {f: m.group(1) for f, m in titles.items() if m}
    assert dated, "no KiCad SVG found"
    assert {d for d in dated.values()} == {clock.FROZEN.strftime("%Y/%m/%d %H:%M:%S")}, dated
    assert not clock.FAKETIME.startswith(("@", "+", "-"))


def test_the_build_command_parses(capsys):
    from openmetering import cli

    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    assert "--from-scratch" in capsys.readouterr().out


def test_the_bench_edits_are_found_by_role_in_the_committed_circuit():
    """Whatever revision is committed: the value edit swaps the catalogue key of a resistor
    that shares a signal net with an LED; the re-net moves one header pad between two
    signal nets; each applies once and reverts to the same text."""
    from openmetering import buildbench, kicadnet
    from openmetering import parts as catalogue

    found = buildbench.edits(P)
    net = kicadnet.read_netlist(P.netlist)
    cat = catalogue.load(P.parts, check_footprints=False)
    value, renet = found["value"], found["renet"]
    pads = net.pad_nets()
    shared = {pads[k] for k in pads if k[0] == value.ref} & {
        pads[k] for k in pads if cat.parts[net.parts[k[0]].fields["PartID"]].symbol == "LED"}
    assert any(n.startswith("/") for n in shared), value
    assert len(renet.reaches) == 2 and all(n.startswith("/") for n in renet.reaches), renet
    for edit in (value, renet):
        text = (P.root / edit.file).read_text()
        assert text.count(edit.old) == 1 and edit.old != edit.new, edit
