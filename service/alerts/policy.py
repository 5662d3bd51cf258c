"""A patient's alerting policy and the quiet-hours rule, as pure values and functions."""

from __future__ import annotations

import datetime as dt
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
    """End of the quiet period ``now_s`` falls in (epoch s), or ``None`` outside quiet hours.

    Quiet hours may wrap midnight (22:00-07:00). They only ever hold back warnings.
    """
    if not policy.quiet_start or not policy.quiet_end:
        return None
    zone = ZoneInfo(policy.timezone)
    now = dt.datetime.fromtimestamp(now_s, zone)
    start, end = parse_hhmm(policy.quiet_start), parse_hhmm(policy.quiet_end)
    if start == end:
        return None
    today = now.date()
    for day in (today - dt.timedelta(days=1), today):
        begin = dt.datetime.combine(day, start, zone)
        finish = dt.datetime.combine(day if end > start else day + dt.timedelta(days=1), end, zone)
        if begin <= now < finish:
            return finish.timestamp()
    return None
