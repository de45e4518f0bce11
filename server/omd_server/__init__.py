"""Open Metering Device LAN data server (issue 7)."""

from openmetering import __version__  # noqa: F401  (the one version, from pyproject.toml)
