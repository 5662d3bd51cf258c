"""A patient's recent vital signs for the web app's chart: per-minute means of the stored samples.

The store reduces them itself (:meth:`~service.stores.base.SampleStore.minute_means`), so six
hours of a 1-Hz band (21,600 samples) come back as at most 360 rows: the chart needs the course
over hours, not each beat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

from service.errors import StoreError
from service.stores.base import SampleStore

log = logging.getLogger(__name__)

CHART_SPAN_MS: Final = 6 * 3_600_000
"""What the patient's page charts: the last six hours, long enough to see a reaction's build-up
and recovery against the resting level before it."""


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
    try:
        minutes = store.minute_means(patient_id, start_ms, end_ms)
    except StoreError as exc:
        # the error names the store and what to check, never a value or a patient
        log.warning("the web app could not read vitals for its chart: %s", exc)
        return VitalsSeries(start_ms, end_ms, unavailable=True)
    return VitalsSeries(
        start_ms,
        end_ms,
        [(m.minute_ms, m.heart_rate_bpm) for m in minutes if m.heart_rate_bpm is not None],
        [(m.minute_ms, m.skin_temperature_c) for m in minutes if m.skin_temperature_c is not None],
    )
