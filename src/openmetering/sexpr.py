"""The one reader (and writer) of KiCad's s-expression files (netlists, symbol libraries,
schematics): nested lists of strings, plus three small lookups.

`parse` gives quoted and bare atoms alike as str. `parse_at` keeps the difference (a quoted
atom is a `Q`), so that `dump` writes a library symbol back exactly as KiCad wrote it: a
quoted "1" stays quoted and a keyword stays bare, which keeps copied symbols equal to the
library for KiCad's ERC and readable by stricter parsers."""

from __future__ import annotations

import re

from .errors import DesignError

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def parse(text: str, source: str = "s-expression"):
    """Parse one s-expression into nested lists of str (the first of the text's top-level
    items; the whole text must be well formed)."""
    return _read(text, 0, source, str, whole=True)[0]


class Q(str):
    """A quoted atom (from `parse_at`, or to be written quoted by `dump`)."""

    __slots__ = ()


def parse_at(text: str, start: int = 0, source: str = "s-expression"):
    """The one s-expression that starts at `start`, atoms quoted as in the text kept as `Q`;
    returns (tree, offset after it). Reads no further than that expression."""
    return _read(text, start, source, Q)


def _read(text: str, start: int, source: str, quoted, whole: bool = False):
    """`whole`: read to the end of the text (its top level gathered in an outer list);
    else stop after the expression at `start`."""
    stack: list[list] = [[]] if whole else []
    floor = 1 if whole else 0  # the stack depth of the top level
    pos = start
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            if not text[pos:].strip():
                break
            raise DesignError(f"{source}: bad s-expression at offset {pos}")
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            if len(stack) <= floor:
                raise DesignError(f"{source}: unbalanced ')' at offset {pos - 1}")
            done = stack.pop()
            if not stack:
                return done, pos
            stack[-1].append(done)
        elif not stack:
            raise DesignError(f"{source}: expected '(' at offset {m.start()}")
        elif m.group(3) is not None:
            stack[-1].append(quoted(m.group(3).replace('\\"', '"').replace("\\\\", "\\")))
        else:
            stack[-1].append(m.group(4))
    if whole and len(stack) == 1 and stack[0]:
        return stack[0][0], pos
    raise DesignError(f"{source}: unbalanced s-expression")


def num(v: float) -> str:
    """A coordinate as KiCad writes it: at most 4 decimals, no trailing zeros, no -0."""
    s = f"{round(float(v), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _atom(a) -> str:
    if isinstance(a, Q):
        return '"' + a.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(a, bool):
        return "yes" if a else "no"
    if isinstance(a, int | float):
        return num(a)
    return str(a)


def dump(tree, indent: int = 0) -> str:
    """KiCad-style text: a list without sub-lists on one line, otherwise one child per line,
    tab-indented as KiCad 9 writes its files."""
    pad = "\t" * indent
    atoms = []
    rest = []
    for x in tree:
        if isinstance(x, list) or rest:
            rest.append(x)
        else:
            atoms.append(_atom(x))
    head = pad + "(" + " ".join(atoms)
    if not rest:
        return head + ")"
    lines = [head]
    for x in rest:
        lines.append(dump(x, indent + 1) if isinstance(x, list) else "\t" * (indent + 1) + _atom(x))
    return "\n".join(lines) + "\n" + pad + ")"


def children(node, name: str) -> list:
    """The sub-lists of `node` whose head is `name`."""
    return [c for c in node[1:] if isinstance(c, list) and c and c[0] == name]


def child(node, name: str):
    found = children(node, name)
    return found[0] if found else None


def value(node, name: str, default: str = "") -> str:
    """The first atom of the child `name`: (name "value")."""
    c = child(node, name) if node is not None else None
    return c[1] if c is not None and len(c) > 1 and isinstance(c[1], str) else default
