# Register-level facts of the Microchip (Atmel) ATM90E32AS energy-metering IC of board rev B.
#
# The one place these facts live: the driver (meter.py) and the simulator (sim/m90e32as.py)
# import them and neither retypes an address, a bit or a scale factor. MicroPython-importable.
#
# Sources, cited per fact as [DS x.y] / [AN x.y]:
#   DS = Atmel-46003B-SE-M90E32AS-Datasheet_02122015 (section or table)
#   AN = Atmel-46103A-SE-M90E32AS-ApplicationNote_050514
#   ESPHome = esphome/components/atm90e32 (2026.6), a maintained driver written from DS;
#   only used where DS leaves the fact open (SPI mode), and said so.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# --- SPI framing [DS 4.2] -----------------------------------------------------------------
# One register per CS-low transaction of exactly 32 SCLK: bit 15 of the first 16-bit word is
# the access type (1 = read), its low 10 bits the address (the other 5 are don't-care), then
# 16 data bits, MSB first. A write takes effect at CS rising edge only after exactly 32 clocks;
# a read updates LastSPIData once 16 clocks (the address) have passed [DS 4.2.2].
FRAME_BYTES = const(4)
READ_FLAG = const(0x8000)
ADDR_MASK = const(0x03FF)
# SDI is sampled on the rising edge, SDO changes on the falling edge [DS 4.2.1]: modes 0 and 3
# both fit; ESPHome and Microchip's own Zephyr driver use mode 3.
SPI_POLARITY = const(1)
SPI_PHASE = const(1)
SPI_BAUD = const(200000)  # ESPHome's rate; DS 6.1 allows up to 1100 kbit/s (900k while calibrating the current detector)
SPI_BAUD_MAX = const(1100000)
# Timing at fsys = 16.384 MHz, T = 61 ns [DS Table-18]: CS high >= 2T+10 ns, CS setup 2T+10,
# CS hold 3T+10: one microsecond around CS edges covers all of them.
CS_GUARD_US = const(1)
RESET_WAIT_MS = const(40)  # T1 after reset or exit from idle: 5 / 16 / 40 ms (min/typ/max) [DS Table-19]
PM_IDLE_MIN_MS = const(1)  # T0: idle time forced after power-on before normal mode [DS Table-19]

# --- special values ---------------------------------------------------------------------------
SOFTRESET_KEY = const(0x789A)  # writing it to SoftReset resets like the RESET pin [DS 5.4.5 SoftReset]
CFG_UNLOCK = const(0x55AA)  # CfgRegAccEn: configuration access [DS 5.4.5 CfgRegAccEn]
CFG_GOLDEN_WRITE = const(0xAA55)  # CfgRegAccEn: CRCDigest writable (validation only) [ibid.]
CFG_LOCK = const(0x0000)  # any other value: normal operation, golden CRC latched and checked [ibid.]
METER_ON = const(0x0001)  # MeterEn: metering on when any bit is set [DS MeterEn]

# Configuration CRC [DS 5.2.1]: CRC-16, x^16 + x^12 + x^5 + 1, over 00H..6FH, one word per
# 125 us; latched as golden after the first full pass following a lock.
CRC_FIRST = const(0x00)
CRC_LAST = const(0x6F)
CRC_POLY = const(0x1021)
CRC_WORD_US = const(125)
CRC_ERR_CFG = const(0x0001)  # CRCErrStatus bit 0: configuration registers CRC error
CRC_ERR_INT = const(0x0002)  # CRCErrStatus bit 1: internal register CRC error

# --- register map [DS Table-5] ------------------------------------------------------------------
METEREN = const(0x00)
CHANNELMAPI = const(0x01)
CHANNELMAPU = const(0x02)
SAGPEAKDETCFG = const(0x05)
OVTH = const(0x06)
ZXCONFIG = const(0x07)
SAGTH = const(0x08)
PHASELOSSTH = const(0x09)
INWARNTH = const(0x0A)
OITH = const(0x0B)
FREQLOTH = const(0x0C)
FREQHITH = const(0x0D)
PMPWRCTRL = const(0x0E)
IRQ0MERGECFG = const(0x0F)
DETECTCTRL = const(0x10)
PHIFREQCOMP = const(0x1C)
LOGIRMS0 = const(0x20)
LOGIRMS1 = const(0x21)
F0 = const(0x22)
T0 = const(0x23)
PLCONSTH = const(0x31)
PLCONSTL = const(0x32)
MMODE0 = const(0x33)
MMODE1 = const(0x34)
PSTARTTH = const(0x35)
QSTARTTH = const(0x36)
SSTARTTH = const(0x37)
PPHASETH = const(0x38)
QPHASETH = const(0x39)
SPHASETH = const(0x3A)
SOFTRESET = const(0x70)
EMMSTATE0 = const(0x71)
EMMSTATE1 = const(0x72)
EMMINTSTATE0 = const(0x73)
EMMINTSTATE1 = const(0x74)
EMMINTEN0 = const(0x75)
EMMINTEN1 = const(0x76)
LASTSPIDATA = const(0x78)
CRCERRSTATUS = const(0x79)
CRCDIGEST = const(0x7A)
CFGREGACCEN = const(0x7F)
APENERGYT = const(0x80)
ANENERGYT = const(0x84)
FREQ = const(0xF8)
TEMP = const(0xFC)

# Per-phase registers: PHASE_REGS[name] = (A, B, C). Offsets/gains [DS Table-7, Table-9],
# energy [DS Table-11], power/PF [DS Table-13], RMS [DS Table-14], angles [DS Table-15].
PHASE_REGS = {
    "PhiIrms01": (0x24, 0x28, 0x2C),  # segment phase: bits 15:8 segment 1, 7:0 segment 0 [DS 5.3]
    "PhiIrms2": (0x25, 0x29, 0x2D),  # bits 7:0 segment 2
    "GainIrms01": (0x26, 0x2A, 0x2E),  # segment gain, same layout
    "GainIrms2": (0x27, 0x2B, 0x2F),
    "Poffset": (0x41, 0x43, 0x45),
    "Qoffset": (0x42, 0x44, 0x46),
    "PQGain": (0x47, 0x49, 0x4B),
    "Phi": (0x48, 0x4A, 0x4C),
    "Ugain": (0x61, 0x65, 0x69),
    "Igain": (0x62, 0x66, 0x6A),
    "Uoffset": (0x63, 0x67, 0x6B),
    "Ioffset": (0x64, 0x68, 0x6C),
    "APenergy": (0x81, 0x82, 0x83),  # forward active, R/C, 0.01 CF
    "ANenergy": (0x85, 0x86, 0x87),  # reverse active, R/C, 0.01 CF
    "RPenergy": (0x89, 0x8A, 0x8B),
    "RNenergy": (0x8D, 0x8E, 0x8F),
    "Senergy": (0x91, 0x92, 0x93),
    "Pmean": (0xB1, 0xB2, 0xB3),  # high word of a 32-bit two's complement
    "Qmean": (0xB5, 0xB6, 0xB7),
    "Smean": (0xB9, 0xBA, 0xBB),
    "PFmean": (0xBD, 0xBE, 0xBF),
    "PmeanLSB": (0xC1, 0xC2, 0xC3),  # low word
    "QmeanLSB": (0xC5, 0xC6, 0xC7),
    "SmeanLSB": (0xC9, 0xCA, 0xCB),
    "Urms": (0xD9, 0xDA, 0xDB),
    "Irms": (0xDD, 0xDE, 0xDF),
    "UrmsLSB": (0xE9, 0xEA, 0xEB),
    "IrmsLSB": (0xED, 0xEE, 0xEF),
    "UPeak": (0xF1, 0xF2, 0xF3),
    "IPeak": (0xF5, 0xF6, 0xF7),
    "PAngle": (0xF9, 0xFA, 0xFB),
}
IRMSN = const(0xDC)  # DS Table-5/Table-14 (ESPHome has D8H, the AN's IrmsN1; DS wins)

# Power-on values of the registers the firmware writes or checks [DS sections 5.2-5.4].
RESET_VALUES = {
    METEREN: 0x0000,
    CHANNELMAPI: 0x0210,
    CHANNELMAPU: 0x0654,
    SAGPEAKDETCFG: 0x143F,
    OVTH: 0xC000,
    ZXCONFIG: 0x0001,
    SAGTH: 0x1000,
    PHASELOSSTH: 0x0400,
    INWARNTH: 0xFFFF,
    OITH: 0xC000,
    FREQLOTH: 0x1324,
    FREQHITH: 0x13EC,
    PMPWRCTRL: 0x010F,
    F0: 5000,
    T0: 25,
    PLCONSTH: 0x0861,
    PLCONSTL: 0xC468,
    MMODE0: 0x0087,
    MMODE1: 0x0000,
    CFGREGACCEN: 0x0000,
}
for _r in PHASE_REGS["Ugain"] + PHASE_REGS["Igain"]:
    RESET_VALUES[_r] = 0x8000  # [DS Table-9]

# Read/clear registers: 80H..AFH energy [DS Table-5, "R/C"; Table-11 "cleared after read"].
RC_FIRST = const(0x80)
RC_LAST = const(0xAF)
# Measurement registers B0H..FFH are read-only [DS Table-5, type R].
MEAS_FIRST = const(0xB0)
# Read-only registers the host cannot write [DS Table-5].
READ_ONLY = (EMMSTATE0, EMMSTATE1, LASTSPIDATA, CRCERRSTATUS)

# --- bit fields ---------------------------------------------------------------------------------
# MMode0 [DS MMode0, AN 4.2.3]
MM0_FREQ60 = const(1 << 12)
MM0_HPFOFF = const(1 << 11)
MM0_DIDTEN = const(1 << 10)
MM0_3P3W = const(1 << 8)
MM0_CF2VARH = const(1 << 7)
MM0_ABSENQ = const(1 << 4)
MM0_ABSENP = const(1 << 3)
MM0_ENPA = const(1 << 2)
MM0_ENPB = const(1 << 1)
MM0_ENPC = const(1 << 0)
# MMode1: PGA gain of current channels I1/I2/I3 in bits 1:0 / 3:2 / 5:4: 0=1x, 1=2x, 2=4x [DS MMode1]
PGA_CODES = {1: 0, 2: 1, 4: 2}
# Channel maps: source code of phase A/B/C in bits 2:0 / 6:4 / 10:8 [DS ChannelMapI/U]
MAP_SHIFT = (0, 4, 8)
SRC_I = (0, 1, 2)  # I0, I1, I2 (pins I1P/N, I2P/N, I3P/N)
SRC_U = (4, 5, 6)  # U0, U1, U2 (pins V1P/N, V2P/N, V3P/N)
SRC_ZERO = (3, 7)
# Current-segment compensation [DS 3.9, AN 6.2-6.4]: Log(x) = log2(x) * 16 of the Irms
# register value (mA); LOGIrms0/1 hold Log of the segment limits in bits 7:0. Per segment
# (signed 8-bit): gain = 1 + GainIrms * dLog / 2^19, delay += PhiIrms * dLog / 256 cycles;
# PhiFreqComp (signed 8-bit) adds PhiF * (F - F0) / 512 cycles, F and F0 in 0.01 Hz.
LOG_SCALE = const(16)
SEG_GAIN_SHIFT = const(19)
SEG_PHI_DIV = const(256)
FREQ_PHI_DIV = const(512)
# Phi: bit 15 applies the delay to the voltage channel instead of the current [DS PhiA]
PHI_DELAY_V = const(1 << 15)
PHI_CYCLES_MASK = const(0x00FF)
PHI_CLOCK_HZ = 2048000  # delay unit: one 2.048 MHz cycle [DS PhiA]
# IRQ0MergeCfg: OR the WarnOut (CRC error) and IRQ1 states onto the IRQ0 pin [DS IRQ0MergeCfg]
IRQ0_WARN_OR = const(1 << 1)
IRQ0_IRQ1_OR = const(1 << 0)
# EMMState0 [DS EMMState0]
ST0_OI = (1 << 15, 1 << 14, 1 << 13)
ST0_OV = (1 << 12, 1 << 11, 1 << 10)
ST0_TPNOLOAD = const(1 << 5)
# EMMState1 [DS EMMState1]
ST1_FREQHI = const(1 << 15)
ST1_SAG = (1 << 14, 1 << 13, 1 << 12)
ST1_FREQLO = const(1 << 11)
ST1_PHASELOSS = (1 << 10, 1 << 9, 1 << 8)
ST1_PEREG_NEG = (1 << 2, 1 << 1, 1 << 0)  # active energy register direction, 1 = negative

# --- scale factors ------------------------------------------------------------------------------
URMS_LSB_V = 0.01  # UrmsX: 1 LSB = 0.01 V [DS Table-14]
IRMS_LSB_A = 0.001  # IrmsX: 1 LSB = 0.001 A [DS Table-14]
RMS_LSB_SHIFT = const(8)  # the LSB words: only bits 15:8 valid, bit 8 = 1/256 LSB [AN 4.2.6 note]
POWER_LSB_W = 0.00032  # Pmean/Qmean/Smean: 32-bit value * 0.00032 W/var/VA [DS Table-13]
THRESHOLD_LSB_W = 0.00032  # PStartTh..SPhaseTh: unit 0.00032 W [DS Table-6, AN 5.1]
PF_LSB = 0.001  # signed, -1000..+1000 [DS Table-13]
FREQ_LSB_HZ = 0.01  # [DS Table-15]
ANGLE_LSB_DEG = 0.1  # PAngle unsigned 0..360.0 deg [DS Table-15]
TEMP_LSB_C = 1  # signed [DS Table-15]
GAIN_UNITY = const(0x8000)  # Ugain/Igain = ref / meas * 32768 [AN 4.2.6]
PQGAIN_ONE = const(1 << 15)  # PQGain = complement(-e / (1 + e) * 2^15) [AN 4.2.7]
REG_FULL = const(0xFFFF)  # OVth/SagTh/OIth: 0xFFFF = ADC full-scale peak [DS OVth, SagTh, OIth]
THRESHOLD_GAIN_SHIFT = const(14)  # ThReg = RmsReg * sqrt(2) / (VIgain / 2^14) [DS 3.7.2]
# Derived from DS 3.7.2 with OVth's "0xFFFF = ADC full-scale peak": at Ugain = Igain = 8000H a
# full-scale sine reads RmsReg = 2 x 65535 (a 16-bit register saturates before). The full-
# scale peak itself is not given; the largest specified input is 720 mV rms, i.e. a peak of
# ADC_FS_PEAK_V (used for design gains before calibration, and by the simulator).
RMS_AT_FULL_SCALE = 2 * 0xFFFF
ADC_FS_PEAK_V = 0.720 * 1.41421356
RMS_MAX_A = 65.535  # Irms register range; beyond it calibrate to 1/k and multiply [DS Table-17 note 1]

# Energy: one CF = 1 kWh / MC; registers count 0.01 CF [DS 3.5.1]; PL_constant = 450e9 / MC
# [AN 4.2.2]. Forward and reverse cancel inside one 0.01 CF accumulator [DS 3.5.1].
PL_CONSTANT_NUMERATOR = 450000000000
METER_CONSTANT = const(3200)  # imp/kWh, the power-on PL_constant 0861C468H = 140,625,000 [DS Table-6]
ENERGY_COUNTS_PER_CF = const(100)


def pl_constant(mc=METER_CONSTANT):
    return PL_CONSTANT_NUMERATOR // mc


def energy_mj_per_count(mc=METER_CONSTANT):
    """Millijoules per energy-register count: 3.6e9 mJ/kWh / MC / 100 (11250 at MC 3200)."""
    return 3600000000 // (mc * ENERGY_COUNTS_PER_CF)


# Phase-angle calibration from the energy error at PF 0.5L: Phi = e_p * Gphase [AN 4.2.7];
# Gphase = 2.048 MHz / (2 pi f sqrt 3): 3763.739 at 50 Hz, 3136.449 at 60 Hz.
GPHASE = {50: 3763.739, 60: 3136.449}

# --- analog and timing limits ---------------------------------------------------------------------
ADC_IN_MIN_VRMS = 120e-6  # channel differential input, PGA 1 [DS 6.1]
ADC_IN_MAX_VRMS = 0.720
ADC_ABS_MIN_V = -0.6  # absolute analog input limit [DS 6.7]
ADC_PF05_MIN_VRMS = 180e-6  # 0.1 % active energy accuracy range at PF 0.5L [DS Table-16]
ACCURACY_ACTIVE = 0.001  # +-0.1 % over 6000:1 [DS Features, Table-16]
SAMPLE_RATE_HZ = const(8000)  # channel sampling frequency [DS 6.1]
BANDWIDTH_HZ = const(2000)
MEAN_CYCLES = const(16)  # measured values averaged over 16 voltage cycles, ~3 Hz update [DS 3.6]
XTAL_HZ = 16384000  # +-20 ppm, load capacitors on chip [DS 6.1, pin OSCI/OSCO]
VREF_V = 1.2  # [DS 6.1]
VREF_TC_PPM = 15  # max, -40..85 C (6 typ) [DS 6.1]
