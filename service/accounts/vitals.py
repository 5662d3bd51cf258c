"""A patient's recent vital signs for the web app's chart: per-minute means of the stored samples.

Read an hour at a time from the sample store (:data:`~service.stores.reading.READ_SPAN_MS`) and
reduced as they come, so six hours of a 1-Hz band (21,600 samples) become at most 360 points
per signal: the chart needs the course over hours, not each beat.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Final

from service.errors import StoreError
from service.stores.base import SampleStore
from service.stores.reading import READ_SPAN_MS

log = logging.getLogger(__name__)

CHART_SPAN_MS: Final = 6 * 3_600_000
"""What the patient's page charts: the last six hours, long enough to see a reaction's build-up
and recovery against the resting level before it."""
MINUTE_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class VitalsSeries:
    """Per-minute means of heart rate and skin temperature in ``[start_ms, end_ms)``."""

    start_ms: int
    end_ms: int
    heart_rate: list[tuple[int, float]] = field(default_factory=list)
    """(minute start, mean beats a minute), oldest first; minutes without a reading left out."""
    skin_temp: list[tuple[int, float]] = field(default_factory=list)
    unavailable: bool = False
    """The store could not be read: the page says so instead of an empty chart."""


def recent_vitals(
    store: SampleStore, patient_id: str, end_ms: int, span_ms: int = CHART_SPAN_MS
) -> VitalsSeries:
    """The patient's per-minute vitals over the ``span_ms`` before ``end_ms``."""
    start_ms = end_ms - span_ms
    sums: dict[str, dict[int, list[float]]] = {
        "heart_rate_bpm": defaultdict(lambda: [0.0, 0.0]),
        "skin_temperature_c": defaultdict(lambda: [0.0, 0.0]),
    }
    try:
        for low in range(start_ms, end_ms, READ_SPAN_MS):
            high = min(low + READ_SPAN_MS, end_ms)
            for stored in store.samples(patient_id=patient_id, start_ms=low, end_ms=high):
                minute = stored.sample.time_ms - stored.sample.time_ms % MINUTE_MS
                for name, per_minute in sums.items():
                    value = getattr(stored.sample, name)
                    if value is not None:
                        total = per_minute[minute]
                        total[0] += value
                        total[1] += 1
    except StoreError as exc:
        # the error names the store and what to check, never a value or a patient
        log.warning("the web app could not read vitals for its chart: %s", exc)
        return VitalsSeries(start_ms, end_ms, unavailable=True)

    def means(name: str) -> list[tuple[int, float]]:
        return [(minute, s / n) for minute, (s, n) in sorted(sums[name].items())]

    return VitalsSeries(start_ms, end_ms, means("heart_rate_bpm"), means("skin_temperature_c"))
