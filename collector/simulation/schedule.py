"""A patient's day: when they sleep, move, take the band off and lose sensor contact.

Each local day gets its own plan drawn from a random stream keyed by (seed, patient, day), so
any time range can be generated on its own, in any chunking, with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.simulation.const import (
    BAND_OFF_MAX_S,
    BAND_OFF_MIN_S,
    CONTACT_GLITCH_MAX_S,
    CONTACT_GLITCHES_PER_DAY,
    MS_PER_DAY,
    MS_PER_H,
)
from collector.simulation.profile import PatientProfile

Intervals = npt.NDArray[np.int64]
"""Shape (n, 2): ``[start_ms, end_ms)`` rows."""


@dataclass(frozen=True, slots=True)
class DayPlan:
    """Events of one local day of one patient, as absolute UTC epoch milliseconds."""

    day: int
    sleep: Intervals
    """The night starting this day (onset may be after midnight)."""
    bouts: Intervals
    bout_intensity: npt.NDArray[np.float64]
    """0-1: 0.3 a stroll, 0.6 brisk walking, 1 running."""
    band_off: Intervals
    contact_glitches: Intervals


def _interval(start_ms: float, duration_ms: float) -> list[int]:
    return [round(start_ms), round(start_ms + duration_ms)]


def _as_intervals(rows: list[list[int]]) -> Intervals:
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def local_day(time_ms: int, profile: PatientProfile) -> int:
    """Index of the patient's local day that ``time_ms`` falls in."""
    return int((time_ms + profile.tz_offset_h * MS_PER_H) // MS_PER_DAY)


def day_plan(profile: PatientProfile, seed: int, day: int) -> DayPlan:
    """Draw the plan of local ``day`` (days since the epoch) for ``profile``."""
    rng = np.random.default_rng([seed, profile.index, day, 0x5EED])
    day_start_ms = day * MS_PER_DAY - profile.tz_offset_h * MS_PER_H
    onset_ms = day_start_ms + (profile.sleep_onset_h + rng.normal(0, 0.4)) * MS_PER_H
    sleep_ms = max(4.0, profile.sleep_duration_h + rng.normal(0, 0.6)) * MS_PER_H
    # this day's waking window runs from the end of the previous night to tonight's onset
    wake_ms = onset_ms - MS_PER_DAY + sleep_ms
    awake_ms = max(onset_ms - wake_ms, MS_PER_H)

    n_bouts = int(rng.poisson(profile.activity_bouts_per_day))
    starts = wake_ms + rng.uniform(0.5 * MS_PER_H, awake_ms - 0.5 * MS_PER_H, n_bouts)
    durations = np.clip(rng.lognormal(np.log(15 * 60_000), 0.7, n_bouts), 3 * 60_000, 90 * 60_000)
    intensity = np.clip(rng.beta(2.0, 3.0, n_bouts) * 1.2, 0.15, 1.0)

    band_off_start = wake_ms + rng.uniform(0.3, 1.5) * MS_PER_H
    band_off = [_interval(band_off_start, rng.uniform(BAND_OFF_MIN_S, BAND_OFF_MAX_S) * 1000)]

    n_glitches = int(rng.poisson(CONTACT_GLITCHES_PER_DAY))
    glitch_starts = wake_ms + rng.uniform(0, awake_ms, n_glitches)
    glitch_s = rng.uniform(3.0, CONTACT_GLITCH_MAX_S, n_glitches)

    return DayPlan(
        day=day,
        sleep=_as_intervals([_interval(onset_ms, sleep_ms)]),
        bouts=_as_intervals([_interval(s, d) for s, d in zip(starts, durations, strict=True)]),
        bout_intensity=intensity.astype(np.float64),
        band_off=_as_intervals(band_off),
        contact_glitches=_as_intervals(
            [_interval(s, g * 1000) for s, g in zip(glitch_starts, glitch_s, strict=True)]
        ),
    )


def _near(
    times_ms: npt.NDArray[np.int64], intervals: Intervals, tail_ms: int
) -> npt.NDArray[np.bool_]:
    """Which intervals, extended by ``tail_ms`` after their end, reach the sorted ``times_ms``."""
    if len(intervals) == 0 or times_ms.size == 0:
        return np.zeros(len(intervals), dtype=bool)
    keep: npt.NDArray[np.bool_] = (intervals[:, 0] <= times_ms[-1]) & (
        intervals[:, 1] + tail_ms >= times_ms[0]
    )
    return keep


def inside(times_ms: npt.NDArray[np.int64], intervals: Intervals) -> npt.NDArray[np.bool_]:
    """True where a (sorted) time lies in any ``[start, end)`` interval."""
    keep = _near(times_ms, intervals, 0)
    if not keep.any():
        return np.zeros(times_ms.shape, dtype=bool)
    intervals = intervals[keep]
    t = times_ms[:, None]
    hit: npt.NDArray[np.bool_] = np.any(
        (t >= intervals[None, :, 0]) & (t < intervals[None, :, 1]), axis=1
    )
    return hit


def time_since_edge(
    times_ms: npt.NDArray[np.int64], edges_ms: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Seconds since the latest edge at or before each time (``inf`` when there is none)."""
    if len(edges_ms) == 0:
        return np.full(times_ms.shape, np.inf)
    edges = np.sort(edges_ms)
    pos = np.searchsorted(edges, times_ms, side="right") - 1
    since = (times_ms - edges[np.maximum(pos, 0)]) / 1000.0
    return np.where(pos >= 0, since, np.inf)


def trapezoid(
    times_ms: npt.NDArray[np.int64],
    intervals: Intervals,
    heights: npt.NDArray[np.float64],
    ramp_up_s: float,
    ramp_down_s: float,
) -> npt.NDArray[np.float64]:
    """Max over intervals of a level ramping up at each start and down after each end (sorted)."""
    keep = _near(times_ms, intervals, round(ramp_down_s * 1000))
    if not keep.any():
        return np.zeros(times_ms.shape)
    intervals, heights = intervals[keep], heights[keep]
    t = times_ms[:, None] / 1000.0
    start = intervals[None, :, 0] / 1000.0
    end = intervals[None, :, 1] / 1000.0
    up = np.clip((t - start) / ramp_up_s, 0.0, 1.0)
    down = np.clip(1.0 - (t - end) / ramp_down_s, 0.0, 1.0)
    level: npt.NDArray[np.float64] = np.max(np.minimum(up, down) * heights[None, :], axis=1)
    return level
