"""Two kinds of time on the gateway: the wall clock stamps messages, a monotonic one times spans.

A Raspberry Pi has no real-time clock: it boots in 1970 (or at the last saved time) until NTP sets
the wall clock, and NTP may later step it back or forward. Intervals timed with the wall clock
would then stall for as long as the step or fire all at once, so they use a monotonic clock; and a
wall-clock reading before the contract's ``MIN_VALID_TIME_MS`` is never put on the wire.
"""

from __future__ import annotations

from collections.abc import Callable

from flarewatch.const import MIN_VALID_TIME_MS

WallClockMs = Callable[[], int]
"""UTC epoch milliseconds (:func:`collector.outbox.wall_clock_ms` by default)."""

MonotonicClockS = Callable[[], float]
"""Seconds from an arbitrary origin that never go back (:func:`time.monotonic` by default)."""


def plausible_time_ms(time_ms: int) -> int | None:
    """``time_ms`` if the wall clock looks set, ``None`` before 2010 (an unset real-time clock)."""
    return time_ms if time_ms >= MIN_VALID_TIME_MS else None
