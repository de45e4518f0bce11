# Wrap-safe ticks: the one module that does arithmetic on ticks values.
#
# MicroPython's ticks_ms()/ticks_us() count modulo TICKS_PERIOD, a power of two that is
# MP_SMALL_INT_POSITIVE_MASK + 1 (extmod/modtime.c, py/mpconfig.h): 2**30 on the ESP32-S3's
# 32-bit port, so ticks_ms wraps every 12.4 days and ticks_us every 17.9 minutes. A ticks
# value is opaque: only ticks_diff() and ticks_add() may combine it, and ticks_diff() is right
# only while the two values are less than PERIOD/2 apart (docs/library/time.rst). Anything
# else in firmware/ that adds, subtracts or orders ticks values fails the tick check
# (firmware/tools/tickcheck.py, run by the tests).
#
# On the device these are the port's own C functions. Anywhere else (CPython, and the unix
# port, whose 64-bit build wraps at 2**62) the same formulas as extmod/modtime.c run at the
# ESP32's period, so every host test sees the device's wrap.
import time as _time

PERIOD = 1 << 30
MASK = PERIOD - 1
HALF = PERIOD >> 1  # ticks_diff() returns -HALF .. HALF-1


def _diff(a, b, half=HALF, mask=MASK):
    # modtime.c: shift forward by half a period, wrap, shift back
    return ((a - b + half) & mask) - half


def _add(t, delta, half=HALF, mask=MASK):
    # modtime.c refuses deltas ticks_diff() could not give back (-HALF included)
    if not -half < delta < half:
        raise OverflowError("ticks interval overflow")
    return (t + delta) & mask


try:
    _native = _time.ticks_add(0, -1) == MASK
except AttributeError:  # CPython
    _native = False

if _native:
    ticks_ms = _time.ticks_ms
    ticks_us = _time.ticks_us
    ticks_diff = _time.ticks_diff
    ticks_add = _time.ticks_add
else:
    ticks_diff = _diff
    ticks_add = _add
    if hasattr(_time, "ticks_ms"):  # the unix port: its counters, read at the ESP32's period

        def ticks_ms():
            return _time.ticks_ms() & MASK

        def ticks_us():
            return _time.ticks_us() & MASK

    else:

        def ticks_ms():
            return (_time.monotonic_ns() // 1000000) & MASK

        def ticks_us():
            return (_time.perf_counter_ns() // 1000) & MASK


def elapsed(now, then):
    """Ticks from `then`, a moment in the past, to `now`; never negative.

    Time does not run backwards, so a negative ticks_diff() means the two readings are more
    than PERIOD/2 apart (the loop blocked, slept or did not look for 6.2 days): that gap is
    returned as HALF, longer than any timeout or interval of this firmware, so it counts as
    'long over', never as 'not yet' or as a negative duration. A gap of k * PERIOD + x still
    reads as x; callers that turn durations into energy bound what that can book.
    """
    d = ticks_diff(now, then)
    return d if d >= 0 else HALF
