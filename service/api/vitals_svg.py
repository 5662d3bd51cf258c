"""The patient page's chart: heart rate and skin temperature over hours or days, as inline SVG.

No script and no image request (the pages' Content-Security-Policy allows neither): the chart is
markup in the page, coloured by the page's style sheet (classes, so dark mode recolours it).
Episodes are shaded behind the lines, the course is broken where the band sent nothing for a
while, and a sentence says in words what the picture shows, for a screen reader (and for
anyone who cannot tell the colours apart).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterator, Sequence
from typing import Final
from zoneinfo import ZoneInfo

from service.accounts.patient_view import DiaryRow, EpisodeRow
from service.accounts.vitals import HOUR_MS, MINUTE_MS, ChartSpan, VitalsSeries
from service.alerts.render import SHORT_WHAT, duration_words, on_patient_clock
from service.const import DIARY_WORDS

WIDTH: Final = 600
PANEL_HEIGHT: Final = 120
LEFT: Final = 44
"""Room for the value labels left of the plot."""
TOP: Final = 14
BOTTOM: Final = 22
"""Room for the hour labels under each panel."""
GAP_MS: Final = 5 * 60_000
"""No reading for this long (or for one whole point of a longer span) breaks the line: a band off
the wrist is not a flat heart rate."""
DAY_MS: Final = 24 * HOUR_MS


def _scale(low: float, high: float, value: float) -> float:
    return (value - low) / (high - low) if high > low else 0.5


def _bounds(values: Sequence[float], pad: float) -> tuple[float, float]:
    low, high = min(values), max(values)
    return low - pad, high + pad


def _lines(
    points: Sequence[tuple[int, float]],
    x_of: Callable[[int], float],
    y_of: Callable[[float], float],
    step_ms: int,
) -> list[str]:
    """The ``points`` attributes of the polylines, one per stretch without a gap."""
    gap_ms = max(GAP_MS, step_ms)
    stretches: list[list[str]] = []
    last_ms: int | None = None
    for time_ms, value in points:
        if last_ms is None or time_ms - last_ms > gap_ms:
            stretches.append([])
        stretches[-1].append(f"{x_of(time_ms):.1f},{y_of(value):.1f}")
        last_ms = time_ms
    return [" ".join(stretch) for stretch in stretches]


def _panel(
    series: VitalsSeries,
    points: Sequence[tuple[int, float]],
    *,
    top: float,
    css: str,
    unit: str,
    pad: float,
    digits: int,
    episodes: Sequence[EpisodeRow],
    timezone: str,
    now_s: float,
) -> str:
    low, high = _bounds([v for _, v in points], pad)
    plot_w = WIDTH - LEFT - 6
    plot_h = PANEL_HEIGHT - TOP - BOTTOM

    def x_of(time_ms: int) -> float:
        return LEFT + plot_w * _scale(series.start_ms, series.end_ms, time_ms)

    def y_of(value: float) -> float:
        return top + TOP + plot_h * (1 - _scale(low, high, value))

    parts = [f'<rect class="frame" x="{LEFT}" y="{top + TOP}" width="{plot_w}" height="{plot_h}"/>']
    for episode in episodes:
        start = max(series.start_ms, int(episode.opened_s * 1000))
        end = min(series.end_ms, int((episode.closed_s or now_s) * 1000))
        if end > start:
            parts.append(
                f'<rect class="episode" x="{x_of(start):.1f}" y="{top + TOP}" '
                f'width="{max(2.0, x_of(end) - x_of(start)):.1f}" height="{plot_h}"/>'
            )
    for value in (low + pad, high - pad):
        parts.append(
            f'<text class="tick" x="{LEFT - 4}" y="{y_of(value) + 4:.1f}" text-anchor="end">'
            f"{value:.{digits}f}</text>"
        )
    for tick_ms, label in _ticks(series, timezone):
        parts.append(
            f'<text class="tick" x="{x_of(tick_ms):.1f}" y="{top + PANEL_HEIGHT - 6}" '
            f'text-anchor="middle">{html.escape(label)}</text>'
        )
    parts.extend(
        f'<polyline class="{css}" points="{line}"/>'
        for line in _lines(points, x_of, y_of, series.span.step_ms)
    )
    parts.append(f'<text class="tick" x="{LEFT + 4}" y="{top + TOP - 3}">{unit}</text>')
    return "".join(parts)


def _ticks(series: VitalsSeries, timezone: str) -> Iterator[tuple[int, str]]:
    """The time labels under a panel, on the patient's clock: whole hours, or days at midnight.

    Inside the span and clear of its ends (a label there would be cut off).
    """
    span = series.span
    zone = ZoneInfo(timezone)
    local = dt.datetime.fromtimestamp(series.start_ms / 1000, zone)
    if span.tick_ms >= DAY_MS:
        at = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        hours = span.tick_ms // HOUR_MS
        at = local.replace(hour=local.hour - local.hour % hours, minute=0, second=0, microsecond=0)
    step = dt.timedelta(milliseconds=span.tick_ms)
    margin_ms = span.span_ms // 40
    while (time_ms := int(at.timestamp() * 1000)) < series.end_ms - margin_ms:
        if time_ms > series.start_ms + margin_ms:
            yield time_ms, at.strftime("%a" if span.tick_ms >= DAY_MS else "%H:%M")
        at += step  # on the wall clock (aware arithmetic): midnight stays midnight over DST


def _diary_marks(series: VitalsSeries, diary: Sequence[DiaryRow], height: int) -> str:
    """A small triangle under the chart (``height``) for each entry (its kind in a title)."""
    plot_w = WIDTH - LEFT - 6
    marks = []
    for entry in diary:
        x = LEFT + plot_w * _scale(series.start_ms, series.end_ms, int(entry.time_s * 1000))
        marks.append(
            f'<path class="mark" d="M{x:.1f},{height + 1} l-5,9 h10 z">'
            f"<title>{html.escape(DIARY_WORDS.get(entry.kind, entry.kind))}</title></path>"
        )
    return "".join(marks)


def vitals_chart(
    series: VitalsSeries,
    episodes: Sequence[EpisodeRow],
    timezone: str,
    now_s: float,
    diary: Sequence[DiaryRow] = (),
) -> str:
    """The chart and its sentence, or a sentence alone when there is nothing to draw.

    ``diary`` entries within the span are marked under the last panel and said in the sentence.
    """
    span = series.span
    if series.unavailable:
        return (
            '<p class="note">The readings cannot be read now (the sample store did not answer);'
            " the rest of this page is up to date.</p>"
        )
    if not series.heart_rate and not series.skin_temp:
        return f'<p class="note">No readings {span.window or "in the last " + span.words}.</p>'
    panels = [
        (series.heart_rate, "hr", "beats a minute", 5.0, 0),
        (series.skin_temp, "temp", "skin °C", 0.2, 1),
    ]
    shown = [(p, css, unit, pad, digits) for p, css, unit, pad, digits in panels if p]
    within = [
        e
        for e in episodes
        if (e.closed_s or now_s) * 1000 > series.start_ms and e.opened_s * 1000 < series.end_ms
    ]
    drawn = "".join(
        _panel(
            series,
            points,
            top=i * PANEL_HEIGHT,
            css=css,
            unit=unit,
            pad=pad,
            digits=digits,
            episodes=within,
            timezone=timezone,
            now_s=now_s,
        )
        for i, (points, css, unit, pad, digits) in enumerate(shown)
    )
    height = PANEL_HEIGHT * len(shown)
    noted = [e for e in diary if series.start_ms <= e.time_s * 1000 < series.end_ms]
    said = _words(series, within, timezone, now_s)
    if noted:
        said += (
            " Diary: "
            + "; ".join(
                f"{DIARY_WORDS.get(e.kind, e.kind).lower()} at "
                f"{on_patient_clock(e.time_s, now_s, timezone)}"
                for e in sorted(noted, key=lambda e: e.time_s)
            )
            + " (the triangles)."
        )
    return (
        f'<figure class="chart"><svg viewBox="0 0 {WIDTH} {height + 12}" width="100%" '
        f'role="img" aria-labelledby="chart-words" focusable="false">{drawn}'
        f"{_diary_marks(series, noted, height)}</svg>"
        f'<figcaption id="chart-words">{said}</figcaption></figure>'
    )


def _words(
    series: VitalsSeries,
    episodes: Sequence[EpisodeRow],
    timezone: str,
    now_s: float,
) -> str:
    """The chart in one or two sentences: ranges, the latest values, the shaded episodes."""
    window = series.span.window
    lead = window[:1].upper() + window[1:] if window else f"The last {series.span.words}"
    said = [f"{lead}, {_every(series.span)}."]
    for points, what, digits, unit in (
        (series.heart_rate, "Heart rate", 0, " beats a minute"),
        (series.skin_temp, "Skin temperature", 1, " °C"),
    ):
        if points:
            values = [v for _, v in points]
            latest_ms, latest = points[-1]
            said.append(
                f"{what} {min(values):.{digits}f} to {max(values):.{digits}f}{unit}, "
                f"{latest:.{digits}f} at {on_patient_clock(latest_ms / 1000, now_s, timezone)}."
            )
    said.append(_watched(series))
    if episodes:
        kinds = ", ".join(
            f"{SHORT_WHAT.get(e.kind, e.kind)} from {on_patient_clock(e.opened_s, now_s, timezone)}"
            for e in episodes
        )
        said.append(f"Shaded: {html.escape(kinds)}.")
    return " ".join(said)


def _watched(series: VitalsSeries) -> str:
    """How much of the span the band sent a heart rate in: the time the detectors watched.

    Counted in the chart's points (a point with one reading counts whole), so said in which.
    """
    span = series.span
    covered_ms = min(len(series.heart_rate) * span.step_ms, span.span_ms)
    share = round(100 * covered_ms / span.span_ms)
    steps = span.step_ms // MINUTE_MS
    counted = "" if steps == 1 else f", counted in {steps}-minute steps"
    shown = duration_words(span.span_ms / 1000) if span.window else span.words
    return (
        f"A heart rate came in {duration_words(covered_ms / 1000)} of these {shown} "
        f"({share} %{counted})."
    )


def _every(span: ChartSpan) -> str:
    """``one point a minute``, ``one point every 30 minutes`` (each the mean of its readings)."""
    minutes = span.step_ms // MINUTE_MS
    return "one point a minute" if minutes == 1 else f"one point every {minutes} minutes"
