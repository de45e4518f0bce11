"""Helpers shared by the server tests (conftest puts this folder on sys.path; pytest runs
with --import-mode=importlib, so conftest itself is not importable)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

from omd_server import contract


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def iso_now(offset_s: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def reading(meter_id: str = "meter-01", seq: int = 1, key: str | None = None, **over) -> dict:
    r = {"meter_id": meter_id, "seq": seq, "timestamp": iso_now(-60), "voltage": 230.0,
         "current": 4.0, "watts": 900.0, "pf": 0.98, "frequency": 50.0,
         "energy_import_wh": 10.0, "energy_export_wh": 100.0 + seq, "fw": "test"}
    r.update(over)
    r = {k: v for k, v in r.items() if v is not None}
    if key:
        r["sig"] = contract.sign(key, r)
    return r
