"""Sensor front-ends: headers for the off-board ZMPT101B and ACS712 modules, dividers and
RC anti-alias filters into ADC1 (GPIO1/GPIO2; ADC2 cannot be read while Wi-Fi is on).

Mains never reaches this board: the modules carry it and give a low-voltage signal.
- ZMPT101B runs on 3.3 V; its op-amp output can reach the rail, so a 1 k / 10 k divider keeps
  it at <= 3.0 V, and the divider's 0.9 k source resistance with 100 nF is the anti-alias
  filter (fc ~ 1.75 kHz).
- ACS712 needs 5 V and swings up to 5 V when saturated: 10 k / 15 k scales that to 3.0 V,
  and its 6 k source resistance with 10 nF filters at ~2.7 kHz.
The two filters differ in phase by ~0.7 degrees at 50 Hz; the firmware's phase calibration
removes it. Header pin order matches the modules' silkscreen: VCC, OUT, GND.
"""

from skidl import subcircuit

from .lib import part


@subcircuit
def voltage_sensor(nets):
    """Header for the off-board ZMPT101B module (runs on 3.3 V; mains never reaches this
    board). Its op-amp output can reach the rail: 1 k / 10 k keeps it at <= 3.0 V, and the
    divider's 0.9 k source resistance with 100 nF is the anti-alias filter (fc ~ 1.75 kHz)
    into ADC1 (GPIO1)."""
    n = nets
    part("header_1x3", "J3", fields={"Module": "zmpt101b_module"}, **{"1": n.V3V3, "2": n.VSENSE, "3": n.GND})
    part("c_100n", "C22", **{"1": n.V3V3, "2": n.GND})
    part("r_1k", "R20", **{"1": n.VSENSE, "2": n.ADC_V})
    part("r_10k", "R21", **{"1": n.ADC_V, "2": n.GND})
    part("c_100n", "C20", **{"1": n.ADC_V, "2": n.GND})


@subcircuit
def current_sensor(nets):
    """Header for the off-board ACS712 module (needs 5 V, swings up to 5 V when
    saturated): 10 k / 15 k scales that to 3.0 V, and its 6 k source resistance with 10 nF
    filters at ~2.7 kHz into ADC1 (GPIO2)."""
    n = nets
    part("header_1x3", "J4", fields={"Module": "acs712_module"}, **{"1": n.V5, "2": n.ISENSE, "3": n.GND})
    part("c_100n", "C23", **{"1": n.V5, "2": n.GND})
    part("r_10k", "R22", **{"1": n.ISENSE, "2": n.ADC_I})
    part("r_15k", "R23", **{"1": n.ADC_I, "2": n.GND})
    part("c_10n", "C21", **{"1": n.ADC_I, "2": n.GND})
