"""Open Metering Device LAN data server."""

from openmetering import __version__  # noqa: F401  (the one version, from pyproject.toml)
