"""A patient's recent vital signs for the web app's chart: means of the stored samples.

The store reduces them itself (:meth:`~service.stores.base.SampleStore.interval_means`), so six
hours of a 1-Hz band (21,600 samples) come back as at most 360 rows, and a week as 336: the
chart needs the course over hours or days, not each beat.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

from flarewatch.errors import ConfigError
from service.errors import StoreError
from service.stores.base import SampleStore

log = logging.getLogger(__name__)

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class ChartSpan:
    """How far back a chart looks, one point per ``step_ms``, a label every ``tick_ms``."""

    name: str
    """As in the page's address: ``?span=24h``."""
    words: str
    span_ms: int
    step_ms: int
    tick_ms: int
    window: str = ""
    """A fixed window in words, to follow "No readings" ("from 16:32 to 18:10 CET"); empty:
    the last ``words``."""


CHART_SPANS: Final = {
    span.name: span
    for span in (
        ChartSpan("6h", "6 hours", 6 * HOUR_MS, MINUTE_MS, 2 * HOUR_MS),
        ChartSpan("24h", "24 hours", 24 * HOUR_MS, 5 * MINUTE_MS, 4 * HOUR_MS),
        ChartSpan("7d", "7 days", 7 * 24 * HOUR_MS, 30 * MINUTE_MS, 24 * HOUR_MS),
    )
}
"""The spans a page offers, each about 300 points wide. Six hours by default: a reaction's
build-up and recovery against the resting level before it; a day for a night's course; a week
for what comes back at the same hours."""
DEFAULT_SPAN: Final = CHART_SPANS["6h"]


def chart_span(name: str | None) -> ChartSpan:
    """The span called ``name`` (None: the default); :class:`ConfigError` naming the others."""
    if name is None:
        return DEFAULT_SPAN
    found = CHART_SPANS.get(name)
    if found is None:
        raise ConfigError(f"there is no chart span {name[:20]!r}: one of {', '.join(CHART_SPANS)}")
    return found


@dataclass(frozen=True, slots=True)
class VitalsSeries:
    """Means of heart rate and skin temperature per ``span.step_ms`` in ``[start_ms, end_ms)``."""

    start_ms: int
    end_ms: int
    span: ChartSpan = DEFAULT_SPAN
    heart_rate: list[tuple[int, float]] = field(default_factory=list)
    """(interval start, mean beats a minute), oldest first; intervals without a reading left
    out."""
    skin_temp: list[tuple[int, float]] = field(default_factory=list)
    unavailable: bool = False
    """The store could not be read: the page says so instead of an empty chart."""


def vitals_between(
    store: SampleStore, patient_id: str, start_s: float, end_s: float, timezone: str
) -> VitalsSeries:
    """The patient's vitals from ``start_s`` to ``end_s``: an episode and around it.

    The window is said on the patient's clock ("from 16:30 CET on Mon 24 Nov to …").
    """
    zone = ZoneInfo(timezone)
    start_ms, end_ms = int(start_s * 1000), int(end_s * 1000)
    window = "from {} to {}".format(
        *(
            dt.datetime.fromtimestamp(time_s, zone).strftime("%H:%M %Z on %a %d %b")
            for time_s in (start_s, end_s)
        )
    )
    return recent_vitals(store, patient_id, end_ms, window_span(start_ms, end_ms, window))


def window_span(start_ms: int, end_ms: int, window: str) -> ChartSpan:
    """A chart of ``[start_ms, end_ms)``, an episode and around it; ``window`` says when.

    About as many points as the recent spans have: one a minute up to 6 hours, then every 5 or
    30 minutes (longer still, as many more as needed).
    """
    length_ms = max(end_ms - start_ms, MINUTE_MS)
    steps = [span.step_ms for span in CHART_SPANS.values() if span.span_ms >= length_ms]
    step_ms = steps[0] if steps else CHART_SPANS["7d"].step_ms * -(-length_ms // (7 * 24 * HOUR_MS))
    hours = length_ms / HOUR_MS
    tick_ms = next((t for limit, t in _WINDOW_TICKS if hours <= limit), 24 * HOUR_MS)
    return ChartSpan("window", window, length_ms, step_ms, tick_ms, window=window)


_WINDOW_TICKS: Final = ((4, HOUR_MS), (8, 2 * HOUR_MS), (36, 4 * HOUR_MS))
"""A label every hour on a chart of up to 4 hours, every 2 up to 8, every 4 up to 36, else at
midnight."""


def recent_vitals(
    store: SampleStore, patient_id: str, end_ms: int, span: ChartSpan = DEFAULT_SPAN
) -> VitalsSeries:
    """The patient's vitals over the ``span`` before ``end_ms``."""
    start_ms = end_ms - span.span_ms
    try:
        means = store.interval_means(patient_id, start_ms, end_ms, span.step_ms)
    except StoreError as exc:
        # the error names the store and what to check, never a value or a patient
        log.warning("the web app could not read vitals for its chart: %s", exc)
        return VitalsSeries(start_ms, end_ms, span, unavailable=True)
    return VitalsSeries(
        start_ms,
        end_ms,
        span,
        [(m.start_ms, m.heart_rate_bpm) for m in means if m.heart_rate_bpm is not None],
        [(m.start_ms, m.skin_temperature_c) for m in means if m.skin_temperature_c is not None],
    )
