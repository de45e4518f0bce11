"""The server's API, from the OpenAPI document the server package writes."""

from __future__ import annotations

from ...paths import ProjectPaths
from ..core import Fragment, Input, Raw, load_json, table

OPENAPI = Input("openapi", "openapi", "server (python -m omd_server.openapi)")


def gen_api(paths: ProjectPaths) -> str:
    api = load_json(OPENAPI, paths)
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


FRAGMENTS = (Fragment("api", (OPENAPI,), gen_api),)
