"""The check results: every report of hardware/reports/ with its verdict and details."""

from __future__ import annotations

import json

from ...paths import ProjectPaths
from ..core import Fragment, Input, Raw, cell, table

REPORTS = Input("reports", "reports", "checks (omd netlist, omd assertions)", folder=True)
STATUS_KEYS = ("ok", "passed", "pass", "success")
FAIL_LISTS = ("errors", "violations", "failures", "failed", "unconnected_items", "unconnected",
              "schematic_parity", "findings")
WARN_LISTS = ("warnings",)


def list_counts(data, names, prefix="") -> list[tuple[str, int]]:
    """(dotted key, length) of every list under a key in names, at any depth."""
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}{k}"
            if k in names and isinstance(v, list):
                out.append((key, len(v)))
            else:
                out += list_counts(v, names, key + " › ")
    return out


def report_status(data) -> tuple[str, str]:
    fails, warns = list_counts(data, FAIL_LISTS), list_counts(data, WARN_LISTS)
    explicit = None
    if isinstance(data, dict):
        for k in STATUS_KEYS:
            if isinstance(data.get(k), bool):
                explicit = data[k]
        if explicit is None and isinstance(data.get("status"), str):
            explicit = data["status"].lower() in ("ok", "pass", "passed", "success")
    ok = explicit if explicit is not None else not any(n for _, n in fails)
    counts = "; ".join(f"{k}: {n}" for k, n in fails + warns)
    return ("✅ pass" if ok else "❌ fail"), counts


MAX_ROWS = 200


def render_json(data, depth: int = 4) -> str:
    """A report as Markdown: a list of records becomes a table with a column per field, a
    mapping of plain values a two-column table, anything deeper a subsection."""
    def scalar(v):
        return not isinstance(v, dict | list)

    if isinstance(data, list):
        if not data:
            return "none\n"
        if all(isinstance(r, dict) for r in data):
            cols = list(dict.fromkeys(k for r in data for k in r))
            rows = [[json.dumps(r.get(c)) if not scalar(r.get(c)) else r.get(c, "")
                     for c in cols] for r in data[:MAX_ROWS]]
            more = f"\n… and {len(data) - MAX_ROWS} more.\n" if len(data) > MAX_ROWS else ""
            return table(cols, rows) + more
        return table(["Value"], [[json.dumps(v) if not scalar(v) else v]
                                 for v in data[:MAX_ROWS]])
    if isinstance(data, dict):
        plain = [[k, v] for k, v in data.items() if scalar(v)]
        out = table(["Item", "Value"], plain) if plain else ""
        for k, v in data.items():
            if scalar(v):
                continue
            if depth <= 0:
                out += f"\n**{k}**: `{cell(json.dumps(v))}`\n"
                continue
            out += f"\n{'#' * depth} {k}\n\n" + render_json(v, min(depth + 1, 6))
        return out or "none\n"
    return f"{data}\n"


def gen_reports(paths: ProjectPaths) -> str:
    d = REPORTS.path(paths)
    summary, details = [], []
    for f in sorted(d.glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        status, counts = report_status(data)
        summary.append([Raw(f"`{f.name}`"), status, counts])
        details.append(f"\n### {f.stem}\n\n{status}\n\n")
        details.append(render_json(data))
    for f in sorted(p for p in d.iterdir() if p.is_file() and p.suffix != ".json"):
        summary.append([Raw(f"`{f.name}`"), "", "text report"])
    return table(["Report", "Result", "Counts"], summary) + "".join(details)


FRAGMENTS = (Fragment("checks", (REPORTS,), gen_reports),)
