"""Tick check: no arithmetic or ordering on ticks values anywhere in firmware/ but ticks.py.

    python -m firmware.tools.tickcheck            # list findings; exit 1 if there are any
    python -m firmware.tools.tickcheck FILE...    # check these files instead

A ticks value wraps (see firmware/ticks.py): `now - then`, `now + delay`, `now < then` or
`max(a, b)` on one is wrong at the wrap; only ticks_diff/ticks_add/elapsed may combine them.
The check follows ticks values through the code of all the given modules together, to a
fixed point:

* sources: calls of ticks_ms/ticks_us/ticks_cpu/ticks_add (from any module, under any alias)
  and calls of a clock: a name, attribute, parameter or lambda that holds such a function;
* flow: assignments to names (per function scope) and attributes (self.x per class, x of
  other objects by name), arguments into the parameters of the functions, methods and classes
  they call (by position and keyword, and parameter defaults), return values, conditional
  expressions, `and`/`or`, and a ticks value plus or minus a number (flagged, and still a
  ticks value afterwards);
* findings: arithmetic (binary, unary, augmented assignment) with a ticks operand, <, <=, >,
  >= with a ticks operand, and min/max/sorted/sum/abs of ticks values.

Not followed: values inside containers (lists, dicts, tuples returned by a function) and
through functions outside the checked modules; the tests hold the known ticks slots of the
firmware to this analysis, so a refactoring that hides them from it is noticed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

FW = Path(__file__).resolve().parents[1]
IMPLEMENTATION = "ticks.py"  # the one module allowed to do arithmetic on ticks values
TICK_FUNCS = {"ticks_ms", "ticks_us", "ticks_cpu"}
TICK_MAKERS = TICK_FUNCS | {"ticks_add"}
ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
REDUCERS = {"min", "max", "sorted", "sum", "abs"}
VALUE, CLOCK = "value", "clock"


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.what}"


@dataclass
class Func:
    module: str
    qual: str
    node: ast.AST
    params: list[str]  # without self/cls for methods
    is_class: bool = False


@dataclass
class Ctx:
    module: Module
    scopes: tuple[str, ...]  # innermost first, "" = module
    cls: str | None  # class of the enclosing method, for self.x
    self_name: str | None
    func: str | None  # qual of the enclosing function, for return values
    in_class: bool = False  # directly in a class body


class Module:
    def __init__(self, path: Path, name: str):
        self.path = path
        self.name = name
        self.src = path.read_text()
        self.tree = ast.parse(self.src, str(path))
        self.alias: dict[str, str] = {}  # local name -> imported name (from x import a as b)
        self.modules: set[str] = set()  # names bound to imported modules
        self.locals: dict[str, set[str]] = {"": set()}  # scope qual -> names bound in it
        self.classes: set[str] = set()  # quals of class scopes (invisible to their methods)
        self.outer: dict[str, set[str]] = {}  # scope qual -> names declared global/nonlocal


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    a = fn.args
    return [p.arg for p in a.posonlyargs + a.args] + [p.arg for p in a.kwonlyargs]


def _bound_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for e in target.elts for n in _bound_names(e)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


class Analysis:
    def __init__(self, paths: list[Path]):
        self.mods = [Module(p, p.stem) for p in paths]
        self.taint: dict[tuple, set[str]] = {}
        # `ticks + n` is a ticks value, `ticks - ticks` is not: that rule is not monotone, so
        # it joins only once every other flow has reached its fixed point
        self.shifts = False
        self.funcs: dict[str, list[Func]] = {}  # bare name -> definitions
        for m in self.mods:
            self._index(m, m.tree, "", None)

    # --- indexing: scopes, their local names, definitions --------------------------------
    def _index(self, m: Module, node: ast.AST, qual: str, cls: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                m.locals[qual].add(child.name)
                q = f"{qual}.{child.name}" if qual else child.name
                params = _params(child)
                is_method = cls is not None and not any(
                    isinstance(d, ast.Name) and d.id == "staticmethod"
                    for d in child.decorator_list)
                m.locals[q] = set(params)
                m.outer[q] = set()
                f = Func(m.name, q, child, params[1:] if is_method else params)
                self.funcs.setdefault(child.name, []).append(f)
                self._index(m, child, q, None)
            elif isinstance(child, ast.ClassDef):
                m.locals[qual].add(child.name)
                q = f"{qual}.{child.name}" if qual else child.name
                m.locals[q] = set()
                m.outer[q] = set()
                m.classes.add(q)
                self._index(m, child, q, child.name)
                for item in child.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                        self.funcs.setdefault(child.name, []).append(
                            Func(m.name, f"{q}.__init__", item, _params(item)[1:], True))
            else:
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for a in child.names:
                        local = a.asname or a.name.split(".")[0]
                        m.locals[qual].add(local)
                        if isinstance(child, ast.ImportFrom):
                            m.alias[local] = a.name
                        else:
                            m.modules.add(local)
                elif isinstance(child, ast.Global | ast.Nonlocal):
                    m.outer.setdefault(qual, set()).update(child.names)
                elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    m.locals[qual].add(child.id)
                elif isinstance(child, ast.arg):
                    pass
                self._index(m, child, qual, cls)

    # --- taint store ----------------------------------------------------------------------
    def _add(self, slot: tuple, kinds: set[str]) -> None:
        if kinds:
            cur = self.taint.setdefault(slot, set())
            if not kinds <= cur:
                cur |= kinds
                self.changed = True

    def _get(self, slot: tuple) -> set[str]:
        return self.taint.get(slot, set())

    def _name_slot(self, ctx: Ctx, name: str) -> tuple:
        m = ctx.module
        for i, q in enumerate(ctx.scopes):
            if q in m.classes and i > 0:
                continue
            if name in m.locals.get(q, ()) and name not in m.outer.get(q, ()):
                return ("n", m.name, q, name)
        return ("n", m.name, "", name)

    def _attr_kinds(self, ctx: Ctx, node: ast.Attribute) -> set[str]:
        out: set[str] = set()
        if isinstance(node.value, ast.Name) and node.value.id == ctx.self_name and ctx.cls:
            out |= self._get(("a", ctx.module.name, ctx.cls, node.attr))
        else:
            for slot, k in self.taint.items():
                if slot[0] == "a" and slot[3] == node.attr:
                    out |= k
        return out | self._get(("a*", node.attr))

    def _defs_returning_value(self, name: str) -> bool:
        return any(VALUE in self._get(("r", f.module, f.qual)) for f in self.funcs.get(name, ())
                   if not f.is_class)

    # --- expressions ----------------------------------------------------------------------
    def kinds(self, e: ast.AST | None, ctx: Ctx) -> set[str]:
        if e is None:
            return set()
        if isinstance(e, ast.Name):
            out = set(self._get(self._name_slot(ctx, e.id)))
            if ctx.module.alias.get(e.id, e.id) in TICK_FUNCS:
                out.add(CLOCK)
            return out
        if isinstance(e, ast.Attribute):
            out = self._attr_kinds(ctx, e)
            if e.attr in TICK_FUNCS:
                out.add(CLOCK)
            if self._defs_returning_value(e.attr):  # mod.now, self.now: a clock
                out.add(CLOCK)
            return out
        if isinstance(e, ast.Call):
            return self._call_kinds(e, ctx)
        if isinstance(e, ast.IfExp):
            return self.kinds(e.body, ctx) | self.kinds(e.orelse, ctx)
        if isinstance(e, ast.BoolOp):
            return set().union(*(self.kinds(v, ctx) for v in e.values))
        if isinstance(e, ast.NamedExpr):
            return self.kinds(e.value, ctx)
        if isinstance(e, ast.BinOp):
            if not self.shifts:
                return set()
            left, right = VALUE in self.kinds(e.left, ctx), VALUE in self.kinds(e.right, ctx)
            if isinstance(e.op, ast.Add | ast.Sub) and left != right:
                return {VALUE}  # a shifted ticks value, e.g. a deadline
            if isinstance(e.op, ast.BitAnd | ast.Mod) and left and not right:
                return {VALUE}
            return set()
        if isinstance(e, ast.Lambda):
            inner = Ctx(ctx.module, ctx.scopes, ctx.cls, ctx.self_name, None)
            return {CLOCK} if VALUE in self.kinds(e.body, inner) else set()
        return set()

    def _targets(self, func: ast.AST, ctx: Ctx) -> list[Func]:
        if isinstance(func, ast.Name):
            scope = self._name_slot(ctx, func.id)[2]
            if scope:  # a nested def (or a local variable: no definition matches)
                q = f"{scope}.{func.id}"
                return [f for f in self.funcs.get(func.id, ())
                        if f.module == ctx.module.name and f.qual == q]
            return self.funcs.get(ctx.module.alias.get(func.id, func.id), [])
        if isinstance(func, ast.Attribute):
            return self.funcs.get(func.attr, [])
        return []

    def _call_kinds(self, call: ast.Call, ctx: Ctx) -> set[str]:
        f = call.func
        callee = self.kinds(f, ctx)
        name = ctx.module.alias.get(f.id, f.id) if isinstance(f, ast.Name) else (
            f.attr if isinstance(f, ast.Attribute) else None)
        out: set[str] = set()
        if CLOCK in callee or name in TICK_MAKERS:
            out.add(VALUE)
        if isinstance(f, ast.Name) and f.id in ("min", "max") and any(
                VALUE in self.kinds(a, ctx) for a in call.args):
            out.add(VALUE)
        for t in self._targets(f, ctx):
            if not t.is_class:
                out |= self._get(("r", t.module, t.qual))
        return out

    # --- one pass over a module: propagate, or collect findings ---------------------------
    def _assign(self, target: ast.AST, kinds: set[str], ctx: Ctx) -> None:
        if isinstance(target, ast.Name):
            self._add(self._name_slot(ctx, target.id), kinds)
        elif isinstance(target, ast.Attribute):
            v = target.value
            if isinstance(v, ast.Name) and v.id == ctx.self_name and ctx.cls:
                self._add(("a", ctx.module.name, ctx.cls, target.attr), kinds)
            else:
                self._add(("a*", target.attr), kinds)
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._assign(elt, kinds, ctx)
        elif isinstance(target, ast.Starred):
            self._assign(target.value, kinds, ctx)

    def _bind_call(self, call: ast.Call, ctx: Ctx) -> None:
        for t in self._targets(call.func, ctx):
            m = next(x for x in self.mods if x.name == t.module)
            qual = t.qual
            for i, a in enumerate(call.args):
                if isinstance(a, ast.Starred) or i >= len(t.params):
                    continue
                self._add(("n", m.name, qual, t.params[i]), self.kinds(a, ctx))
            for kw in call.keywords:
                if kw.arg in t.params:
                    self._add(("n", m.name, qual, kw.arg), self.kinds(kw.value, ctx))

    def _visit(self, node: ast.AST, ctx: Ctx, found: list[Finding] | None) -> None:
        m = ctx.module
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            q = f"{ctx.scopes[0]}.{node.name}" if ctx.scopes[0] else node.name
            params = _params(node)
            cls, self_name = ctx.cls, ctx.self_name
            if ctx.in_class:
                static = any(isinstance(d, ast.Name) and d.id == "staticmethod"
                             for d in node.decorator_list)
                self_name = params[0] if params and not static else None
            a = node.args
            positional = a.posonlyargs + a.args
            for p, d in zip(positional[len(positional) - len(a.defaults):], a.defaults,
                            strict=True):
                self._add(("n", m.name, q, p.arg), self.kinds(d, ctx))
            for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
                if d is not None:
                    self._add(("n", m.name, q, p.arg), self.kinds(d, ctx))
            inner = Ctx(m, (q,) + ctx.scopes, cls, self_name, q)
            for d in node.decorator_list + a.defaults + [x for x in a.kw_defaults if x]:
                self._visit(d, ctx, found)
            for stmt in node.body:
                self._visit(stmt, inner, found)
            # the def binds its name: a function that returns ticks values is a clock
            if VALUE in self._get(("r", m.name, q)) and not ctx.in_class:
                self._add(self._name_slot(ctx, node.name), {CLOCK})
            return
        if isinstance(node, ast.ClassDef):
            q = f"{ctx.scopes[0]}.{node.name}" if ctx.scopes[0] else node.name
            inner = Ctx(m, (q,) + ctx.scopes, node.name, None, None, True)
            for stmt in node.body:
                self._visit(stmt, inner, found)
            return
        if isinstance(node, ast.Assign):
            if isinstance(node.value, ast.Tuple | ast.List) and all(
                    isinstance(t, ast.Tuple | ast.List) and len(t.elts) == len(node.value.elts)
                    for t in node.targets):
                for t in node.targets:
                    for te, ve in zip(t.elts, node.value.elts, strict=True):
                        self._assign(te, self.kinds(ve, ctx), ctx)
            else:
                k = self.kinds(node.value, ctx)
                for t in node.targets:
                    self._assign(t, k, ctx)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._assign(node.target, self.kinds(node.value, ctx), ctx)
        elif isinstance(node, ast.AugAssign):
            tk, vk = self.kinds(node.target, ctx), self.kinds(node.value, ctx)
            if VALUE in tk or VALUE in vk:
                self._assign(node.target, {VALUE}, ctx)
                self._report(found, m, node, "augmented assignment on a ticks value")
        elif isinstance(node, ast.NamedExpr):
            self._assign(node.target, self.kinds(node.value, ctx), ctx)
        elif isinstance(node, ast.Return) and ctx.func is not None:
            self._add(("r", m.name, ctx.func), self.kinds(node.value, ctx))
        elif isinstance(node, ast.Call):
            self._bind_call(node, ctx)
            f = node.func
            if isinstance(f, ast.Name) and f.id in REDUCERS and self._name_slot(
                    ctx, f.id)[2] == "" and f.id not in m.locals[""]:
                if any(VALUE in self.kinds(a.value if isinstance(a, ast.Starred) else a, ctx)
                       for a in node.args):
                    self._report(found, m, node, f"{f.id}() of ticks values")
        elif isinstance(node, ast.BinOp):
            fmt = isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and \
                isinstance(node.left.value, str | bytes)
            if not fmt and (VALUE in self.kinds(node.left, ctx)
                            or VALUE in self.kinds(node.right, ctx)):
                self._report(found, m, node, "arithmetic on a ticks value")
        elif isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            if VALUE in self.kinds(node.operand, ctx):
                self._report(found, m, node, "arithmetic on a ticks value")
        elif isinstance(node, ast.Compare):
            operands = [node.left] + node.comparators
            for i, op in enumerate(node.ops):
                if isinstance(op, ORDER) and (VALUE in self.kinds(operands[i], ctx)
                                              or VALUE in self.kinds(operands[i + 1], ctx)):
                    self._report(found, m, node, "ordering comparison on a ticks value")
                    break
        elif isinstance(node, ast.Lambda):
            inner = Ctx(m, ctx.scopes, ctx.cls, ctx.self_name, None)
            self._visit(node.body, inner, found)
            return
        for child in ast.iter_child_nodes(node):
            self._visit(child, ctx, found)

    def _report(self, found, m: Module, node: ast.AST, what: str) -> None:
        if found is not None:
            seg = ast.get_source_segment(m.src, node) or ""
            seg = " ".join(seg.split())
            found.append(Finding(str(m.path), node.lineno, node.col_offset + 1,
                                 f"{what}: `{seg}` (use ticks.ticks_diff/ticks_add/elapsed)"))

    def run(self) -> list[Finding]:
        for self.shifts in (False, True):
            for _ in range(100):
                self.changed = False
                for m in self.mods:
                    self._visit(m.tree, Ctx(m, ("",), None, None, None), None)
                if not self.changed:
                    break
            else:  # pragma: no cover - taint only grows over a finite set of slots
                raise RuntimeError("tick check did not converge")
        found: list[Finding] = []
        for m in self.mods:
            self._visit(m.tree, Ctx(m, ("",), None, None, None), found)
        return sorted(set(found), key=lambda f: (f.path, f.line, f.col, f.what))

    def ticks_slots(self) -> set[str]:
        """Readable names of everything found to hold a ticks value or a clock."""
        out = set()
        for slot, kinds in self.taint.items():
            tag = "+".join(sorted(kinds))
            if slot[0] == "n":
                out.add(f"{slot[1]}:{slot[2] or '<module>'}:{slot[3]}={tag}")
            elif slot[0] == "a":
                out.add(f"{slot[1]}:{slot[2]}.{slot[3]}={tag}")
            elif slot[0] == "a*":
                out.add(f"*.{slot[1]}={tag}")
            else:
                out.add(f"{slot[1]}:{slot[2]}()={tag}")
        return out


def firmware_files(root: Path = FW) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if p.name != IMPLEMENTATION
                  or p.parent != root)


def check(paths: list[Path] | None = None) -> tuple[list[Finding], Analysis]:
    a = Analysis(list(paths) if paths else firmware_files())
    return a.run(), a


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    args = ap.parse_args(argv)
    found, _ = check(args.files or None)
    for f in found:
        print(f)
    print(f"tick check: {len(found)} finding(s)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
