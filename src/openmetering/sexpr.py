"""The one reader of KiCad's s-expression files (netlists, and anything else KiCad writes in
that syntax): nested lists of strings, quoted and bare atoms alike, plus three small lookups."""

from __future__ import annotations

import re

from .errors import DesignError

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def parse(text: str, source: str = "s-expression"):
    """Parse one s-expression into nested lists of str."""
    stack: list[list] = [[]]
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise DesignError(f"{source}: bad s-expression at offset {pos}")
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            if len(stack) < 2:
                raise DesignError(f"{source}: unbalanced ')' at offset {pos - 1}")
            done = stack.pop()
            stack[-1].append(done)
        elif m.group(3) is not None:
            stack[-1].append(m.group(3).replace('\\"', '"').replace("\\\\", "\\"))
        elif m.group(4) is not None:
            stack[-1].append(m.group(4))
    if len(stack) != 1 or not stack[0]:
        raise DesignError(f"{source}: unbalanced s-expression")
    return stack[0][0]


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
