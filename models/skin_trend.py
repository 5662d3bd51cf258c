"""The skin's own recent course, to see a flush on a skin that was cooling (rules 1.11).

A flush that starts while the skin cools (through a stress task, after a warm room) may never warm
faster than the flush slope: its warming is spent on stopping the cooling. Against the straight
line through the skin's course 5-10 min ago, extrapolated to now, it stands out. The heart rate
snapshots give the heart's change over the same minutes, which tells a flush (heart up) from the
re-warming after stress (heart slowing as the person relaxes).

Snapshots (time, 30-s skin temperature, two-minute heart rate) are kept one per
``FLUSH_TREND_SNAPSHOT_S`` while the skin is settled, for the last ``FLUSH_TREND_LAG_S +
FLUSH_TREND_FIT_S``; the state is three short lists of numbers, saved with the detector's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.const import (
    FLUSH_TREND_FIT_S,
    FLUSH_TREND_LAG_S,
    FLUSH_TREND_SNAPSHOT_S,
    GAP_RESET_S,
)

_KEEP = int((FLUSH_TREND_LAG_S + FLUSH_TREND_FIT_S) / FLUSH_TREND_SNAPSHOT_S) + 2
"""Snapshots kept: the fit window and the lag, plus one at each end for irregular sampling."""
_MIN_FIT_POINTS = int(FLUSH_TREND_FIT_S / FLUSH_TREND_SNAPSHOT_S)
"""A trend needs this many snapshots in its window (no line through a gap)."""
_HALF = FLUSH_TREND_SNAPSHOT_S / 2.0


@dataclass(slots=True)
class SkinTrend:
    """Snapshots of skin temperature and heart rate, and what they say about the last minutes."""

    time_s: list[float] = field(default_factory=list)
    temp_c: list[float] = field(default_factory=list)
    hr_bpm: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not len(self.time_s) == len(self.temp_c) == len(self.hr_bpm) <= _KEEP:
            raise ValueError("skin trend snapshots do not line up")
        if any(b <= a for a, b in zip(self.time_s, self.time_s[1:], strict=False)):
            raise ValueError("skin trend snapshots are not in time order")  # a line needs two

    def observe(
        self, time_s: float, temp_c: float | None, hr_bpm: float | None, settled: bool
    ) -> None:
        """Fold in one sample's smoothed values; forget everything when the skin is not settled."""
        if temp_c is None or hr_bpm is None or not settled:
            self.clear()
            return
        if self.time_s and time_s - self.time_s[-1] >= GAP_RESET_S:
            self.clear()
        if not self.time_s or time_s - self.time_s[-1] >= FLUSH_TREND_SNAPSHOT_S:
            self.time_s.append(time_s)
            self.temp_c.append(temp_c)
            self.hr_bpm.append(hr_bpm)
            if len(self.time_s) > _KEEP:
                del self.time_s[0], self.temp_c[0], self.hr_bpm[0]

    def clear(self) -> None:
        """Forget the course (band taken off, skin settling again, a long gap)."""
        self.time_s.clear()
        self.temp_c.clear()
        self.hr_bpm.clear()

    def above_trend_c(self, time_s: float, temp_c: float) -> float | None:
        """How far ``temp_c`` lies above the skin's straight-line course of 5-10 min ago.

        None unless that window holds enough snapshots, the oldest near its start.
        """
        low = time_s - FLUSH_TREND_LAG_S - FLUSH_TREND_FIT_S - _HALF
        high = time_s - FLUSH_TREND_LAG_S + _HALF
        points = [
            (t - time_s, y)
            for t, y in zip(self.time_s, self.temp_c, strict=True)
            if low <= t <= high
        ]
        n = len(points)
        if n < _MIN_FIT_POINTS or points[0][0] + time_s > low + 3.0 * _HALF:
            return None
        mean_t = sum(t for t, _ in points) / n
        mean_y = sum(y for _, y in points) / n
        spread = sum((t - mean_t) ** 2 for t, _ in points)
        slope = sum((t - mean_t) * (y - mean_y) for t, y in points) / spread
        return temp_c - (mean_y - slope * mean_t)  # the line at time_s (t = 0)

    def hr_change_frac(self, time_s: float, hr_bpm: float) -> float | None:
        """The heart rate's change since ``FLUSH_TREND_LAG_S`` ago (None without a snapshot)."""
        if not self.time_s:
            return None
        target = time_s - FLUSH_TREND_LAG_S
        past = min(range(len(self.time_s)), key=lambda i: abs(self.time_s[i] - target))
        if abs(self.time_s[past] - target) > FLUSH_TREND_SNAPSHOT_S or self.hr_bpm[past] <= 0.0:
            return None
        return hr_bpm / self.hr_bpm[past] - 1.0
