"""KiCad s-expressions that keep the difference between quoted and bare atoms.

The library symbols are copied into each sheet as KiCad wrote them, so an atom that was
quoted stays quoted ("~", "1") and a keyword stays bare (yes, passive): that keeps the
embedded copies equal to the library for KiCad's ERC and readable by other parsers."""

from __future__ import annotations

import re

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


class Q(str):
    """A quoted atom."""

    __slots__ = ()


def parse(text: str, start: int = 0):
    """Parse the s-expression starting at `start`; return (tree, end offset)."""
    stack: list[list] = []
    pos = start
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            if not text[pos:].strip():
                break
            raise ValueError(f"bad s-expression at offset {pos}")
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            done = stack.pop()
            if not stack:
                return done, pos
            stack[-1].append(done)
        elif m.group(3) is not None:
            stack[-1].append(Q(m.group(3).replace('\\"', '"').replace("\\\\", "\\")))
        else:
            stack[-1].append(m.group(4))
    raise ValueError("unbalanced s-expression")


def num(v: float) -> str:
    """A coordinate as KiCad writes it: up to 4 decimals, no trailing zeros, no -0."""
    s = f"{round(float(v), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _atom(a) -> str:
    if isinstance(a, Q):
        return '"' + a.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(a, bool):
        return "yes" if a else "no"
    if isinstance(a, (int, float)):
        return num(a)
    return str(a)


def dump(tree, indent: int = 0) -> str:
    """KiCad-style text: a list without sub-lists on one line, otherwise one child per line."""
    pad = "\t" * indent
    atoms = []
    subs = []
    for x in tree:
        if isinstance(x, list):
            subs.append(x)
        elif subs:  # an atom after a sub-list: keep order, write it on its own line
            subs.append(x)
        else:
            atoms.append(_atom(x))
    head = pad + "(" + " ".join(atoms)
    if not subs:
        return head + ")"
    lines = [head]
    for s in subs:
        lines.append(dump(s, indent + 1) if isinstance(s, list) else "\t" * (indent + 1) + _atom(s))
    return "\n".join(lines) + "\n" + pad + ")"


def find(tree, name):
    """The first child list whose head is `name`, or None."""
    for x in tree[1:]:
        if isinstance(x, list) and x and x[0] == name:
            return x
    return None


def find_all(tree, name):
    return [x for x in tree[1:] if isinstance(x, list) and x and x[0] == name]
