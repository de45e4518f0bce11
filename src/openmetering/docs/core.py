"""What every page family shares: the inputs it declares, the fragments it writes, and the
Markdown helpers that keep a generated table intact whatever the data holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..paths import ProjectPaths


@dataclass(frozen=True)
class Input:
    """A file (or folder) the site is generated from, and who writes it."""
    key: str
    attr: str  # the ProjectPaths attribute that locates it
    producer: str  # named in the failure message when it is missing
    folder: bool = False

    def path(self, paths: ProjectPaths) -> Path:
        return getattr(paths, self.attr)

    def rel(self, paths: ProjectPaths) -> str:
        return paths.rel(self.path(paths)) + ("/" if self.folder else "")

    def exists(self, paths: ProjectPaths) -> bool:
        p = self.path(paths)
        if self.folder:
            return p.is_dir() and any(f.is_file() for f in p.rglob("*"))
        return p.is_file()


@dataclass(frozen=True)
class Fragment:
    """One generated Markdown fragment (docs/generated/include/NAME.md) that hand-written
    pages pull in, with the inputs it is a pure function of."""
    name: str
    inputs: tuple[Input, ...]
    render: Callable[[ProjectPaths], str]


def cell(value) -> str:
    """One Markdown table cell: no pipes or newlines may leak out of it."""
    s = "" if value is None else str(value)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


class Raw:
    """Markdown that goes into a cell as is (links, code spans): the table extension does
    not split inside code spans, so their pipes must stay unescaped."""

    def __init__(self, s: str):
        self.s = s.replace("\n", " ")


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(cell(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(c) if not isinstance(c, Raw) else c.s for c in r) + " |"
            for r in rows]
    return "\n".join(out) + "\n"


def load_json(inp: Input, paths: ProjectPaths):
    return json.loads(inp.path(paths).read_text(encoding="utf-8"))


def site_path(paths: ProjectPaths, p: Path) -> str:
    """Where a generated file is served: docs/generated/ is the site's /generated/."""
    return "generated/" + Path(p).relative_to(paths.generated_docs).as_posix()
