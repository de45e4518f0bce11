"""The circuit, found through configuration: `[tool.openmetering] circuit = "module:function"`
in pyproject.toml names the function that builds it.

The circuit never imports this tool. It receives a `Design` (the parts catalogue, the pin map
and the error type to raise) and builds itself into SKiDL's default circuit; the netlist
stage then draws, checks and exports it.
"""

from __future__ import annotations

import builtins
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
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
    return skidl


def entry(paths: ProjectPaths | None = None) -> Callable:
    spec = (paths or project()).config().get("circuit", "")
    module, _, func = spec.partition(":")
    if not module or not func:
        raise DesignError(f"[tool.openmetering] circuit = {spec!r}: expected 'module:function'")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise DesignError(f"[tool.openmetering] circuit = {spec!r}: {e}") from None


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
    nets = build_fn(Design(catalogue.load(paths.parts), pins.load_pinmap(paths.pinmap)))
    return builtins.default_circuit, nets  # SKiDL keeps its default circuit in builtins
