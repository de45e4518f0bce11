"""The one frozen clock of every generated file.

KiCad stamps dates into netlists, schematics, Gerbers, SVGs and PDFs and has no flag against
it; zips and Office files carry member times; the iBoM prints a file time. All of them read
this instant, so two builds write the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

FROZEN = datetime(2000, 1, 1, 0, 0, 0, tzinfo=UTC)

# libfaketime's absolute form: the clock stands still at this instant (an "@" prefix would
# start it there and let it run, which leaks seconds into SVG titles under load)
FAKETIME = FROZEN.strftime("%Y-%m-%d %H:%M:%S")
EPOCH = int(FROZEN.timestamp())
ZIP_TIME = FROZEN.timetuple()[:6]  # zipfile's (year, month, day, hour, minute, second)
ISO = FROZEN.strftime("%Y-%m-%dT%H:%M:%SZ")
