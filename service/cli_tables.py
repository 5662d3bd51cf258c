"""What the ``flarewatch admin`` commands share: UTC times and row numbers."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from flarewatch.const import MIN_VALID_TIME_MS
from flarewatch.errors import ConfigError
from models.const import LATEST_VALID_TIME_S
from service.const import MAX_ROW_NUMBER


def row_number(text: str) -> int:
    """An argparse type for ids and ``--limit``: a whole number from 1 to MAX_ROW_NUMBER."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_ROW_NUMBER:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_ROW_NUMBER}, got {value}")
    return value


def parse_time(text: str | None, option: str = "--until") -> float:
    """A time option: an ISO 8601 time (UTC unless it says otherwise), or now.

    Only times samples can have (2010 to 2100): beyond them the stores fail on the query
    (InfluxDB's time overflows) or the message naming the window does (year 10000).
    """
    if text is None:
        return time.time()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time, e.g. 2026-11-20T08:00"
        ) from exc
    time_s = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    if not MIN_VALID_TIME_MS / 1000.0 <= time_s <= LATEST_VALID_TIME_S:
        raise ConfigError(f"{option} {text!r}: give a time from 2010 to 2100")
    return time_s


def when(time_s: float | None) -> str:
    """A UTC epoch time as ``YYYY-MM-DD HH:MM:SSZ`` (``-`` for none)."""
    if time_s is None:
        return "-"
    return dt.datetime.fromtimestamp(time_s, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
