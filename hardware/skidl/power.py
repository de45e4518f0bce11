"""Power: USB-C and screw-terminal 5 V inputs, protection, and the 3.3 V rail.

USB VBUS passes a resettable fuse and a Schottky diode, so the terminal's 5 V can never
back-feed a laptop; the terminal passes a P-MOSFET that blocks a reversed supply with almost
no drop. The 3.3 V LDO is an LDL1117 rather than the common AMS1117: after the Schottky, USB
leaves ~4.2 V at worst, below what an AMS1117 needs at Wi-Fi peaks (dropout up to 1.3 V); the
design assertions check this from the catalogue figures.
"""

from skidl import subcircuit

from .lib import part


@subcircuit
def power_input(nets):
    """USB-C and screw-terminal 5 V inputs. 5.1 k on each CC pin makes the board a USB-C
    sink. VBUS passes a resettable fuse and a Schottky diode, so the terminal's 5 V can never
    back-feed a laptop; the terminal passes a P-MOSFET that blocks a reversed supply with
    almost no drop. The USBLC6 clamps ESD on the USB data lines."""
    n = nets
    usb = part("usb_c", "J1")
    for pin in ("A1", "A12", "B1", "B12", "S1"):
        usb[pin] += n.GND
    for pin in ("A4", "A9", "B4", "B9"):
        usb[pin] += n.VBUS
    usb["A6"] += n.USB_DP
    usb["B6"] += n.USB_DP
    usb["A7"] += n.USB_DM
    usb["B7"] += n.USB_DM
    usb["A8"] += n.NC
    usb["B8"] += n.NC
    # 5.1 k on each CC pin: identifies us as a sink so a USB-C source turns VBUS on
    usb["A5"] += n.USB_CC1
    usb["B5"] += n.USB_CC2
    part("r_5k1", "R1", **{"1": n.USB_CC1, "2": n.GND})
    part("r_5k1", "R2", **{"1": n.USB_CC2, "2": n.GND})

    part("usb_esd", "U2", **{"1": n.USB_DP, "6": n.NC, "3": n.USB_DM, "4": n.NC,
                             "2": n.GND, "5": n.V5})
    part("ptc_fuse", "F1", **{"1": n.VBUS, "2": n.VBUS_F})
    part("schottky", "D1", **{"A": n.VBUS_F, "K": n.V5})

    term = part("terminal_2p", "J2")
    term[1] += n.VIN_T
    term[2] += n.GND
    # Reverse-polarity guard: the body diode conducts first, then Vgs = -5 V turns the
    # channel on; with the supply reversed the gate is positive and the FET stays off.
    part("pmos", "Q1", **{"D": n.VIN_T, "S": n.V5, "G": n.GND})
    part("c_10u", "C1", **{"1": n.V5, "2": n.GND})


@subcircuit
def rail_3v3(nets):
    """The 3.3 V rail: an LDL1117 LDO with 10 uF + 100 nF at its output. Not the seed's
    AMS1117: behind the Schottky, USB leaves ~4.2 V at worst, below what an AMS1117 needs at
    Wi-Fi peaks (dropout up to 1.3 V); the design assertions check this."""
    n = nets
    part("ldo_3v3", "U3", VI=n.V5, VO=n.V3V3, GND=n.GND)
    part("c_10u", "C2", **{"1": n.V3V3, "2": n.GND})
    part("c_100n", "C3", **{"1": n.V3V3, "2": n.GND})


@subcircuit
def test_points(nets):
    """A test point on every rail, for bring-up and calibration."""
    n = nets
    for ref, net in (("TP1", n.V5), ("TP2", n.V3V3), ("TP3", n.GND), ("TP4", n.V2V8),
                     ("TP5", n.V1V2)):
        part("testpoint", ref, **{"1": net})
