"""Generate the site's pages from the design, then build it with mkdocs.

Everything written under docs/generated/ is a pure function of the declared inputs (no dates,
no absolute paths, sorted output): CI compares the committed files with regenerated ones.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

from .. import kicad
from ..errors import MissingInput
from ..paths import ProjectPaths, project
from ..repro import write_text_if_changed
from . import diagrams as drawings
from .core import Fragment, Input
from .pages import FAMILIES

# Pages other stages write straight into docs/generated/ (the nav links them).
WRITTEN_ELSEWHERE = (
    Input("accuracy_chip", "accuracy_chip",
          "metering-chip bench (python -m firmware.tools.bench_chip)"),
    Input("router_comparison", "router_comparison", "router comparison (omd router-compare)"),
    Input("gas_report", "gas_report", "chain stage (omd chain gas-report, make contracts)"),
    Input("signature_cost", "signature_cost", "firmware bench (make bench-attest)"),
)
PLANTUML = Input("plantuml", "plantuml_jar", "set-up (scripts/setup.sh)")


def fragments() -> tuple[Fragment, ...]:
    return tuple(f for fam in FAMILIES for f in fam.FRAGMENTS)


def inputs() -> tuple[Input, ...]:
    """Every input of the site, once each, in the order the families declare them."""
    seen: dict[str, Input] = {}
    for inp in [i for f in fragments() for i in f.inputs] + list(WRITTEN_ELSEWHERE):
        seen.setdefault(inp.key, inp)
    return tuple(seen.values())


def check_inputs(paths: ProjectPaths) -> None:
    """Fail naming every missing input and the stage that writes it."""
    missing = [i for i in inputs() if not i.exists(paths)]
    if missing:
        lines = "\n".join(f"  {i.rel(paths)}  (written by: {i.producer})" for i in missing)
        raise MissingInput("docs: missing input file(s); run the upstream stage(s) first:\n"
                           + lines)


def generate(paths: ProjectPaths | None = None, diagrams: bool = True) -> list[str]:
    paths = paths or project()
    check_inputs(paths)
    if diagrams:
        drawings.render(paths)
    written = []
    # the fragments read only the declared inputs (the iBoM and the board's facts are KiCad
    # processes): made one per core at a time, written in order
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        texts = list(pool.map(lambda f: f.render(paths), fragments()))
    for frag, text in zip(fragments(), texts):
        write_text_if_changed(paths.docs_include / f"{frag.name}.md", text)
        written.append(frag.name)
    for stale in paths.docs_include.glob("*.md"):
        if stale.stem not in written:
            stale.unlink()
    return written


def build(paths: ProjectPaths | None = None, site_dir=None, generate_pages: bool = True) -> None:
    paths = paths or project()
    if generate_pages:
        generate(paths)
    extra = ["-d", str(site_dir)] if site_dir else []
    kicad.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-f",
               str(paths.mkdocs), *extra], what="mkdocs build --strict", cwd=paths.root,
              env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), capture=False)


def describe_inputs(paths: ProjectPaths | None = None, log=print) -> None:
    paths = paths or project()
    for i in inputs():
        log(f"{'ok' if i.exists(paths) else 'MISSING':8} {i.rel(paths)}  ({i.producer})")
