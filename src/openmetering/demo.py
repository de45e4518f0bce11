"""`make demo` (omd chain demo): the whole path on this machine, in order, with fresh state in
var/demo/: mosquitto -> anvil -> contracts -> Functions oracle -> local DON -> omd-server (with
its oracle requester, the Home Assistant bridge and the public page) -> a simulated meter
running the firmware's code path for a few 15-minute intervals on a fast clock. It prints each
interval as it is minted, the balances, the MQTT topics to look at, and `omd-server verify` of
one interval; then keeps everything running until Ctrl-C (or exits with --once).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from . import chain, kicad, oracle
from .paths import ProjectPaths, project

P: ProjectPaths = project()
METER = "demo-01"
PERIOD = 900
READ_S = 60


def _wait_http(url: str, proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise chain.ChainError(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise chain.ChainError(f"{url} did not answer within {timeout} s")


def _meter(dev: Path, srv_url: str, hmac_key: str, dep: dict, t_start: int):
    """The firmware's App and Attestor on a simulated rev-B meter (as the tests drive it)."""
    for p in (str(P.root / "firmware"), str(P.root)):
        if p not in sys.path:
            sys.path.insert(0, p)
    import config
    import main
    import net

    import contract as fwcontract
    from firmware.tools import simdevice

    cfg, _ = config.load(str(dev / "config.json"))
    cfg.update(meter_id=METER, key_hex=hmac_key, server_url=srv_url, interval_s=READ_S)
    cfg["attest"].update(chain_id=dep["chain_id"],
                         verifier=dep["contracts"]["AttestationVerifier"]["address"])
    att = main.attestor_of(cfg, str(dev / "contract"), str(dev / "data"),
                           str(dev / "device.key"))
    # the chip as minichip: constant power per attestation interval, hours in seconds
    device = simdevice.SimDevice(
        cfg, fwcontract.load(str(dev / "contract")), str(dev / "data"),
        lambda u, b, c="application/json", h=None: net.http_post(u, b, c, h, 5),
        t_start - READ_S, chip="mini", log=lambda *a: None, attestor=att)

    def interval(irms: float) -> None:
        w = 231.0 * irms * 0.985
        device.set_power(w, w - 400.0)  # production, 400 W of it used in the house
        for _ in range(PERIOD // READ_S):
            device.interval()

    return interval, att


def run(intervals: int = 4, once: bool = False) -> None:  # pragma: no cover - interactive
    from firmware.tools import bundle

    root = P.root / "var" / "demo"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    procs = []
    anvil = don = None
    try:
        mqtt_port = chain.free_port()
        (root / "mosquitto.conf").write_text(f"listener {mqtt_port} 127.0.0.1\n"
                                             "allow_anonymous true\npersistence false\n")
        mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        procs.append(kicad.spawn([mosq, "-c", str(root / "mosquitto.conf")], what="mosquitto",
                                 log=root / "mosquitto.log"))
        print(f"1. mosquitto on 127.0.0.1:{mqtt_port}", flush=True)
        chain.build()
        anvil = chain.Anvil(timestamp=int(time.time()) - 86400, log=root / "anvil.log").start()
        srv_port = chain.free_port()
        srv_url = f"http://127.0.0.1:{srv_port}"
        dep = chain.deploy(anvil.url, None)
        print(f"2. anvil on {anvil.url}, contracts deployed", flush=True)
        dep = oracle.deploy(dep, srv_url, root / "deployment.json")
        print(f"3. Functions router {dep['oracle']['router']}, consumer "
              f"{dep['contracts']['FunctionsConsumer']['address']}", flush=True)
        don = oracle.Don(dep, root / "don-state.json", log=root / "don.log").start()
        print("4. local DON running (dev chain only: reports skip the OCR signatures)",
              flush=True)
        cfgfile = root / "omd.toml"
        cfgfile.write_text(
            f'database_url = "sqlite:///{root}/omd.db"\nimage_dir = "{root}/img"\n'
            f'port = {srv_port}\ndeployment_file = "{root}/deployment.json"\n'
            f'mqtt_host = "127.0.0.1"\nmqtt_port = {mqtt_port}\noracle_requester = true\n'
            "public_data = true\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMD_")}
        omd = [sys.executable, "-m", "omd_server.cli"]
        key = kicad.run([*omd, "keys", "add", METER, "--config", str(cfgfile)], env=env,
                        what="omd-server keys add").stdout.strip()
        procs.append(kicad.spawn([*omd, "serve", "--config", str(cfgfile)], env=env,
                                 what="omd-server", log=root / "server.log"))
        _wait_http(srv_url + "/api/v1/health", procs[-1])
        print(f"5. omd-server on {srv_url} (public page {srv_url}/public)", flush=True)
        dev = root / "device"
        bundle.build(dev)
        sys.path.insert(0, str(P.root / "firmware"))
        import provision

        address = provision.device_key(str(dev / "device.key"))
        chain.register(dep, METER, address, rated_power_w=5_000)
        w3 = chain.web3(anvil.url)
        reg = chain.contract(w3, dep, "MeterRegistry")
        from omd_server import attestation as ref

        commissioned = reg.functions.meter(ref.meter_key(METER)).call()[5]
        t_start = commissioned - commissioned % PERIOD + PERIOD
        w3.provider.make_request("evm_setNextBlockTimestamp",
                                 [t_start + (intervals + 1) * PERIOD + 60])
        w3.provider.make_request("evm_mine", [])
        interval, att = _meter(dev, srv_url, key, dep, t_start)
        print(f"6. meter {METER} ({address}) runs {intervals} intervals", flush=True)
        for k in range(intervals + 1):
            interval([6.0, 3.0, 7.5, 5.0, 4.0][k % 5])
        consumer = chain.contract(w3, dep, "FunctionsConsumer")
        deadline = time.monotonic() + 120
        shown: set[int] = set()
        while time.monotonic() < deadline and len(shown) < att.seq:
            for e in consumer.events.IntervalFulfilled().get_logs(from_block=0):
                s = e["args"]["seq"]
                if s not in shown:
                    shown.add(s)
                    print(f"   interval {s}: minted {e['args']['mintedMj']:,} mJ "
                          f"({e['args']['mintedMj'] / 3.6e9:.4f} kWh), "
                          f"{e['args']['mintedMg']:,} mg CO2e (tx "
                          f"0x{e['transactionHash'].hex().removeprefix('0x')[:12]}...)",
                          flush=True)
            time.sleep(0.5)
        owner = dep["accounts"]["demo_owner"]
        mj = chain.contract(w3, dep, "EnergyToken").functions.balanceOf(owner).call()
        mg = chain.contract(w3, dep, "CarbonCredit").functions.balanceOf(owner).call()
        print(f"7. owner {owner}: {mj:,} mJ = {mj / 3.6e9:.4f} kWh; aC {mg / 1e9:.9f} "
              f"(= {mg / 1e6:.3f} kg CO2e avoided, an estimate)", flush=True)
        print(f"   Home Assistant topics: openmeter/{METER}/tokens and "
              f"homeassistant/sensor/{METER}/tokens_*/config on 127.0.0.1:{mqtt_port}")
        v = kicad.run([*omd, "verify", "--server", srv_url, "--rpc", anvil.url, METER,
                       str(max(shown or {1}))], env=env, what="omd-server verify", check=False)
        print(f"8. omd-server verify {METER} {max(shown or {1})}:\n{v.stdout}", flush=True)
        if not once:
            print("running; Ctrl-C stops everything", flush=True)
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(procs):
            kicad.stop(p, timeout=15)
        if don is not None:
            don.stop()
        if anvil is not None:
            anvil.stop()
    print(json.dumps({"state": str(root)}))
