"""MCU: ESP32-S3-WROOM-1-N8R8 with its supply decoupling, EN reset RC and BOOT strap.

Values follow Espressif's ESP32-S3-WROOM-1 datasheet reference: 10 uF + 100 nF at the 3V3
pin, 10 k / 1 uF on EN (the RC delay lets the rail settle before the chip starts).
"""

from skidl import subcircuit

from .lib import gpio_pin, part, pinmap


@subcircuit
def mcu(nets):
    """ESP32-S3-WROOM-1-N8R8: 10 uF + 100 nF at its 3V3 pin; EN held by 10 k / 1 uF, so
    the rail settles before the chip starts (the RESET button pulls it low); GPIO0 pulled up
    (run from flash), the BOOT button pulls it low for the ROM loader. Unused pins are left
    open on purpose: flash/PSRAM pins and the module's internal straps."""
    n = nets
    u = part("esp32s3", "U1")
    u["3V3"] += n.V3V3
    u["GND"] += n.GND
    part("c_10u", "C10", **{"1": n.V3V3, "2": n.GND})
    part("c_100n", "C11", **{"1": n.V3V3, "2": n.GND})

    u["EN"] += n.EN
    part("r_10k", "R10", **{"1": n.V3V3, "2": n.EN})
    part("c_1u", "C12", **{"1": n.EN, "2": n.GND})
    part("button", "SW1", **{"1": n.EN, "2": n.GND})

    # GPIO0 strap: high = boot from flash; the button pulls it low for the ROM loader
    part("r_10k", "R11", **{"1": n.V3V3, "2": n.BOOT})
    part("button", "SW2", **{"1": n.BOOT, "2": n.GND})

    pins = pinmap().PINS
    for signal in pins:
        n[signal] += gpio_pin(u, signal)

    used = {gpio for gpio, _kind in pins.values()}
    for pin in u.pins:
        if pin.name.startswith("IO") and int(pin.name[2:]) not in used:
            # flash/PSRAM pins (35-37 on N8R8), spare GPIOs and the strapping pins 3/45/46
            # are left open on purpose: the module's internal straps are correct
            pin += n.NC
    return u
