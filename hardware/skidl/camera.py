"""Camera: 24-pin 0.5 mm FPC for an OV2640 module, with the 2.8 V (AVDD) and 1.2 V (DVDD)
LDOs real camera boards carry; DOVDD (I/O) is 3.3 V so the DVP bus matches the ESP32-S3.
"""

from skidl import subcircuit

from .lib import part

# The common OV2640 24-pin FPC pinout (as on ESP32-CAM boards). The 8-bit DVP bus uses
# Y2..Y9, which the pin map calls CAM_D0..CAM_D7.
FPC_PINOUT = {
    1: None, 2: "GND", 3: "CAM_SIOD", 4: "+2V8", 5: "CAM_SIOC", 6: "CAM_RESET",
    7: "CAM_VSYNC", 8: "CAM_PWDN", 9: "CAM_HREF", 10: "+1V2", 11: "+3V3", 12: "CAM_D7",
    13: "CAM_XCLK", 14: "CAM_D6", 15: "GND", 16: "CAM_D5", 17: "CAM_PCLK", 18: "CAM_D4",
    19: "CAM_D0", 20: "CAM_D3", 21: "CAM_D1", 22: "CAM_D2", 23: None, 24: None,
}
FPC_PIN_NAMES = {
    1: "NC", 2: "AGND", 3: "SIO_D", 4: "AVDD", 5: "SIO_C", 6: "RESET", 7: "VSYNC", 8: "PWDN",
    9: "HREF", 10: "DVDD", 11: "DOVDD", 12: "Y9", 13: "XCLK", 14: "Y8", 15: "DGND", 16: "Y7",
    17: "PCLK", 18: "Y6", 19: "Y2", 20: "Y5", 21: "Y3", 22: "Y4", 23: "Y1", 24: "Y0",
}


@subcircuit
def camera(nets):
    """24-pin 0.5 mm FPC for an OV2640 module, with the 2.8 V (AVDD) and 1.2 V (DVDD)
    LDOs camera boards carry; DOVDD (I/O) is 3.3 V so the DVP bus matches the ESP32-S3.
    RESET is held high (the sensor resets over SCCB); PWDN is pulled low so the camera runs
    before the firmware drives it."""
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
    # RESET is active low: held high, the sensor resets over SCCB. PWDN is pulled low so
    # the camera runs even before the firmware drives GPIO21.
    part("r_10k", "R30", **{"1": n.V3V3, "2": n.CAM_RESET})
    part("r_10k", "R31", **{"1": n.CAM_PWDN, "2": n.GND})
