"""Open Metering Device LAN data server (issue 7)."""

__version__ = "0.1.0"
