"""`make chain`'s command: anvil with its state in a file, deployed once, the deployment file
written; a restart reloads the state and keeps the same deployment (nothing redeployed)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from openmetering import chain


def _up(port: int, tmp: Path) -> tuple[subprocess.Popen, list[str]]:
    p = subprocess.Popen([sys.executable, "-m", "openmetering", "chain", "up", "--port", str(port),
                          "--state", str(tmp / "state.json"), "--out", str(tmp / "dep.json")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("anvil on "):
            return p, lines
    p.kill()
    raise AssertionError("chain up did not come up:\n" + "".join(lines))


def _down(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGINT)
    p.wait(30)


def test_chain_up_keeps_state(tmp_path):
    port = chain.free_port()
    p, out = _up(port, tmp_path)
    try:
        dep = json.loads((tmp_path / "dep.json").read_text())
        assert any(line.startswith("deployed") for line in out)
        assert dep["chain_id"] == chain.CHAIN_ID and dep["rpc_url"] == f"http://127.0.0.1:{port}"
        assert set(dep["contracts"]) >= {"MeterRegistry", "AttestationVerifier", "EnergyToken",
                                         "CarbonCredit"}
        assert dep["eip712"]["verifyingContract"] == dep["contracts"]["AttestationVerifier"]["address"]
        # then the oracle: the Functions router, the consumer, and the DON loop running
        assert "FunctionsConsumer" in dep["contracts"] and dep["oracle"]["router"]
        assert any(line.startswith("local DON running") for line in out), out
        chain.register(dep, "meter-07", "0x" + "42" * 20)
    finally:
        _down(p)
    assert (tmp_path / "state.json").stat().st_size > 0
    p, out = _up(port, tmp_path)
    try:
        assert any("is current" in line for line in out), out
        again = json.loads((tmp_path / "dep.json").read_text())
        assert again["contracts"]["AttestationVerifier"]["address"] == \
            dep["contracts"]["AttestationVerifier"]["address"]
        assert again["contracts"]["FunctionsConsumer"]["address"] == \
            dep["contracts"]["FunctionsConsumer"]["address"]
        assert not any(line.startswith("Functions oracle deployed") for line in out), out
        w3 = chain.web3(again["rpc_url"])
        reg = chain.contract(w3, again, "MeterRegistry")
        from omd_server import attestation

        # the registration made before the restart is still on the chain
        assert reg.functions.meter(attestation.meter_key("meter-07")).call()[0] == \
            w3.to_checksum_address("0x" + "42" * 20)
    finally:
        _down(p)
