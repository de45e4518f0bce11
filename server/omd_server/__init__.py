"""Open Metering Device LAN data server."""

from importlib.metadata import version

__version__ = version("openmetering")  # the project's one version (pyproject.toml)
