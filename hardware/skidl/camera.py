"""Camera: 24-pin 0.5 mm FPC for an OV2640 module, with the 2.8 V (AVDD) and 1.2 V (DVDD)
LDOs real camera boards carry; DOVDD (I/O) is 3.3 V so the DVP bus matches the ESP32-S3.
"""

from skidl import subcircuit

from .lib import part

# Connector pad -> net, in the connector's own pad numbering. Pad n meets camera-module
# contact 25 - n: the module's ribbon (contact 1 = NC ... 24 = Y0) enters contacts down, as
# on the AI-Thinker ESP32-CAM (schematic V1.6, connector Cam1), whose pad table this is
# (tests/circuit/test_fpc.py holds the netlist to it). The 8-bit DVP bus uses Y2..Y9, which
# the pin map calls CAM_D0..CAM_D7.
FPC_PINOUT = {
    1: None, 2: None, 3: "CAM_D2", 4: "CAM_D1", 5: "CAM_D3", 6: "CAM_D0", 7: "CAM_D4",
    8: "CAM_PCLK", 9: "CAM_D5", 10: "GND", 11: "CAM_D6", 12: "CAM_XCLK", 13: "CAM_D7",
    14: "+3V3", 15: "+1V2", 16: "CAM_HREF", 17: "CAM_PWDN", 18: "CAM_VSYNC", 19: "CAM_RESET",
    20: "CAM_SIOC", 21: "+2V8", 22: "CAM_SIOD", 23: "GND", 24: None,
}
# the camera-module signal each pad meets (OV2640 names)
FPC_PIN_NAMES = {
    1: "Y0", 2: "Y1", 3: "Y4", 4: "Y3", 5: "Y5", 6: "Y2", 7: "Y6", 8: "PCLK", 9: "Y7",
    10: "DGND", 11: "Y8", 12: "XCLK", 13: "Y9", 14: "DOVDD", 15: "DVDD", 16: "HREF",
    17: "PWDN", 18: "VSYNC", 19: "RESET", 20: "SIO_C", 21: "AVDD", 22: "SIO_D", 23: "AGND",
    24: "NC",
}


@subcircuit
def camera(nets):
    """24-pin 0.5 mm FPC for an OV2640 module, with the 2.8 V (AVDD) and 1.2 V (DVDD)
    LDOs camera boards carry; DOVDD (I/O) is 3.3 V so the DVP bus matches the ESP32-S3.
    RESET has a 10 k / 100 nF RC, so the sensor leaves reset after its rails settle
    (OV2640 datasheet: RESETB low resets, hold it after power-up); PWDN is pulled low so the
    camera runs before the firmware drives it; SCCB (open-drain, I2C-like) has 4.7 k pull-ups."""
    n = nets
    fpc = part("fpc_24", "J5", fields={"Module": "ov2640_module"})
    for pin, net in FPC_PINOUT.items():
        fpc[pin] += n.NC if net is None else n[net]

    part("ldo_2v8", "U4", **{"V_{IN}": n.V3V3, "CE": n.V3V3, "V_{SS}": n.GND,
                             "V_{OUT}": n.V2V8, "NC": n.NC})
    part("ldo_1v2", "U5", **{"V_{IN}": n.V3V3, "CE": n.V3V3, "V_{SS}": n.GND,
                             "V_{OUT}": n.V1V2, "NC": n.NC})
    part("c_1u", "C30", **{"1": n.V3V3, "2": n.GND})
    part("c_1u", "C31", **{"1": n.V2V8, "2": n.GND})
    part("c_1u", "C32", **{"1": n.V1V2, "2": n.GND})
    part("c_100n", "C33", **{"1": n.V3V3, "2": n.GND})
    # RESET is active low: the RC releases it after the rails. PWDN is pulled low so the
    # camera runs even before the firmware drives GPIO21.
    part("r_10k", "R30", **{"1": n.V3V3, "2": n.CAM_RESET})
    part("r_10k", "R31", **{"1": n.CAM_PWDN, "2": n.GND})
    part("c_100n", "C34", **{"1": n.CAM_RESET, "2": n.GND})
    part("r_4k7", "R32", **{"1": n.V3V3, "2": n.CAM_SIOD})
    part("r_4k7", "R33", **{"1": n.V3V3, "2": n.CAM_SIOC})
