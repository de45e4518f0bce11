# GPIO assignment of the Open Metering Device board (ESP32-S3-WROOM-1-N8R8).
#
# This file is the single source of the pin map. The circuit (hardware/skidl) wires the
# module from it, the firmware imports it on the device, the ESPHome YAML and the docs'
# pin table are checked against / generated from it. It must stay importable by MicroPython.
#
# Each entry: signal (= net name on the board) -> (GPIO number, kind).
# Kinds: spi (the ATM90E32AS metering chip), irq (its interrupt output), adc (ADC1 only,
# Wi-Fi is on; none on rev B), cam (OV2640 DVP/SCCB), i2c, uart, led, button, usb (native
# USB-Serial/JTAG, for flashing only), strap (strapping pin with its intended pull).
PINS = {
    "MTR_CS": (1, "spi"),     # ATM90E32AS CS, active low; pulled up so the chip stays deselected at boot
    "MTR_SCLK": (2, "spi"),
    "MTR_MOSI": (38, "spi"),  # ESP32 -> chip SDI
    "MTR_MISO": (39, "spi"),  # chip SDO -> ESP32
    "MTR_IRQ": (40, "irq"),   # chip IRQ0 (WarnOut and IRQ1 merged onto it by the firmware)
    # OV2640 DVP, the ESP32-S3-EYE / Freenove map (keeps GPIO1/2 free for the metering chip)
    # but for XCLK and D7, swapped: the FPC's pads then meet the module's in the same order,
    # so the camera bus fans out on the top layer without a crossing
    "CAM_SIOD": (4, "cam"),
    "CAM_SIOC": (5, "cam"),
    "CAM_VSYNC": (6, "cam"),
    "CAM_HREF": (7, "cam"),
    "CAM_D2": (8, "cam"),
    "CAM_D1": (9, "cam"),
    "CAM_D3": (10, "cam"),
    "CAM_D0": (11, "cam"),
    "CAM_D4": (12, "cam"),
    "CAM_PCLK": (13, "cam"),
    "CAM_D7": (15, "cam"),
    "CAM_XCLK": (16, "cam"),
    "CAM_D6": (17, "cam"),
    "CAM_D5": (18, "cam"),
    "CAM_PWDN": (21, "cam"),    # high = camera powered down; pulled down so it runs by default
    "BUTTON_USER": (14, "button"),  # active low, external pull-up
    "LED_STATUS": (47, "led"),  # active high
    "LED_NET": (48, "led"),     # active high
    "I2C_SDA": (41, "i2c"),     # expansion header, 4.7k pull-ups on board
    "I2C_SCL": (42, "i2c"),
    "UART_TX": (43, "uart"),    # U0TXD, debug/expansion header
    "UART_RX": (44, "uart"),    # U0RXD
    "USB_DM": (19, "usb"),
    "USB_DP": (20, "usb"),
    "BOOT": (0, "strap"),       # BOOT button to GND, pulled up: high = run from flash
}

# ADC1 channel of each ADC1-capable GPIO on the ESP32-S3 (GPIO1..10 -> ADC1_CH0..9).
ADC1_CHANNEL = {g: g - 1 for g in range(1, 11)}

# Pins of the N8R8 module the firmware must never touch (flash + octal PSRAM), USB, strapping.
FLASH_PSRAM_GPIOS = tuple(range(26, 38))
STRAPPING_GPIOS = (0, 3, 45, 46)
USB_GPIOS = (19, 20)


def gpio(signal):
    return PINS[signal][0]


# Names the module's KiCad symbol gives the pins of GPIOs not called IO<n> there: the one
# alias table of the circuit (which wires the symbol by name) and of the pin checks.
SYMBOL_PIN_NAMES = {19: "USB_D-", 20: "USB_D+", 43: "TXD0", 44: "RXD0"}


def symbol_pin(gpio):
    return SYMBOL_PIN_NAMES.get(gpio, "IO" + str(gpio))
