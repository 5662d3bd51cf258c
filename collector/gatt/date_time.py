"""The GATT Date Time field (*GATT Specification Supplement* §3.70), used inside measurements."""

from __future__ import annotations

import dataclasses
import datetime as dt

from collector.gatt.reader import PayloadReader

DATE_TIME_SIZE = 7


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceDateTime:
    """A Date Time as sent: the device's local wall clock, with no time zone."""

    year: int
    month: int
    day: int
    hours: int
    minutes: int
    seconds: int

    def isoformat(self) -> str:
        """``YYYY-MM-DDThh:mm:ss`` without an offset: the device never says its zone."""
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
            f"T{self.hours:02d}:{self.minutes:02d}:{self.seconds:02d}"
        )

    def to_bytes(self) -> bytes:
        """The 7-byte field (for virtual devices and round-trip tests)."""
        return self.year.to_bytes(2, "little") + bytes(
            [self.month, self.day, self.hours, self.minutes, self.seconds]
        )


def read_date_time(reader: PayloadReader) -> DeviceDateTime | None:
    """Read a Date Time; ``None`` when the device left the date unknown (year, month or day 0)."""
    year = reader.uint(2, "date-time year")
    month, day, hours, minutes, seconds = (reader.uint(1, "date-time") for _ in range(5))
    if hours > 23 or minutes > 59 or seconds > 59:
        raise reader.error("out_of_range", "date-time time of day is out of range")
    if year == 0 or month == 0 or day == 0:
        return None  # Supplement §3.70: 0 means "not known"
    if not 1582 <= year <= 9999:
        raise reader.error("out_of_range", "date-time year must be 1582-9999 or 0")
    try:
        dt.date(year, month, day)
    except ValueError:
        raise reader.error("out_of_range", "date-time is not a calendar date") from None
    return DeviceDateTime(year, month, day, hours, minutes, seconds)
