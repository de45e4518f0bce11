"""The pipeline's one error dialect: every problem a user can act on is a DesignError, and the
CLI turns it into one line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class DesignError(Exception):
    """Bad input to a stage: says what is wrong and where (part, pin, file, field)."""


class MissingInput(DesignError):
    """A file an earlier stage writes is not there: names the file and the stage to run."""


class ToolError(DesignError):
    """An external program (kicad-cli, pcbnew, KiKit, PlantUML, mkdocs, ...) failed; the
    message carries the command and the end of its output."""


class ToolTimeout(ToolError):
    """An external program ran past its time limit."""


class CheckFailed(DesignError):
    """A gate found problems in the design (ERC, DRC, parity, design assertions)."""


def guarded(fn: Callable, *args, **kwargs) -> int:
    """Run a stage; a DesignError becomes one clear message on stderr and exit status 1."""
    try:
        result = fn(*args, **kwargs)
    except DesignError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
