"""Top level of the Open Metering Device board: the nets, then each function block."""

from __future__ import annotations

import builtins

import skidl

from . import camera, lib, mcu, metering, power, user_io

# Power nets get KiCad's usual names; every other net is named after its pin-map signal.
POWER_NETS = {"V5": "+5V", "V5S": "+5VS", "V3V3": "+3V3", "V2V8": "+2V8", "V1V2": "+1V2",
              "GND": "GND"}
LOCAL_NETS = ("VBUS", "VBUS_F", "VIN_T", "VIN_F", "USB_CC1", "USB_CC2", "EN", "CAM_RESET",
              "LED_STATUS_A", "LED_NET_A", "BST_SW", "BST_FB", "BUCK_SW", "BUCK_BST",
              # metering chip and its front end
              "VDD18", "VREF", "MTR_RESET", "XTAL_I", "XTAL_O",
              "I1P", "I1N", "I2P", "I2N", "I3P", "I3N", "VxP", "VxN",
              "CT1_T", "CT1_S", "CT2_T", "CT2_S", "VSENSE", "VZ_AC", "VZ_DIV",
              "VAC", "VA_DIV", "VA_LAG", "VNODE", "ISENSE", "IA_AC", "IA_DIV")


class Nets:
    """All named nets of the board, reachable as attributes or by name (n.GND, n['+3V3'])."""

    def __init__(self):
        self._by_name = {}
        for attr, name in POWER_NETS.items():
            setattr(self, attr, self._new(name))
        for name in LOCAL_NETS + tuple(lib.pinmap().PINS):
            setattr(self, name, self._new(name))
        self.NC = builtins.NC  # SKiDL keeps its no-connect net in builtins

    def _new(self, name):
        net = skidl.Net(name)
        self._by_name[name] = net
        return net

    def __getitem__(self, name):
        return self._by_name[name]

    def __setitem__(self, name, net):
        # `n[name] += pin` rebinds the name to the same net; anything else is a mistake
        if net is not self._by_name.get(name):
            raise TypeError(f"net '{name}' cannot be replaced")


def build(design) -> Nets:
    """Create the whole circuit in SKiDL's default circuit and return its nets. `design`
    brings the parts catalogue and the pin map (see lib.py)."""
    lib.use(design)
    n = Nets()
    # Nets fed from outside the board, +5V which the external supplies feed through D1/Q1
    # and +3V3 which the buck feeds through its inductor (ERC cannot see power through a
    # diode, a FET or an inductor): tell ERC they are driven.
    for net in (n.GND, n.VBUS, n.VIN_T, n.V5, n.V3V3):
        net.drive = skidl.POWER
    # The same statement for KiCad's schematic ERC: power flags (schematic-only symbols).
    for i, net in enumerate((n.GND, n.V5, n.VBUS, n.V3V3), start=1):
        flag = skidl.Part("power", "PWR_FLAG", ref=f"#FLG0{i}", tag=f"#FLG0{i}")
        flag[1] += net
    power.power_input(n, tag="power_input")
    power.rail_3v3(n, tag="rail_3v3")
    power.rail_sensor_5v(n, tag="rail_sensor_5v")
    power.test_points(n, tag="test_points")
    mcu.mcu(n, tag="mcu")
    metering.metering_chip(n, tag="metering_chip")
    metering.current_inputs(n, tag="current_inputs")
    metering.voltage_input(n, tag="voltage_input")
    metering.aux_current(n, tag="aux_current")
    camera.camera(n, tag="camera")
    user_io.user_io(n, tag="user_io")
    user_io.mounting_holes()
    return n
