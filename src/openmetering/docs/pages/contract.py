"""The reading contract and its Home Assistant mapping (contract/): the reading's fields, the
MQTT discovery settings and sensors, and what each sensor means per installation point; the
interval attestation a meter signs for the chain, and the token units."""

from __future__ import annotations

from ...paths import ProjectPaths
from ..core import Fragment, Input, Raw, load_json, table

SCHEMA = Input("schema", "reading_schema", "reading contract (contract/)")
HOMEASSISTANT = Input("homeassistant", "homeassistant", "reading contract (contract/)")
ATTESTATION = Input("attestation", "attestation", "attestation contract (contract/)")


def gen_reading(paths: ProjectPaths) -> str:
    schema = load_json(SCHEMA, paths)
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
    deps = schema.get("dependentRequired", {})
    if deps:
        out.append("\nFields that come together (version 2): "
                   + "; ".join(f"`{k}` needs " + ", ".join(f"`{n}`" for n in v)
                               for k, v in deps.items()) + ".\n")
    canon = schema.get("x-canonical")
    if canon:
        out.append("\n### Canonical encoding and signature\n\n")
        out.append(table(["Aspect", "Rule"], [[k, v] for k, v in canon.items()]))
    return "".join(out)


def gen_homeassistant(paths: ProjectPaths) -> str:
    ha = load_json(HOMEASSISTANT, paths)
    out = [ha.get("description", "") + "\n\n"]
    topics = [[k, Raw(f"`{ha[k]}`")] for k in
              ("discovery_prefix", "discovery_topic", "state_topic", "availability_topic",
               "bridge_availability_topic", "payload_available", "payload_not_available",
               "unique_id", "default_entity_id") if k in ha]
    out.append(table(["Setting", "Value"], topics))
    if "derived_rule" in ha:
        out.append("\nDerived sensors: " + ha["derived_rule"] + ".\n")
    if "entity_id_rule" in ha:
        out.append("\nEntity ids: " + ha["entity_id_rule"] + ".\n")
    if "device" in ha:
        out.append("\nDevice: " + ", ".join(f"{k} *{v}*" for k, v in ha["device"].items())
                   + "\n")
    rows = []
    for s in ha.get("sensors", []):
        src = s.get("source", s["key"])
        scale = f" × {s['scale']}" if "scale" in s else ""
        if "minus" in s:
            scale = f" − `{s['minus']}`"
        rows.append([Raw(f"`{s['key']}`"), s.get("name", ""), Raw(f"`{src}`{scale}"),
                     s.get("device_class", ""), s.get("state_class", ""),
                     s.get("unit_of_measurement") or ""])
    out.append("\n" + table(["Sensor key", "Name", "From reading field", "device_class",
                             "state_class", "Unit"], rows))
    if "display_precision_rule" in ha:
        out.append("\nDisplay precision: " + ha["display_precision_rule"] + ".\n")
    return "".join(out)


def gen_energy_sensors(paths: ProjectPaths) -> str:
    """What each sensor means where the meter is installed, and the power sign."""
    ha = load_json(HOMEASSISTANT, paths)
    names = {s["key"]: s.get("name", s["key"]) for s in ha.get("sensors", [])}
    keys = sorted({k for p in ha.get("installation", []) for k in p["sensors"]},
                  key=list(names).index)
    rows = [[Raw(f"**{p['point']}**: {p['where']}")]
            + [p["sensors"].get(k, "") for k in keys] for p in ha.get("installation", [])]
    out = [table(["Installation point"] + [f"{names[k]} (…_{k})" for k in keys], rows)]
    if "power_sign" in ha:
        out.append("\n**Power sign.** " + ha["power_sign"] + "\n")
    return "".join(out)


def gen_attestation(paths: ProjectPaths) -> str:
    spec = load_json(ATTESTATION, paths)
    e = spec["eip712"]
    rows = [[Raw(f"`{m['name']}`"), Raw(f"`{m['type']}`"), spec["fields"].get(m["name"], "")]
            for m in e["types"][e["primaryType"]]]
    dom = ", ".join(f"{k} = `{v}`" for k, v in e["domain"].items())
    return "".join([
        spec["description"] + "\n\n",
        f"EIP-712 domain: {dom}, plus chainId and verifyingContract from the deployment file.\n\n",
        table(["Member", "EIP-712 type", "Meaning"], rows), "\n",
        table(["Merkle tree", "Rule"], [[k, v] for k, v in spec["merkle"].items()]), "\n",
        table(["Wire format", "Rule"], [["body", spec["wire"]["description"]],
                                        ["signature", spec["wire"]["signature"]],
                                        ["integers", spec["wire"]["server_max_uint_why"]]])])


def gen_token_units(paths: ProjectPaths) -> str:
    u = load_json(ATTESTATION, paths)["units"]
    e, c = u["energy_token"], u["carbon_credit"]
    return table(["Token", "Symbol", "Decimals", "Base unit", "Conversion"], [
        ["EnergyToken", Raw(f"`{e['symbol']}`"), e["decimals"], e["base_unit"],
         f"1 kWh = {e['kwh']:,} {e['symbol']}"],
        ["CarbonCredit", Raw(f"`{c['symbol']}`"), c["decimals"], c["base_unit"],
         f"{c['display_unit']}; {c['formula']}"],
    ])


FRAGMENTS = (
    Fragment("reading-schema", (SCHEMA,), gen_reading),
    Fragment("homeassistant", (HOMEASSISTANT,), gen_homeassistant),
    Fragment("energy-sensors", (HOMEASSISTANT,), gen_energy_sensors),
    Fragment("attestation", (ATTESTATION,), gen_attestation),
    Fragment("token-units", (ATTESTATION,), gen_token_units),
)
