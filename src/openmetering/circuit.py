"""The circuit, found through configuration: `[tool.openmetering] circuit = "module:function"`
in pyproject.toml names the function that builds it.

The circuit never imports this tool. It receives a `Design` (the parts catalogue, the pin map
and the error type to raise) and builds itself into SKiDL's default circuit; the netlist
stage then draws, checks and exports it.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from . import kicad, pins
from . import parts as catalogue
from .errors import DesignError
from .paths import ProjectPaths, project


@dataclass(frozen=True)
class Design:
    """What the circuit gets from the tool."""
    catalog: catalogue.Catalog
    pinmap: ModuleType
    error: type[Exception] = DesignError


def skidl_module() -> ModuleType:
    """SKiDL set up for KiCad 9: the library variables before its first import (it reads them
    then), and a symbol search of KiCad's symbol folder only. Its default also searches the
    working directory recursively, which walks the whole repository and its venvs for every
    Part()."""
    os.environ.update(kicad.LIBRARY_VARS)
    import skidl

    skidl.set_default_tool(skidl.KICAD9)
    skidl.lib_search_paths[skidl.KICAD9] = [str(kicad.SYMBOL_DIR)]
    _quick_traces()
    return skidl


def _quick_traces() -> None:
    """SKiDL records where each part, net and block was made with inspect.stack(), which
    reads the source line of every frame: a third of the circuit's build time. The same
    (file, line) list, from the frames alone."""
    import skidl.circuit
    import skidl.logger
    import skidl.node
    import skidl.scriptinfo

    inside = os.path.dirname(skidl.scriptinfo.__file__)

    def get_skidl_trace():
        frames, f = [], sys._getframe(1)
        while f is not None:
            frames.append((f.f_code.co_filename, f.f_lineno))
            f = f.f_back
        return [(os.path.abspath(name), str(line)) for name, line in reversed(frames)
                if not name.startswith(inside)]

    for module in (skidl.circuit, skidl.logger, skidl.node):
        module.get_skidl_trace = get_skidl_trace


def entry(paths: ProjectPaths | None = None) -> Callable:
    spec = (paths or project()).config().get("circuit", "")
    module, _, func = spec.partition(":")
    if not module or not func:
        raise DesignError(f"[tool.openmetering] circuit = {spec!r}: expected 'module:function'")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise DesignError(f"[tool.openmetering] circuit = {spec!r}: {e}") from None


# ---------------------------------------------------------------- the symbols the circuit uses
# SKiDL turns every symbol of a library it opens into a Part, comparing each with all the
# ones before it: KiCad's Connector_Generic, Connector, Device and Regulator_Linear (16 MB,
# thousands of symbols) cost most of the circuit's build time for the 20-odd symbols it
# uses. So SKiDL reads small libraries holding only those symbols (and the ones they
# extend), cut verbatim out of KiCad's files: the same symbols, so the same circuit. The
# schematic still embeds its symbols from KiCad's own files (the search path is restored
# before it is drawn).
_DIRECT = re.compile(r'\bPart\(\s*"([^"]+)"\s*,\s*"([^"]+)"')  # a Part() outside the catalogue
_TOP_SYMBOL = re.compile(r'^\t\(symbol "((?:[^"\\]|\\.)*)"\n.*?^\t\)\n', re.M | re.S)
_EXTENDS = re.compile(r'^\t\t\(extends "((?:[^"\\]|\\.)*)"\)', re.M)


def used_symbols(paths: ProjectPaths, cat: catalogue.Catalog) -> dict[str, set[str]]:
    """lib -> symbol names the circuit can instantiate: every catalogue part's, and those
    its source names in a Part("lib", "name") call of its own (the power flags)."""
    out: dict[str, set[str]] = {}
    for p in cat.parts.values():
        if p.lib and p.symbol:
            out.setdefault(p.lib, set()).add(p.symbol)
    spec = importlib.util.find_spec(entry_module(paths))
    if spec and spec.origin:
        for f in sorted(Path(spec.origin).parent.rglob("*.py")):
            for lib, name in _DIRECT.findall(f.read_text(encoding="utf-8")):
                out.setdefault(lib, set()).add(name)
    return out


def cut_library(text: str, names: set[str]) -> str:
    """The library text with only the named symbols and their parents, in the file's order
    and bytes."""
    chunks = {m[1]: m[0] for m in _TOP_SYMBOL.finditer(text)}
    want, todo = set(), [n for n in names if n in chunks]
    while todo:
        n = todo.pop()
        if n not in want:
            want.add(n)
            todo += [e for e in _EXTENDS.findall(chunks[n]) if e in chunks]
    first = _TOP_SYMBOL.search(text)
    head = text[:first.start()] if first else text.rstrip().removesuffix(")")
    return head + "".join(c for n, c in chunks.items() if n in want) + ")\n"


def small_libraries(paths: ProjectPaths, used: dict[str, set[str]]) -> Path:
    """A folder of the cut libraries, named by what they are cut from (KiCad's files, the
    names, SKiDL's version: SKiDL also keeps its pickles of them there), made once."""
    import skidl

    files = {lib: kicad.SYMBOL_DIR / f"{lib}.kicad_sym" for lib in sorted(used)}
    files = {lib: f for lib, f in files.items() if f.is_file()}
    h = hashlib.sha256(skidl.__version__.encode())
    texts = {}
    for lib, f in files.items():
        raw = f.read_bytes()
        texts[lib] = raw.decode("latin_1")  # as SKiDL reads it
        h.update(f"{lib}\0{sorted(used[lib])}\0{hashlib.sha256(raw).hexdigest()}".encode())
    folder = paths.build / "skidl-symbols" / h.hexdigest()[:16]
    done = folder / ".done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for lib, text in texts.items():
            (folder / f"{lib}.kicad_sym").write_bytes(
                cut_library(text, used[lib]).encode("latin_1"))
        done.write_text("")
    return folder


def entry_module(paths: ProjectPaths) -> str:
    return (paths.config().get("circuit", "")).partition(":")[0]


def build(paths: ProjectPaths | None = None):
    """Build the circuit into a fresh SKiDL default circuit; return (circuit, its nets)."""
    paths = paths or project()
    skidl = skidl_module()
    # the project's own symbols (parts KiCad's library lacks, e.g. the ATM90E32AS)
    own = paths.hardware / "symbols"
    if own.is_dir():
        skidl.lib_search_paths[skidl.KICAD9].append(str(own))
    build_fn = entry(paths)
    skidl.reset()
    skidl.set_default_tool(skidl.KICAD9)
    # No .log/.erc/_sklib.py side files in the caller's directory: the stage reports itself.
    builtins.default_circuit.no_files = True
    cat = catalogue.load(paths.parts)
    small = small_libraries(paths, used_symbols(paths, cat))
    full, pickles = skidl.lib_search_paths[skidl.KICAD9], skidl.config.pickle_dir
    skidl.lib_search_paths[skidl.KICAD9] = [str(small), *full]
    skidl.config.pickle_dir = str(small)  # not the user's home: a pickle goes with its folder
    try:
        nets = build_fn(Design(cat, pins.load_pinmap(paths.pinmap)))
    finally:
        skidl.lib_search_paths[skidl.KICAD9], skidl.config.pickle_dir = full, pickles
    return builtins.default_circuit, nets  # SKiDL keeps its default circuit in builtins
