"""Open Metering Device tooling: the hardware pipeline, one package or module per stage.

circuit -> `netlist` (schematic, ERC, KiCad netlist) -> `bom` -> `assertions` -> `board`
(place, route, pour) -> `checks` (DRC, parity) -> `fab` (order packages) -> `docs` (the site);
`cli` runs any of them (`omd STAGE`).
"""

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    """The one version of the project: pyproject.toml's, as installed (or read from the
    checkout when this runs from the source tree uninstalled)."""
    try:
        return version("openmetering")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


__version__ = _version()
