"""The PlantUML diagrams (docs/diagrams/*.puml) as SVG in docs/generated/diagrams/, rendered
offline by the PlantUML jar in one JVM."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from .. import kicad
from ..errors import DesignError, MissingInput, ToolError
from ..paths import ProjectPaths
from ..repro import write_text_if_changed

SVG_VOLATILE = re.compile(r"<\?plantuml-src [^?]*\?>")


def render(paths: ProjectPaths) -> list[str]:
    src = sorted(paths.diagrams.glob("*.puml"))
    out_dir = paths.generated_docs / "diagrams"
    out_dir.mkdir(parents=True, exist_ok=True)
    jar = paths.plantuml_jar
    if not jar.is_file():
        raise MissingInput(f"PlantUML jar not found: {jar} (run scripts/setup.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        # PlantUML names each SVG after "@startuml NAME" (or the file), so map the outputs
        # back to the source files.
        expected = {}
        for puml in src:
            shutil.copy(puml, Path(tmp) / puml.name)
            m = re.search(r"^@startuml[ \t]+(\S+)", puml.read_text(encoding="utf-8"), re.M)
            expected[puml] = Path(tmp) / f"{m.group(1) if m else puml.stem}.svg"
        if len(set(expected.values())) != len(expected):
            raise DesignError("two diagrams under docs/diagrams share an @startuml name")
        r = kicad.run(["java", "-Djava.awt.headless=true", "-jar", str(jar), "-tsvg", "-charset",
                       "UTF-8", "-failfast2", *sorted(p.name for p in src)],
                      what="PlantUML", cwd=Path(tmp), check=False)
        bad = [p.name for p, out in expected.items() if not out.is_file()]
        if r.returncode != 0 or bad:
            raise ToolError(f"PlantUML failed ({', '.join(bad) or 'see output'}):\n"
                            f"{r.stdout}{r.stderr}")
        for puml, out in expected.items():
            # The encoded copy of the source only bloats diffs; the .puml is in git.
            svg = SVG_VOLATILE.sub("", out.read_text(encoding="utf-8"))
            write_text_if_changed(out_dir / f"{puml.stem}.svg", svg)
    names = {p.stem for p in src}
    for stale in out_dir.glob("*.svg"):
        if stale.stem not in names:
            stale.unlink()
    return sorted(names)
