"""Per-patient calibration of the surge evidence: how much it takes to alarm for this heart.

One fixed evidence level suits nobody: the same 70 frac·s gave one tuning Fitbit user an alarm every
three days and another one every eighty. :class:`EvidenceCalibration` counts, per patient, how
often the surge evidence reached each of a few levels (one count per excursion, at its peak) and
picks the smallest level reached no more often than a target rate per day. A quiet heart alarms
sooner and surer, a restless one later; the rate of false alarms is what stays the same.

Counts fade over ``CALIBRATION_MEMORY_S`` and the level only moves within
``CALIBRATION_LEVELS``, so one bad week neither sets the level for good nor deafens the detector.
Until ``CALIBRATION_MIN_HISTORY_S`` of data are in, the fixed default applies. The state is a
flat dataclass of numbers, saved with the rest of the detector's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from models.const import (
    CALIBRATION_LEVELS,
    CALIBRATION_MEMORY_S,
    CALIBRATION_MIN_HISTORY_S,
    CALIBRATION_REFRESH_S,
    GAP_RESET_S,
)

_DAY_S = 86_400.0


@dataclass(slots=True)
class EvidenceCalibration:
    """Faded counts of evidence excursions per level, and the level they call for.

    Call :meth:`observe` with every sample's evidence (0 when none is building) and read
    :meth:`level`; an alarm's own excursion counts too, at the level that raised it.
    """

    counts: list[float] = field(default_factory=lambda: [0.0] * len(CALIBRATION_LEVELS))
    exposure_s: float = 0.0
    history_s: float = 0.0
    pending_s: float = 0.0
    last_time_s: float | None = None
    faded_s: float | None = None
    peak: float = 0.0

    def __post_init__(self) -> None:
        # a saved state from other levels, or a damaged one, must not be half-used
        if len(self.counts) != len(CALIBRATION_LEVELS) or not all(
            math.isfinite(n) and n >= 0.0 for n in self.counts
        ):
            raise ValueError(f"calibration counts do not fit the levels {CALIBRATION_LEVELS}")
        if not (math.isfinite(self.exposure_s) and self.exposure_s >= 0.0):
            raise ValueError("calibration exposure must be a finite, non-negative time")

    def observe(self, time_s: float, evidence: float) -> None:
        """Fold in one sample's surge evidence (an excursion ends when it falls back to 0)."""
        if self.last_time_s is not None:
            # a long silence is not time at rest: the band was off
            dt = time_s - self.last_time_s
            if dt < GAP_RESET_S:
                self.pending_s += dt
                self.history_s += dt
        self.last_time_s = time_s
        if evidence > 0.0:
            self.peak = max(self.peak, evidence)
            return
        if self.peak > 0.0:
            self._fade(time_s)
            for i, level in enumerate(CALIBRATION_LEVELS):
                if self.peak >= level:
                    self.counts[i] += 1.0
            self.peak = 0.0
        elif self.faded_s is None or time_s - self.faded_s >= CALIBRATION_REFRESH_S:
            self._fade(time_s)

    def level(self, default: float, target_per_day: float) -> float:
        """Evidence needed for an alarm: ``default`` until enough history, then calibrated.

        Cheap enough to ask on every sample a surge condition holds (six divisions).
        """
        if self.history_s < CALIBRATION_MIN_HISTORY_S or self.exposure_s <= 0.0:
            return default
        rates = self.rates_per_day()
        return next(
            (lvl for lvl, rate in rates.items() if rate <= target_per_day), CALIBRATION_LEVELS[-1]
        )

    def rates_per_day(self) -> dict[float, float]:
        """Faded rate of excursions reaching each level (for reports; empty without history)."""
        if self.exposure_s <= 0.0:
            return {}
        days = self.exposure_s / _DAY_S
        return {lvl: n / days for lvl, n in zip(CALIBRATION_LEVELS, self.counts, strict=True)}

    def _fade(self, time_s: float) -> None:
        """Age the counts and add the time since the last fade to the exposure."""
        if self.faded_s is not None:
            decay = math.exp(-(time_s - self.faded_s) / CALIBRATION_MEMORY_S)
            self.counts = [n * decay for n in self.counts]
            self.exposure_s *= decay
        self.exposure_s += self.pending_s
        self.pending_s = 0.0
        self.faded_s = time_s
