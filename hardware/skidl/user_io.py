"""User I/O: two indicator LEDs, a user button, I2C expansion and UART headers, mounting holes."""

from skidl import subcircuit

from .lib import part


@subcircuit
def user_io(nets):
    """Two indicator LEDs, driven high by GPIOs through 470 R (~3 mA), a user button with
    its pull-up, and the expansion headers: I2C with 4.7 k pull-ups, and the debug UART."""
    n = nets
    # LEDs are driven high by GPIOs: (3.3 V - Vf) / 470 R ~ 3 mA, bright enough indoors
    part("r_470", "R40", **{"1": n.LED_STATUS, "2": n.LED_STATUS_A})
    part("led_red", "D10", A=n.LED_STATUS_A, K=n.GND)
    part("r_470", "R41", **{"1": n.LED_NET, "2": n.LED_NET_A})
    part("led_red", "D11", A=n.LED_NET_A, K=n.GND)

    part("button", "SW3", **{"1": n.BUTTON_USER, "2": n.GND})
    part("r_10k", "R42", **{"1": n.V3V3, "2": n.BUTTON_USER})

    part("header_1x4", "J6", **{"1": n.V3V3, "2": n.I2C_SDA, "3": n.I2C_SCL, "4": n.GND})
    part("r_4k7", "R43", **{"1": n.V3V3, "2": n.I2C_SDA})
    part("r_4k7", "R44", **{"1": n.V3V3, "2": n.I2C_SCL})
    part("header_1x4", "J7", **{"1": n.V3V3, "2": n.UART_TX, "3": n.UART_RX, "4": n.GND})


def mounting_holes():
    for ref in ("H1", "H2", "H3", "H4"):
        part("mounting_hole", ref)
