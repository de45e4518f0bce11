"""A whole simulated rev-B meter on the host: the firmware's App on the real driver and
ChipMeter, one shared wrapping clock, and the chip either simulated at its registers from
sensor models (chip="sim", sim/rig.py: about a tenth of real time) or as minichip.MiniChip
(chip="mini": constant power, for hours of device time in the chain and oracle runs).

The end-to-end tests, the attestation/oracle tests and `omd demo` drive a device with it:
set_power() puts power through the solar and grid CTs, interval() runs main-loop passes
(sleep a poll period, App.step()) until the App closes a reporting interval.
"""

from __future__ import annotations

import sys
from pathlib import Path

FW = Path(__file__).resolve().parents[1]
if str(FW) not in sys.path:
    sys.path.insert(0, str(FW))

import chipcal  # noqa: E402
import config  # noqa: E402
import main  # noqa: E402
import meter  # noqa: E402
from sim import sensors  # noqa: E402
from sim.rig import PERIOD, Rig  # noqa: E402
from sim.ticks import WrapTicks  # noqa: E402

from firmware.tools import minichip  # noqa: E402


def chip_config(cfg: dict, voltage_sensor: str = "zmpt101b") -> dict:
    """The device's chip configuration with the board's design gains for any channel that
    has no calibration yet (an uncalibrated board still reads close to right)."""
    out = meter.merged(config.chip_of(cfg))
    for i, ch in enumerate(out["channels"]):
        if ch["ugain"] == meter.CAL_DEFAULT["ugain"] and ch["igain"] == meter.CAL_DEFAULT["igain"]:
            ch.update(chipcal.nominal(voltage_sensor, i, ch["k"]))
    return out


class SimDevice:
    def __init__(self, cfg: dict, ct, data_dir: str, http, unix0: int, seed: int = 5,
                 start_ms: int = PERIOD - 30_000, chip: str = "sim", **app_kw):
        """cfg: the device's config.json content; unix0: its NTP time at start; app_kw: the
        App's optional arguments (mqtt, evidence, log, attestor)."""
        import store

        meter_dir = data_dir + "/meter"
        store.mkdirs(meter_dir)
        self.kind = chip
        if chip == "sim":
            self.rig = Rig(seed=seed, start_ms=start_ms, cfg=chip_config(cfg),
                           data_dir=meter_dir, log=app_kw.get("log"))
            self.clock = self.rig.clock
            m = self.rig.meter
            self.sleep_ms = self.rig.sleep_ms
        else:
            self.clock = WrapTicks(start_ms)
            m, self.mini = minichip.chip_meter(chip_config(cfg), _TrueClock(self.clock),
                                               meter_dir, app_kw.get("log"))
            self.sleep_ms = self.clock.advance
        self.unix0 = unix0
        self.t0 = self.clock.elapsed
        self.app = main.App(cfg, ct, m, self.clock.ticks_ms, self.unix, http, data_dir,
                            **app_kw)
        self.poll_ms = m.cfg["poll_ms"]

    def ticks_ms(self) -> int:
        return self.clock.ticks_ms()

    def unix(self) -> int:
        return self.unix0 + (self.clock.elapsed - self.t0) // 1000

    def set_power(self, solar_w: float, grid_w: float, vrms: float = 231.0) -> None:
        """W through each CT, export positive: the inverter's output (its current spectrum)
        and the grid connection (a resistive household, or the surplus going out)."""
        if self.kind != "sim":
            minichip.set_power(self.app.meter, self.mini, solar_w, grid_w)
            return

        def load(w, kind):
            return sensors.Load(irms=abs(w) / vrms, kind=kind, export=w > 0)

        self.rig.set(vrms=vrms, loads=[load(solar_w, "inverter"), load(grid_w, "resistive"),
                                       sensors.Load()])

    def interval(self, pump: bool = True):
        """Main-loop passes until a reporting interval closes; its reading (None without a
        clock), after one pump() of the network half when pump is set."""
        for _ in range(4 * self.app.interval // self.poll_ms + 4):
            self.sleep_ms(self.poll_ms)
            before = self.app.t_interval
            r = self.app.step()
            if self.app.t_interval != before:
                if pump:
                    self.app.pump()
                return r
        raise RuntimeError("no interval closed")


class _TrueClock:
    """minichip's clock protocol over WrapTicks: ticks when called, .t the true ms."""

    def __init__(self, w: WrapTicks):
        self.w = w

    def __call__(self) -> int:
        return self.w.ticks_ms()

    def advance(self, ms: int) -> None:
        self.w.advance(ms)

    @property
    def t(self) -> int:
        return self.w.start + self.w.elapsed
