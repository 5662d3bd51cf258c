"""A patient's alerting policy and the quiet-hours rule, as pure values and functions."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from service.alerts.errors import AlertingError


@dataclass(frozen=True, slots=True)
class Policy:
    """How one patient's alerts behave; times in seconds, quiet hours as local "HH:MM"."""

    cancel_window_s: float
    ack_timeout_s: float
    repeat_interval_s: float
    timezone: str = "UTC"
    quiet_start: str | None = None
    quiet_end: str | None = None


def parse_hhmm(text: str) -> dt.time:
    """Parse a local "HH:MM" time of day; raise :class:`AlertingError` with advice if malformed."""
    try:
        hours, minutes = text.split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError as exc:
        raise AlertingError(f"time {text!r} must look like 22:30 (24-hour HH:MM)") from exc


def quiet_until_s(policy: Policy, now_s: float) -> float | None:
    """End of the quiet period ``now_s`` falls in (epoch s, after ``now_s``), else ``None``.

    Quiet hours follow the local wall clock and may wrap midnight (22:00-07:00): it is quiet
    while the clock reads a time inside them, until it first reads the end time or later. They
    only ever hold back warnings.
    """
    if not policy.quiet_start or not policy.quiet_end:
        return None
    start, end = parse_hhmm(policy.quiet_start), parse_hhmm(policy.quiet_end)
    if start == end:
        return None
    zone = ZoneInfo(policy.timezone)
    local = dt.datetime.fromtimestamp(now_s, zone)
    end_day = _quiet_end_day(start, end, local)
    if end_day is None:
        return None
    instants = instants_reading_s(dt.datetime.combine(end_day, end), zone)
    return next((instant for instant in instants if instant > now_s), None)


def _quiet_end_day(start: dt.time, end: dt.time, local: dt.datetime) -> dt.date | None:
    """The local day the quiet period ends on, if the wall-clock time of ``local`` is in it."""
    wall, today = local.time(), local.date()
    if start < end:
        return today if start <= wall < end else None
    if wall >= start:
        return today + dt.timedelta(days=1)
    return today if wall < end else None


def instants_reading_s(wall: dt.datetime, zone: ZoneInfo) -> list[float]:
    """The instants (epoch s, ascending) from which clocks in ``zone`` read ``wall`` (naive).

    Usually one; two on the night clocks go back (02:30 in Berlin is 00:30 and 01:30 UTC);
    on the night they go forward a skipped time is passed at the jump (03:00 CEST).
    """
    both = sorted({wall.replace(tzinfo=zone, fold=fold).timestamp() for fold in (0, 1)})
    real = [instant for instant in both if _wall_clock(instant, zone) == wall]
    return real or [_clock_change_s(both[0], both[-1], zone)]


def next_wall_time_s(at: dt.time, zone: ZoneInfo, after_s: float) -> float:
    """The first instant after ``after_s`` at which clocks in ``zone`` read ``at``."""
    day = dt.datetime.fromtimestamp(after_s, zone).date()
    for offset in range(3):  # today, tomorrow, or the day after a skipped wall time
        wall = dt.datetime.combine(day + dt.timedelta(days=offset), at)
        later = [instant for instant in instants_reading_s(wall, zone) if instant > after_s]
        if later:
            return later[0]
    raise AssertionError("a wall-clock time is read at least once every two days")


def _wall_clock(instant_s: float, zone: ZoneInfo) -> dt.datetime:
    """What clocks in ``zone`` read at ``instant_s`` (naive local time)."""
    return dt.datetime.fromtimestamp(instant_s, zone).replace(tzinfo=None)


def _clock_change_s(before_s: float, after_s: float, zone: ZoneInfo) -> float:
    """The instant the UTC offset of ``zone`` changes between two instants (bisection, 1 s)."""

    def offset(instant_s: int) -> dt.timedelta | None:
        return dt.datetime.fromtimestamp(instant_s, zone).utcoffset()

    low, high = math.floor(before_s), math.ceil(after_s)
    old = offset(low)
    while high - low > 1:
        middle = (low + high) // 2
        if offset(middle) == old:
            low = middle
        else:
            high = middle
    return float(high)
