"""Content stamps: what a stage was last run from and what it wrote, by content hash.

A stage is current when every input it declares (files, the code it runs, tool versions)
hashes as its stamp says, and every output it recorded is still there with the recorded
hash. Contents, not file times: a fresh clone, a checkout or a `touch` changes times but not
the answer, so committed outputs with their committed stamps make a fresh clone's build a
no-op, and an output edited by hand is regenerated.

The stamp is a small sorted JSON file (no times, no absolute paths) listing each input's
hash, so a stale stage can say which input changed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .repro import write_text_if_changed

DPKG_STATUS = Path("/var/lib/dpkg/status")
SKIP_DIRS = {"__pycache__"}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expand(root: Path, patterns: Iterable[str]) -> list[Path]:
    """Files under root matching the patterns (root-relative globs, `**` allowed; a folder
    stands for every file below it), sorted, without byte-code caches."""
    out: set[Path] = set()
    for pat in patterns:
        hits = [root / pat] if not any(c in pat for c in "*?[") else root.glob(pat)
        for p in hits:
            if p.is_dir():
                out |= {q for q in p.rglob("*") if q.is_file()}
            elif p.is_file():
                out.add(p)
    return sorted(p for p in out if not SKIP_DIRS & set(p.relative_to(root).parts))


# ---------------------------------------------------------------- the code a stage runs


@functools.cache
def packages(root: Path) -> dict[str, Path]:
    """Top-level package -> folder, from pyproject's setuptools package-dir."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    dirs = data.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {name: root / d for name, d in dirs.items() if "." not in name}


def _module_file(root: Path, module: str) -> Path | None:
    top, *rest = module.split(".")
    base = packages(root).get(top)
    if base is None:
        return None  # not ours: its version is in the lock file
    p = base.joinpath(*rest)
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    return p.with_suffix(".py") if p.with_suffix(".py").is_file() else None


# ---------------------------------------------------------------- answers kept by content
CACHE_ENTRIES = 4000  # per kind: several checkouts' worth of modules


@functools.cache
def _cache(root: Path, kind: str) -> dict[str, object]:
    try:
        data = json.loads((root / "build" / "cache" / f"{kind}.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def by_content(root: Path, kind: str, data: bytes, compute, code: Iterable[Path] = ()):
    """compute()'s answer (JSON) for these bytes and this code, from build/cache/KIND.json
    when an earlier run stored it: for pure functions of a file's content (the imports of a
    module, the visible part of a board), so a no-op build does not parse them again. The
    key is the content and the code's hashes; a missing or broken cache is computed again."""
    h = hashlib.sha256(data)
    for f in code:
        h.update(Path(f).read_bytes())
    key = h.hexdigest()
    cache = _cache(root, kind)
    if key in cache:
        return cache[key]
    value = cache[key] = compute()
    for old in list(cache)[:max(0, len(cache) - CACHE_ENTRIES)]:
        del cache[old]
    path = root / "build" / "cache" / f"{kind}.json"
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        os.replace(tmp, path)  # a reader sees the old file or the new one, never half
    except OSError:  # a cache that cannot be written only costs the next run the time
        tmp.unlink(missing_ok=True)
    return value


@functools.cache
def _imports(root: Path, path: Path, module: str) -> tuple[str, ...]:
    """Every module `path` (module `module`) may import, at any depth of its code."""
    data = path.read_bytes()
    return tuple(by_content(root, "imports", b"\0".join([data, module.encode(), path.name.encode()]),
                            lambda: list(_scan_imports(data, path, module)), [Path(__file__)]))


def _scan_imports(data: bytes, path: Path, module: str) -> tuple[str, ...]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(data, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.append(base)
            found += [f"{base}.{a.name}" for a in node.names]  # names may be submodules
    return tuple(found)


def code_closure(root: Path, modules: Iterable[str]) -> list[Path]:
    """The source files of `modules` and of every module of this repository they import
    (and their packages' __init__ files), found statically."""
    seen: dict[Path, str] = {}
    todo = list(modules)
    while todo:
        mod = todo.pop()
        parts = mod.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            name = ".".join(parts[:i])
            path = _module_file(root, name)
            if path is None or path in seen:
                continue
            seen[path] = name
            todo += _imports(root, path, name)
    return sorted(seen)


# ---------------------------------------------------------------- tool versions


@functools.cache
def _dpkg() -> dict[str, str]:
    try:
        text = DPKG_STATUS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out = {}
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(" "))
        if "Package" in fields and "installed" in fields.get("Status", ""):
            out[fields["Package"]] = fields.get("Version", "")
    return out


def tool_version(name: str) -> str:
    """A system tool's version: the Debian package's, or "python" for this interpreter."""
    if name == "python":
        return ".".join(map(str, sys.version_info[:3]))
    return _dpkg().get(name, "not installed")


# ---------------------------------------------------------------- stamps


@dataclass(frozen=True)
class Stamp:
    inputs: dict[str, str]  # root-relative file -> sha256, or "tool:NAME" -> version
    outputs: dict[str, str]  # root-relative file -> sha256

    def text(self) -> str:
        return json.dumps({"inputs": dict(sorted(self.inputs.items())),
                           "outputs": dict(sorted(self.outputs.items()))}, indent=1) + "\n"

    @classmethod
    def read(cls, path: Path) -> Stamp | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(dict(data["inputs"]), dict(data["outputs"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        write_text_if_changed(path, self.text())


def hash_files(root: Path, files: Iterable[Path]) -> dict[str, str]:
    return {f.relative_to(root).as_posix(): file_sha256(f) for f in files}


def changed(old: dict[str, str], new: dict[str, str], limit: int = 4) -> list[str]:
    """Readable differences between two name -> hash maps."""
    out = [f"{k} {'added' if k not in old else 'removed' if k not in new else 'changed'}"
           for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
    return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])


def why_stale(root: Path, stamp: Stamp | None, inputs: dict[str, str]) -> list[str]:
    """Empty when the stamp matches these inputs and its outputs are intact; else reasons."""
    if stamp is None:
        return ["no stamp (never built here)"]
    if stamp.inputs != inputs:
        return ["input " + c for c in changed(stamp.inputs, inputs)]
    bad = []
    for rel, sha in stamp.outputs.items():
        p = root / rel
        if not p.is_file():
            bad.append(f"output {rel} missing")
        elif file_sha256(p) != sha:
            bad.append(f"output {rel} edited")
    return bad
