"""The parts catalogue (hardware/parts.toml): loading and validation.

Every other stage gets part facts from here, so a bad entry is caught once, early, with a
message that names the entry and the field.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DesignError
from .kicad import footprint_lib_dir
from .paths import project

LCSC_RE = re.compile(r"^C\d+$")
ASSEMBLY_KINDS = ("smt", "tht", "board", "module")
REQUIRED = ("ref", "value", "manufacturer", "mpn", "lcsc", "price", "description", "assembly")
ON_BOARD_REQUIRED = ("lib", "symbol", "footprint")


@dataclass(frozen=True)
class CatalogPart:
    key: str
    ref: str
    value: str
    manufacturer: str
    mpn: str
    lcsc: str
    description: str
    assembly: str
    unit_usd: float
    price_at_qty: int
    price_date: str
    price_source: str
    jlc_tier: str = ""
    lib: str = ""
    symbol: str = ""
    footprint: str = ""
    facts: dict = field(default_factory=dict)  # electrical data for the design assertions

    @property
    def on_board(self) -> bool:
        return self.assembly in ("smt", "tht", "board")


@dataclass(frozen=True)
class Catalog:
    parts: dict[str, CatalogPart]
    design: dict
    source: Path

    def __getitem__(self, key: str) -> CatalogPart:
        try:
            return self.parts[key]
        except KeyError:
            near = difflib.get_close_matches(key, self.parts, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise DesignError(f"unknown part '{key}': not in {self.source.name}{hint}") from None

    def by_value_footprint(self, value: str, footprint: str) -> CatalogPart | None:
        for p in self.parts.values():
            if p.value == value and p.footprint == footprint:
                return p
        return None


def footprint_path(footprint: str, root: Path | None = None) -> Path:
    lib, _, name = footprint.partition(":")
    folder = root / f"{lib}.pretty" if root else footprint_lib_dir(lib)
    return folder / f"{name}.kicad_mod"


def load(path: Path | None = None, check_footprints: bool = True) -> Catalog:
    path = path or project().parts
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as e:
        raise DesignError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise DesignError(f"cannot read parts catalogue {path}: {e.strerror}") from None
    parts = {}
    for key, entry in data.get("parts", {}).items():
        where = f"{Path(path).name} [parts.{key}]"
        missing = [k for k in REQUIRED if k not in entry]
        if entry.get("assembly") in ("smt", "tht", "board"):
            missing += [k for k in ON_BOARD_REQUIRED if k not in entry]
        if missing:
            raise DesignError(f"{where}: missing field(s) {', '.join(missing)}")
        if entry["assembly"] not in ASSEMBLY_KINDS:
            raise DesignError(
                f"{where}: assembly '{entry['assembly']}' is not one of {', '.join(ASSEMBLY_KINDS)}"
            )
        lcsc = entry["lcsc"]
        # a part whose LCSC number could not be verified says so instead of carrying a guess
        unverified = not lcsc and entry.get("lcsc_status") == "not verified"
        if entry["assembly"] in ("smt", "tht") and not unverified and not LCSC_RE.match(lcsc):
            raise DesignError(
                f"{where}: invalid LCSC number '{lcsc}' (expected C followed by digits, e.g. C25804)"
            )
        if lcsc and not LCSC_RE.match(lcsc):
            raise DesignError(f"{where}: invalid LCSC number '{lcsc}'")
        fp = entry.get("footprint", "")
        if fp and check_footprints and not footprint_path(fp).is_file():
            raise DesignError(
                f"{where}: footprint '{fp}' not found in the KiCad libraries "
                f"(looked for {footprint_path(fp)})"
            )
        price = entry["price"]
        for q in ("usd", "at_qty", "date", "source"):
            if q not in price:
                raise DesignError(f"{where}: price is missing '{q}'")
        if entry["assembly"] == "smt" and entry.get("jlc_tier") not in ("basic", "extended"):
            raise DesignError(f"{where}: jlc_tier must be 'basic' or 'extended' for an SMT part")
        facts = {k: v for k, v in entry.items()
                 if k not in REQUIRED + ON_BOARD_REQUIRED + ("jlc_tier",)}
        parts[key] = CatalogPart(
            key=key,
            ref=entry["ref"],
            value=entry["value"],
            manufacturer=entry["manufacturer"],
            mpn=entry["mpn"],
            lcsc=lcsc,
            description=entry["description"],
            assembly=entry["assembly"],
            unit_usd=float(price["usd"]),
            price_at_qty=int(price["at_qty"]),
            price_date=str(price["date"]),
            price_source=str(price["source"]),
            lib=entry.get("lib", ""),
            symbol=entry.get("symbol", ""),
            footprint=fp,
            jlc_tier=entry.get("jlc_tier", ""),
            facts=facts,
        )
    return Catalog(parts=parts, design=data.get("design", {}), source=Path(path))
