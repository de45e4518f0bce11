"""Power: USB-C and screw-terminal 5 V inputs, protection, the 3.3 V rail and the sensor rail.

USB VBUS passes a resettable fuse and a Schottky diode, so the terminal's 5 V can never
back-feed a laptop; the terminal passes its own resettable fuse, a TVS and a P-MOSFET that
blocks a reversed supply with almost no drop. A 12 V supply on the terminal by mistake makes
the TVS clamp until the fuse trips; every part on +5V is rated above that clamp (the design
assertions check it). The 3.3 V rail is a buck converter (an LDO would overheat at the
terminal's 5.25 V, see rail_3v3).

The sensor modules get their own regulated 5 V (+5VS) from a boost converter on the 3.3 V
rail: USB can leave 4.5 V at the board before the fuse and the Schottky, below the ACS712's
4.5 V minimum, and the modules' gain and zero follow their supply.
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
                             "2": n.GND, "5": n.VBUS})
    part("ptc_fuse", "F1", **{"1": n.VBUS, "2": n.VBUS_F})
    part("schottky", "D1", **{"A": n.VBUS_F, "K": n.V5})

    term = part("terminal_2p", "J2")
    term[1] += n.VIN_T
    term[2] += n.GND
    # A 12 V (or reversed) supply makes the TVS conduct until the terminal's fuse trips.
    part("ptc_fuse", "F2", **{"1": n.VIN_T, "2": n.VIN_F})
    part("tvs_5v", "D2", **{"1": n.VIN_F, "2": n.GND})
    # Reverse-polarity guard: the body diode conducts first, then Vgs = -5 V turns the
    # channel on; with the supply reversed the gate is positive and the FET stays off.
    part("pmos", "Q1", **{"D": n.VIN_F, "S": n.V5, "G": n.GND})
    part("c_10u", "C1", **{"1": n.V5, "2": n.GND})


@subcircuit
def rail_3v3(nets):
    """The 3.3 V rail: an AP63203 synchronous buck (fixed 3.3 V, 3.8-32 V in). Not an LDO:
    from the terminal's 5.25 V an LDO would burn (5.25 - 3.3) V x the load, about 1 W at
    Wi-Fi peaks, which a SOT-223 on this board's copper cannot shed within its 125 C
    junction limit; the buck dissipates a fifth of that and survives a 12 V mistake (the
    design assertions check both). 100 nF bootstrap, 10 uF in, 47 uF out (datasheet)."""
    n = nets
    part("buck_3v3", "U3", IN=n.V5, EN=n.V5, GND=n.GND, SW=n.BUCK_SW, BST=n.BUCK_BST,
         FB=n.V3V3)
    part("c_100n", "C5", **{"1": n.BUCK_BST, "2": n.BUCK_SW})
    part("l_4u7", "L2", **{"1": n.BUCK_SW, "2": n.V3V3})
    part("c_10u", "C4", **{"1": n.V5, "2": n.GND})
    part("c_47u", "C2", **{"1": n.V3V3, "2": n.GND})
    part("c_100n", "C3", **{"1": n.V3V3, "2": n.GND})


@subcircuit
def rail_sensor_5v(nets):
    """+5VS for the sensor modules: an MCP1640B boost (PWM only, so its ripple stays at its
    fixed 500 kHz, far above the metering band) from the 3.3 V rail, 330 k / 100 k on its
    1.21 V feedback for 5.2 V. Its input is the regulated 3.3 V, so +5VS does not follow the
    USB or terminal voltage."""
    n = nets
    part("boost_5v", "U6", **{"V_{IN}": n.V3V3, "EN": n.V3V3, "GND": n.GND, "SW": n.BST_SW,
                              "V_{OUT}": n.V5S, "V_{FB}": n.BST_FB})
    part("l_4u7", "L1", **{"1": n.V3V3, "2": n.BST_SW})
    part("r_330k", "R71", **{"1": n.V5S, "2": n.BST_FB})
    part("r_100k", "R72", **{"1": n.BST_FB, "2": n.GND})
    part("c_10u", "C63", **{"1": n.V3V3, "2": n.GND})
    part("c_10u", "C64", **{"1": n.V5S, "2": n.GND})


@subcircuit
def test_points(nets):
    """A test point on every rail, for bring-up and calibration."""
    n = nets
    for ref, net in (("TP1", n.V5), ("TP2", n.V3V3), ("TP3", n.GND), ("TP4", n.V2V8),
                     ("TP5", n.V1V2), ("TP6", n.V5S)):
        part("testpoint", ref, **{"1": net})
