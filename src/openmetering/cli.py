"""`omd STAGE [args]`: one entry point for the pipeline stages (each is also `python -m`)."""

from __future__ import annotations

import importlib
import sys

from .errors import DesignError

STAGES = {
    "netlist": "openmetering.netlist",
    "bom": "openmetering.bom",
    "assertions": "openmetering.assertions",
    "board": "openmetering.board",
    "checks": "openmetering.checks",
    "fab": "openmetering.fab",
    "docs": "openmetering.docs",
}


def guarded(fn, *args, **kwargs) -> int:
    """Run a stage; a DesignError becomes one clear line on stderr and exit status 1."""
    try:
        fn(*args, **kwargs)
    except DesignError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in STAGES:
        print(f"usage: omd {{{','.join(STAGES)}}} [stage arguments]", file=sys.stderr)
        return 2
    return importlib.import_module(STAGES[argv[0]]).main(argv[1:])
