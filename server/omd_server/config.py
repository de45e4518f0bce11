"""Server configuration: a TOML file (optional) overridden by OMD_* environment variables.

Environment variables win so the same file can be reused by systemd drop-ins and by tests, and
so multi-worker uvicorn (which re-imports the app in each process) sees one configuration.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Config:
    # storage: sqlite:///path/to/omd.db (default) or postgresql://user@host:port/db
    database_url: str = "sqlite:///omd.db"
    # sqlite synchronous level; FULL fsyncs the WAL on every commit so an acknowledged reading
    # also survives a power cut, not only a process kill
    sqlite_synchronous: str = "FULL"
    # cap on the SQLite file size (0 = no cap); hitting it behaves exactly like a full disk
    sqlite_max_size_mb: int = 0
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # accept the seed's unsigned shape {"voltage","current","watts","timestamp"}; off by default
    allow_unsigned: bool = False
    # meter_id given to unsigned readings that carry none
    unsigned_meter_id: str = "seed"
    # a reading may be at most this far in the future of the server clock
    max_clock_skew_s: int = 300
    # store-and-forward replays may be old, but not older than this (0 = no limit)
    max_age_days: int = 0
    # readings before this instant are refused: a meter whose RTC was never set says 1970/2000
    earliest_timestamp: str = "2020-01-01T00:00:00Z"
    # |watts| must be within V*I*PF (PF=1 when absent) +/- rel * V*I + abs
    watts_tolerance_rel: float = 0.05
    watts_tolerance_abs_w: float = 2.0
    max_batch: int = 1000
    max_body_bytes: int = 2_000_000
    # evidence photos
    image_dir: str = "images"
    max_image_bytes: int = 2_000_000
    image_retention_days: int = 30
    image_max_total_mb: int = 1024
    # local time zone for day/month energy totals and the status page
    timezone: str = "UTC"
    # Home Assistant MQTT bridge (disabled when mqtt_host is empty)
    mqtt_host: str = ""
    mqtt_port: int = 1883
    mqtt_username: str = ""
    mqtt_password: str = ""
    # a meter is published 'offline' after this long without a reading
    mqtt_availability_timeout_s: int = 300
    # the status page's address as Home Assistant's users reach it (device configuration_url);
    # empty: http://<host or this machine's name>:<port>/
    public_url: str = ""
    log_level: str = "info"
    # chain deployment file (python -m openmetering.chain up writes var/chain/local.json);
    # empty: attestations are answered 503 (the meters keep them) until one is configured
    deployment_file: str = ""
    # JSON-RPC URL of that chain; empty: the deployment file's rpc_url
    chain_rpc_url: str = ""
    # the oracle requester (oracle.py): asks the FunctionsConsumer for every stored
    # attestation. Run it in one process per deployment (not in every worker)
    oracle_requester: bool = False
    oracle_poll_s: float = 1.0
    oracle_backoff_s: float = 2.0
    oracle_max_attempts: int = 6
    # the requester's private key (hex, in a file only its user reads); empty: the dev chain's
    # unlocked requester account from the deployment file
    oracle_key_file: str = ""
    # the public page (/public) and API (/api/v1/public/...) of certified intervals
    public_data: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    def sqlite_path(self) -> str:
        path = self.database_url.split(":", 1)[1]
        # sqlite:///rel.db and sqlite:////abs.db, as in SQLAlchemy
        if path.startswith("///"):
            path = path[3:]
        elif path.startswith("//"):
            path = path[2:]
        return path


_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _coerce(name: str, kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _BOOL_TRUE:
            return True
        if text in _BOOL_FALSE:
            return False
        raise ValueError(f"config {name}: expected a boolean, got {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"config {name}: expected {kind.__name__}, got {raw!r}") from None


def load(path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    path = path or env.get("OMD_CONFIG") or None
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path:
        p = Path(path)
        with p.open("rb") as fh:
            data = tomllib.load(fh)
        base_dir = p.resolve().parent
    kinds = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "extra"}
    types = {"str": str, "int": int, "float": float, "bool": bool}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in kinds:
            raise ValueError(f"config file {path}: unknown setting {key!r}")
        values[key] = _coerce(key, types[kinds[key]], raw)
    for key in kinds:
        ek = "OMD_" + key.upper()
        if ek in env:
            values[key] = _coerce(ek, types[kinds[key]], env[ek])
    cfg = Config(**values)
    # relative paths in a config file are relative to that file, so a unit file's
    # WorkingDirectory does not silently move the database
    if cfg.is_sqlite and cfg.sqlite_path() != ":memory:" and not Path(cfg.sqlite_path()).is_absolute():
        cfg.database_url = "sqlite:///" + str(base_dir / cfg.sqlite_path())
    if not Path(cfg.image_dir).is_absolute():
        cfg.image_dir = str(base_dir / cfg.image_dir)
    if cfg.deployment_file and not Path(cfg.deployment_file).is_absolute():
        cfg.deployment_file = str(base_dir / cfg.deployment_file)
    if cfg.oracle_key_file and not Path(cfg.oracle_key_file).is_absolute():
        cfg.oracle_key_file = str(base_dir / cfg.oracle_key_file)
    return cfg


def to_env(cfg: Config) -> dict[str, str]:
    """Environment that reproduces cfg in a child process (uvicorn workers, test subprocesses)."""
    out = {}
    for f in dataclasses.fields(Config):
        if f.name == "extra":
            continue
        v = getattr(cfg, f.name)
        out["OMD_" + f.name.upper()] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out
