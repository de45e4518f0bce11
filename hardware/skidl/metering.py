"""Metering: the ATM90E32AS energy-metering IC and its analog front end.

The circuit is the design note of docs/hardware/metering-chip.md (after the chip's
application note, reference design 1.1, and CircuitSetup's meters); the values and why they
are what they are live there, the design assertions check them from the catalogue.

- Two CT inputs on 3.5 mm TRS jacks (SCT-013-000, 100 A : 50 mA): tip and sleeve across a
  2 x 3.3 ohm burden centre-tapped to ground, then 1 k / 18 nF per leg into I1 and I2.
- The voltage node, from the ZMPT101B module (on the 5 V sensor rail) or a 9-12 V AC adapter,
  picked by JP1; V1P, V2P and V3P are joined so every phase of the chip sees it.
- The seed's ACS712 module on the 5 V sensor rail, AC-coupled and divided into I3.
Every input channel ends in the same 1 k / 18 nF anti-alias network; where a channel's source
resistance adds lag (the dividers), its coupling capacitor's lead cancels it. Mains never reaches this board: CTs, modules and the adapter isolate it.
"""

from skidl import subcircuit

from .lib import part


def anti_alias(n, leg_p, leg_n, pin_p, pin_n, refs):
    """1 k in series and 18 nF to ground on each leg of a differential channel [AN 1.1.5]."""
    rp, cp, rn, cn = refs
    part("r_1k", rp, **{"1": leg_p, "2": pin_p})
    part("c_18n", cp, **{"1": pin_p, "2": n.GND})
    part("r_1k", rn, **{"1": leg_n, "2": pin_n})
    part("c_18n", cn, **{"1": pin_n, "2": n.GND})


@subcircuit
def metering_chip(nets):
    """ATM90E32AS: AVDD tied to DVDD (3.3 V) with 100 nF at AVDD and 10 uF + 100 nF at DVDD,
    VDD18 10 uF, Vref 4.7 uF + 100 nF and nothing else, a 16.384 MHz crystal with no external
    load capacitors (on chip), RESET 10 k / 100 nF, PM1/PM0 high (normal mode), TEST and the
    IC pins to ground [DS Table-1]. CS is pulled up so the chip stays deselected while the
    ESP32-S3 boots; IRQ0 carries WarnOut and IRQ1 too (IRQ0MergeCfg, set by the firmware)."""
    n = nets
    u = part("atm90e32as", "U7")
    for pin in ("1", "48", "33", "34"):       # AVDD, DVDD, PM0, PM1
        u[pin] += n.V3V3
    for pin in ("2", "12", "19", "44", "47", "32", "9", "10", "36"):  # grounds, TEST, IC
        u[pin] += n.GND
    u["42"] += n.VDD18
    u["43"] += n.VDD18
    u["11"] += n.VREF
    u["41"] += n.MTR_RESET
    u["20"] += n.XTAL_I
    u["21"] += n.XTAL_O
    u["37"] += n.MTR_CS
    u["38"] += n.MTR_SCLK
    u["40"] += n.MTR_MOSI
    u["39"] += n.MTR_MISO
    u["30"] += n.MTR_IRQ
    for pin in ("22", "23", "24", "25", "26", "27", "28", "29", "31", "35", "45", "46"):
        u[pin] += n.NC                         # ZX0-2, CF1-4, WarnOut, IRQ1, NC
    u["3"] += n.I1P
    u["4"] += n.I1N
    u["5"] += n.I2P
    u["6"] += n.I2N
    u["7"] += n.I3P
    u["8"] += n.I3N
    for pin in ("13", "15", "17"):
        u[pin] += n.VxP
    for pin in ("14", "16", "18"):
        u[pin] += n.VxN

    part("c_100n", "C40", **{"1": n.V3V3, "2": n.GND})   # AVDD
    part("c_10u", "C41", **{"1": n.V3V3, "2": n.GND})    # DVDD bulk
    part("c_100n", "C42", **{"1": n.V3V3, "2": n.GND})   # DVDD
    part("c_10u", "C43", **{"1": n.VDD18, "2": n.GND})   # internal 1.8 V regulator
    part("c_4u7", "C44", **{"1": n.VREF, "2": n.GND})
    part("c_100n", "C45", **{"1": n.VREF, "2": n.GND})
    part("r_10k", "R50", **{"1": n.V3V3, "2": n.MTR_RESET})
    part("c_100n", "C46", **{"1": n.MTR_RESET, "2": n.GND})
    part("xtal_16m384", "Y1", **{"1": n.XTAL_I, "3": n.XTAL_O, "2": n.GND, "4": n.GND})
    part("r_10k", "R51", **{"1": n.V3V3, "2": n.MTR_CS})


@subcircuit
def current_inputs(nets):
    """CT1 (solar, inverter output) and CT2 (grid) on 3.5 mm TRS jacks: tip to the positive
    leg, sleeve to the negative, ring open (the SCT-013-000 plug uses tip and sleeve). Each
    CT's 2 x 3.3 ohm burden is centre-tapped to ground, so the legs swing symmetrically."""
    n = nets
    for k, (jack, rb1, rb2, refs) in enumerate(
            (("J8", "R52", "R53", ("R54", "C50", "R55", "C51")),
             ("J9", "R56", "R57", ("R58", "C52", "R59", "C53"))), start=1):
        tip, sleeve = n[f"CT{k}_T"], n[f"CT{k}_S"]
        part("jack_trs", jack, fields={"Module": "sct013_ct"}, T=tip, S=sleeve, R=n.NC)
        part("r_3r3", rb1, **{"1": tip, "2": n.GND})
        part("r_3r3", rb2, **{"1": sleeve, "2": n.GND})
        anti_alias(n, tip, sleeve, n[f"I{k}P"], n[f"I{k}N"], refs)


@subcircuit
def voltage_input(nets):
    """The voltage channel: ZMPT101B module header (5 V sensor rail) or 9-12 V AC adapter
    jack, one picked by JP1 (1-2 ZMPT101B, 2-3 9VAC). ZMPT101B: 2.2 uF coupling, whose lead
    cancels the anti-alias lag of the 12 k / 10 k divider's source resistance. Adapter:
    100 k / 3.3 k, then a 3.3 k / 18 nF lag that takes up most of the adapter's own phase lead.
    Then the shared 1 k / 18 nF anti-alias into V1P-V3P (the design assertions compute each
    channel's phase at 50 Hz and hold them within the chip's delay range)."""
    n = nets
    part("header_1x3", "J3", fields={"Module": "zmpt101b_module"},
         **{"1": n.V5S, "2": n.VSENSE, "3": n.GND})
    part("c_100n", "C54", **{"1": n.V5S, "2": n.GND})
    part("c_2u2", "C55", **{"1": n.VSENSE, "2": n.VZ_AC})
    part("r_12k", "R60", **{"1": n.VZ_AC, "2": n.VZ_DIV})
    part("r_10k", "R61", **{"1": n.VZ_DIV, "2": n.GND})

    part("barrel_jack", "J10", fields={"Module": "ac_adapter_9v"},
         **{"1": n.VAC, "2": n.GND, "3": n.NC})
    part("r_100k", "R62", **{"1": n.VAC, "2": n.VA_DIV})
    part("r_3k3", "R63", **{"1": n.VA_DIV, "2": n.GND})
    part("r_3k3", "R64", **{"1": n.VA_DIV, "2": n.VA_LAG})
    part("c_18n", "C56", **{"1": n.VA_LAG, "2": n.GND})

    part("jumper_3", "JP1", **{"1": n.VZ_DIV, "2": n.VNODE, "3": n.VA_LAG})
    anti_alias(n, n.VNODE, n.GND, n.VxP, n.VxN, ("R65", "C57", "R66", "C58"))


@subcircuit
def aux_current(nets):
    """The seed's ACS712 module on I3, on the 5 V sensor rail: its output (2.5 V +- the
    sensitivity times the current) through 2.2 uF coupling (its lead cancels the divider's
    anti-alias lag) into a 20 k / 10 k divider (/3), then the shared anti-alias. Indicative
    only (the ACS712's own +-1.5 % error)."""
    n = nets
    part("header_1x3", "J4", fields={"Module": "acs712_module"},
         **{"1": n.V5S, "2": n.ISENSE, "3": n.GND})
    part("c_100n", "C59", **{"1": n.V5S, "2": n.GND})
    part("c_2u2", "C60", **{"1": n.ISENSE, "2": n.IA_AC})
    part("r_20k", "R67", **{"1": n.IA_AC, "2": n.IA_DIV})
    part("r_10k", "R68", **{"1": n.IA_DIV, "2": n.GND})
    anti_alias(n, n.IA_DIV, n.GND, n.I3P, n.I3N, ("R69", "C61", "R70", "C62"))
