"""A schematic drawn the way a person draws one, from the circuit's structure.

    from openmetering.schematic import draw
    files = draw(skidl_circuit, "open-meter")  # {file name: .kicad_sch text}

One sheet per function block (a SKiDL subcircuit) and a top sheet with the blocks as a block
diagram. See layout.py for the placement rules and rules.py for the checks the sheets are
held to.
"""

from __future__ import annotations

from . import model
from .project import generate


def draw(circuit, project: str, titles: dict[str, str] | None = None, kept=None, code: str = "",
         log=None) -> dict[str, str]:
    """The .kicad_sch files of a SKiDL circuit, and the record of what each sheet was drawn
    from: {file name: text}. Sheets in `kept` (project.Drawn) whose inputs are unchanged keep
    their text."""
    return generate(model.from_skidl(circuit, project), project, titles, kept, code, log)


__all__ = ["draw", "generate", "model"]
