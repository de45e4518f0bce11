"""Text extents in KiCad's stroke font (newstroke), the font Eeschema draws every text with.

Widths: the advances are KiCad's own, measured with pcbnew's text bounding box (the same
stroke font engine Eeschema uses) for each printable ASCII character, in 1/21 of the text
size (the font's design grid); a line is as wide as KiCad's own text box for it:
size * sum(advances) / 21 + 0.16 * size (pen and side bearings).

Heights: where the ink is, relative to the text's anchor, measured from Eeschema's SVG plot
(`kicad-cli sch export svg`) of 1.27 mm text: capitals from 0.941 mm above to 0.329 mm below
the anchor when centred, descenders 0.42 mm further down, an overbar 0.35 mm further up
(bottom- and top-justified text shifted as KiCad shifts it). KiCad's own box is taller
(1.59 x size, it keeps room for a second line); the ink is what a reader sees overlap.

tests/circuit/test_schematic.py measures both again from the installed KiCad, so the
tables cannot drift from it.
"""

from __future__ import annotations

import re

# Advance of chr(32 + i) in 1/21 em, from pcbnew (see the module docstring).
_ADVANCE_21 = (
    16, 10, 16, 21, 20, 24, 26, 10, 14, 14, 16, 26, 10, 26, 10, 22, 20, 20, 20, 20, 20, 20, 20,
    20, 20, 20, 10, 10, 26, 26, 26, 18, 27, 18, 21, 21, 21, 19, 18, 21, 22, 10, 16, 21, 17, 24,
    22, 22, 21, 22, 21, 20, 16, 22, 18, 24, 20, 18, 20, 14, 14, 14, 12, 16, 8, 19, 19, 18, 19,
    18, 12, 19, 19, 10, 10, 17, 11, 28, 19, 19, 19, 19, 13, 17, 12, 19, 16, 22, 17, 16, 17, 14,
    20, 14, 15,
)
_EXTRA_21 = {"µ": 22, "Ω": 24, "°": 16, "±": 26}
_WIDE_21 = 24  # anything else: as wide as 'M', so an unknown glyph is never underestimated
SUBSCRIPT_SCALE = 0.8  # _{..} and ^{..} in KiCad's text markup
MARGIN = 0.16  # x size: KiCad's box is wider than the advances by the pen and side bearings
# ink, in mm for 1.27 mm text (scaled for other sizes), y down, relative to the anchor:
# (top of capitals, baseline) for each vertical justification; pen half-width included
_INK_127 = {"center": (-0.941 - 0.076, 0.329 + 0.076), "bottom": (-1.684 - 0.076, -0.413 + 0.076),
            "top": (-0.198 - 0.076, 1.072 + 0.076)}
_DESCENDER_127 = 0.42
_OVERBAR_127 = 0.352
_DESCENDERS = set("gjpqy,;_()[]{}|@$")

_MARKUP = re.compile(r"([_^~])\{([^{}]*)\}")


def _advance(ch: str) -> int:
    o = ord(ch)
    if 32 <= o < 127:
        return _ADVANCE_21[o - 32]
    return _EXTRA_21.get(ch, _WIDE_21)


def text_width(text: str, size: float = 1.27) -> float:
    """Width in mm of one line of `text` at `size`, as KiCad's text box measures it."""
    units = 0.0
    pos = 0
    for m in _MARKUP.finditer(text):
        units += sum(_advance(c) for c in text[pos:m.start()])
        inner = sum(_advance(c) for c in m.group(2))
        units += inner * (SUBSCRIPT_SCALE if m.group(1) in "_^" else 1.0)
        pos = m.end()
    units += sum(_advance(c) for c in text[pos:])
    return size * units / 21.0 + MARGIN * size


def text_height(size: float = 1.27) -> float:
    """Height of the ink of a line of capitals with descenders (for symbol-internal texts)."""
    top, base = _INK_127["center"]
    return (base - top + _DESCENDER_127) * size / 1.27


def ink_box(text: str, x: float, y: float, size: float = 1.27, hjust: str = "center",
            vjust: str = "center", vertical: bool = False) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) on the sheet of a text anchored at (x, y), y down. `vertical` text
    reads bottom to top (KiCad's 90 degrees); its justifications turn with it."""
    w = text_width(text, size)
    k = size / 1.27
    top, base = (v * k for v in _INK_127[vjust])
    plain = _MARKUP.sub(lambda m: m.group(2), text)
    if any(c in _DESCENDERS for c in plain) or "_{" in text:
        base += _DESCENDER_127 * k
    if "~{" in text:
        top -= _OVERBAR_127 * k
    left = {"left": 0.0, "center": -w / 2, "right": -w}[hjust]
    if not vertical:
        return x + left, y + top, x + left + w, y + base
    # turned 90 degrees counter-clockwise about the anchor: (dx, dy) -> (dy, -dx)
    return x + top, y - (left + w), x + base, y - left


# Labels, measured the same way (Eeschema's SVG plot of 1.27 mm labels): a local label's
# text stands 0.51 mm above its wire and starts 0.2 mm past the point; a hierarchical label
# is its shape plus its text, 1.2 mm longer than the text's box and 0.75 mm either side of
# the wire; a global label's outline is 2.5 mm longer and 1.35 mm either side.
def label_box(kind: str, text: str, x: float, y: float, direction: str,
              size: float = 1.27) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a label's ink; `direction` is where the text runs from the point
    (right, left, up, down)."""
    k = size / 1.27
    w = text_width(text, size)
    if kind == "local":
        start, length, near, far = 0.2 * k, w, 0.35 * k, 1.9 * k  # beside the wire, one side
        plain = _MARKUP.sub(lambda m: m.group(2), text)
        if any(c in _DESCENDERS for c in plain) or "_{" in text:
            near = 0.0  # descenders come down to the wire
        if "~{" in text:
            far += _OVERBAR_127 * k
        a0, a1, b0, b1 = start, start + length, -far, -near
    else:
        plain = _MARKUP.sub(lambda m: m.group(2), text)
        down = _DESCENDER_127 * k if any(c in _DESCENDERS for c in plain) or "_{" in text else 0.0
        up = _OVERBAR_127 * k if "~{" in text else 0.0
        if kind == "global":
            a0, a1, b0, b1 = -0.1 * k, w + 2.6 * k, -1.35 * k - up, 1.35 * k + down
        else:  # the shape's outline starts at the point, half a pen before it
            a0, a1, b0, b1 = -0.1 * k, w + 1.3 * k, -0.75 * k - up, 0.75 * k + down
    if direction == "right":
        return x + a0, y + b0, x + a1, y + b1
    if direction == "left":
        return x - a1, y + b0, x - a0, y + b1
    # vertical labels: the text reads bottom to top, standing left of a vertical wire
    if direction == "up":
        return x + b0, y - a1, x + b1, y - a0
    return x + b0, y + a0, x + b1, y + a1
