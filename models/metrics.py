"""The evaluation table: sensitivity, delays and false alarms, overall and per confounder."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.const import EVAL_SIGNAL_LONG_S
from models.evaluation import EpisodeOutcome, EvaluationResult

SOURCE_LABELS = {
    "stress_predict": "stress-predict (E4)",
    "fitbit": "Fitbit free-living",
    "own": "your recordings",
}


@dataclass(frozen=True, slots=True)
class DetectionRow:
    """Sensitivity and delay of one group of injected episodes."""

    group: str
    episodes: int
    detected: int
    median_delay_s: float | None
    p90_delay_s: float | None
    other_kind: int

    @property
    def sensitivity(self) -> float:
        """Share of episodes detected with the right kind."""
        return self.detected / self.episodes if self.episodes else float("nan")


def detection_row(group: str, outcomes: list[EpisodeOutcome]) -> DetectionRow:
    """Summarise ``outcomes`` (delays over the detected ones)."""
    delays = np.array([o.delay_s for o in outcomes if o.delay_s is not None])
    return DetectionRow(
        group=group,
        episodes=len(outcomes),
        detected=sum(o.detected for o in outcomes),
        median_delay_s=float(np.median(delays)) if len(delays) else None,
        p90_delay_s=float(np.percentile(delays, 90)) if len(delays) else None,
        other_kind=sum(o.other_kind for o in outcomes),
    )


def detection_table(result: EvaluationResult) -> list[DetectionRow]:
    """Rows per kind: overall, per source, per confounder value, per magnitude tercile."""
    rows: list[DetectionRow] = []
    by_kind: dict[str, list[EpisodeOutcome]] = defaultdict(list)
    for outcome in result.outcomes:
        by_kind[outcome.episode.kind.value].append(outcome)
    for kind, outcomes in sorted(by_kind.items()):
        rows.append(detection_row(f"{kind}: all", outcomes))
        groups: dict[str, list[EpisodeOutcome]] = defaultdict(list)
        for o in outcomes:
            source = SOURCE_LABELS.get(o.source, o.source)
            groups[f"{kind}: {source}"].append(o)
            for name, value in sorted(o.confounders.items()):
                groups[f"{kind}: {source}, {name} = {value}"].append(o)
            if o.episode.syncope_after_s is not None:
                groups[f"{kind}: {source}, with syncope stillness"].append(o)
            rise = o.episode.hr_rise_frac
            groups[f"{kind}: {source}, HR rise {_band(rise)}"].append(o)
        rows.extend(detection_row(g, groups[g]) for g in sorted(groups))
    return rows


def _band(rise: float) -> str:
    for low, high in ((0.0, 0.15), (0.15, 0.30), (0.30, 0.45), (0.45, 1.0)):
        if low <= rise < high:
            return f"{low:.0%}-{high:.0%}"
    return ">100%"


def false_alarm_table(result: EvaluationResult) -> list[dict[str, Any]]:
    """False onset alarms per source, kind and confounder, with the exposure behind them."""
    fitbit_days = sum(result.exposure_days.values())
    sessions = len(result.sessions)
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], int] = defaultdict(int)
    contexts: dict[str, str] = {}
    for fa in result.false_alarms:
        groups[(fa.source, f"{fa.alarm.kind.value}")] += 1
        for name, value in sorted(fa.confounders.items()):
            group = f"{fa.alarm.kind.value}, {name} = {value}"
            groups[(fa.source, group)] += 1
            contexts[group] = f"{name} = {value}"
    for source, exposure, unit in (
        (result.day_source, fitbit_days, "patient-days"),
        ("stress_predict", float(sessions), "sessions"),
    ):
        total = sum(1 for fa in result.false_alarms if fa.source == source)
        if not exposure and not total:
            continue  # a source this evaluation did not use
        rows.append(_fa_row(source, "all kinds", total, exposure, unit))
        for (src, group), count in sorted(groups.items()):
            if src == source:
                # a free-living context is divided by the days spent in it
                days = result.context_days.get(contexts.get(group, ""), exposure)
                free_living = src == result.day_source
                rows.append(_fa_row(source, group, count, days if free_living else exposure, unit))
    return rows


def _fa_row(source: str, group: str, count: int, exposure: float, unit: str) -> dict[str, Any]:
    return {
        "source": SOURCE_LABELS.get(source, source),
        "group": group,
        "false_alarms": count,
        "exposure": round(exposure, 2),
        "unit": unit,
        "per_unit": round(count / exposure, 3) if exposure else None,
    }


@dataclass(frozen=True, slots=True)
class SignalRow:
    """How often one source's bands went silent or off the wrist, and for how long."""

    source: str
    kind: str
    count: int
    long: int
    """Lasting EVAL_SIGNAL_LONG_S or more (would reach caregivers if the wearer did not answer)."""
    median_duration_s: float | None
    exposure: float
    unit: str

    def per_unit(self, count: int) -> float | None:
        """``count`` per unit of exposure (per patient-day, per session)."""
        return count / self.exposure if self.exposure else None


def signal_table(result: EvaluationResult) -> list[SignalRow]:
    """Signal-state alarms on the untouched recordings per source and kind."""
    exposure = {
        result.day_source: (sum(result.exposure_days.values()), "patient-days"),
        "stress_predict": (float(len(result.sessions)), "sessions"),
    }
    rows = []
    for (source, kind), group in sorted(_group_losses(result).items()):
        durations = [loss.duration_s for loss in group]
        rows.append(
            SignalRow(
                source=source,
                kind=kind,
                count=len(group),
                long=sum(1 for d in durations if d >= EVAL_SIGNAL_LONG_S),
                median_duration_s=float(np.median(durations)),
                exposure=exposure[source][0],
                unit=exposure[source][1],
            )
        )
    return rows


def _group_losses(result: EvaluationResult) -> dict[tuple[str, str], list[Any]]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for loss in result.signal_losses:
        groups[(loss.source, loss.kind.value)].append(loss)
    return groups


def signal_markdown(result: EvaluationResult) -> str:
    """The signal-state table of the Markdown report."""
    lines = [
        "### Signal states on the untouched recordings",
        "",
        "True alarms, not false ones, but each is a message: the wearer hears of it at once, "
        f"caregivers of those lasting {EVAL_SIGNAL_LONG_S / 60:.0f} min or more if the wearer "
        "does not answer (docs/alerts.md).",
        "",
        f"| source | kind | alarms | per unit | median length (min) "
        f"| lasting ≥ {EVAL_SIGNAL_LONG_S / 60:.0f} min | per unit |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in signal_table(result):
        per, per_long = row.per_unit(row.count), row.per_unit(row.long)
        lines.append(
            f"| {SOURCE_LABELS.get(row.source, row.source)} | {row.kind} | {row.count} | "
            f"{'-' if per is None else f'{per:.2f}'} / {row.unit.removesuffix('s')} | "
            f"{_minutes(row.median_duration_s)} | {row.long} | "
            f"{'-' if per_long is None else f'{per_long:.2f}'} |"
        )
    if len(lines) == 6:
        lines.append("| - | none | 0 | - | - | 0 | - |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class WearerRow:
    """Detection and false alarms of one wearer (a Fitbit user or a stress-predict session)."""

    source: str
    subject: str
    anaphylaxis: DetectionRow
    flush: DetectionRow
    false_alarms: int
    exposure: float
    unit: str

    @property
    def per_unit(self) -> float | None:
        """False alarms per patient-day (Fitbit) or per session (stress-predict)."""
        return self.false_alarms / self.exposure if self.exposure else None


def wearer_table(result: EvaluationResult) -> list[WearerRow]:
    """One row per wearer: figures pooled over wearers can hide one who makes most alarms."""
    outcomes: dict[tuple[str, str], list[EpisodeOutcome]] = defaultdict(list)
    for outcome in result.outcomes:
        outcomes[(outcome.source, outcome.subject)].append(outcome)
    alarms: dict[tuple[str, str], int] = defaultdict(int)
    for fa in result.false_alarms:
        alarms[(fa.source, fa.subject)] += 1
    wearers = {(result.day_source, s) for s in result.exposure_days} | {
        ("stress_predict", s) for s in result.sessions
    }
    rows = []
    for source, subject in sorted(wearers | set(outcomes)):
        mine = outcomes[(source, subject)]
        fitbit = source == result.day_source
        rows.append(
            WearerRow(
                source=SOURCE_LABELS.get(source, source),
                subject=subject,
                anaphylaxis=detection_row(
                    "anaphylaxis", [o for o in mine if o.episode.kind.value == "anaphylaxis"]
                ),
                flush=detection_row("flush", [o for o in mine if o.episode.kind.value == "flush"]),
                false_alarms=alarms[(source, subject)],
                exposure=result.exposure_days.get(subject, 0.0) if fitbit else 1.0,
                unit="patient-days" if fitbit else "sessions",
            )
        )
    return rows


def wearer_records(result: EvaluationResult) -> list[dict[str, Any]]:
    """The per-wearer table as JSON-able records (for the evaluation's JSON output)."""
    records = []
    for row in wearer_table(result):
        record: dict[str, Any] = {"source": row.source, "subject": row.subject}
        for kind in (row.anaphylaxis, row.flush):
            record[kind.group] = {
                "episodes": kind.episodes,
                "detected": kind.detected,
                "median_delay_min": _delay_min(kind.median_delay_s),
            }
        record["false_alarms"] = row.false_alarms
        record["exposure"] = round(row.exposure, 2)
        record["unit"] = row.unit
        records.append(record)
    return records


def _detected(row: DetectionRow) -> str:
    if not row.episodes:
        return "-"
    return f"{row.detected}/{row.episodes} ({row.sensitivity:.2f}), {_minutes(row.median_delay_s)}"


def md_cell(text: str) -> str:
    """``text`` fit for a Markdown table cell.

    A ``|`` (legal in a file name, so in a wearer's name) ended the cell, a line break the row.
    """
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def wearer_markdown(result: EvaluationResult, title: str = "### Per wearer") -> str:
    """The per-wearer table as Markdown."""
    lines = [
        title,
        "",
        "Detected/episodes (sensitivity), median delay in minutes; false alarms on the untouched"
        " recording.",
        "",
        "| source | wearer | anaphylaxis-like | flush | false alarms | exposure | per unit |",
        "| --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for row in wearer_table(result):
        per_unit = "-" if row.per_unit is None else f"{row.per_unit:.3f}"
        lines.append(
            f"| {row.source} | {md_cell(row.subject)} | {_detected(row.anaphylaxis)} | "
            f"{_detected(row.flush)} | {row.false_alarms} | {row.exposure:.2f} {row.unit} | "
            f"{per_unit} |"
        )
    return "\n".join(lines) + "\n"


def _delay_min(seconds: float | None) -> float | None:
    """A delay in minutes for the JSON reports (2 decimals), None when nothing was detected."""
    return None if seconds is None else round(seconds / 60, 2)


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def detection_markdown(rows: list[DetectionRow], title: str) -> str:
    """Detection rows as a Markdown table under ``title`` (a kind without episodes shows -)."""
    lines = [title, ""]
    lines.append(
        "| group | episodes | sensitivity | median delay (min) | p90 delay (min) | other kind |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        sensitivity = f"{row.sensitivity:.3f}" if row.episodes else "-"
        lines.append(
            f"| {row.group} | {row.episodes} | {sensitivity} | "
            f"{_minutes(row.median_delay_s)} | {_minutes(row.p90_delay_s)} | {row.other_kind} |"
        )
    return "\n".join(lines) + "\n"


def false_alarm_markdown(result: EvaluationResult, title: str) -> str:
    """The false-alarm table (per source, kind and context) as Markdown under ``title``."""
    lines = [title, ""]
    lines.append("| source | group | false alarms | exposure | per unit |")
    lines.append("| --- | --- | ---: | ---: | ---: |")
    for fa in false_alarm_table(result):
        lines.append(
            f"| {fa['source']} | {fa['group']} | {fa['false_alarms']} | "
            f"{fa['exposure']} {fa['unit']} | {fa['per_unit']} |"
        )
    return "\n".join(lines) + "\n"


def markdown_report(result: EvaluationResult, header: str) -> str:
    """The evaluation table as Markdown (what docs/evaluation.md quotes)."""
    report = (
        header
        + "\n\n"
        + detection_markdown(detection_table(result), "### Detection of injected episodes")
        + "\n"
        + false_alarm_markdown(result, "### False alarms on the untouched recordings")
        + "\n"
        + signal_markdown(result)
    )
    return report + "\n" + wearer_markdown(result)


def detection_record(row: DetectionRow) -> dict[str, Any]:
    """One group's detection figures for the JSON reports (sensitivity None without episodes)."""
    return {
        "episodes": row.episodes,
        "sensitivity": round(row.sensitivity, 4) if row.episodes else None,
        "median_delay_min": _delay_min(row.median_delay_s),
        "p90_delay_min": _delay_min(row.p90_delay_s),
    }


def signal_records(result: EvaluationResult) -> list[dict[str, Any]]:
    """The signal-state table as JSON-able records."""
    return [
        {
            "source": row.source,
            "kind": row.kind,
            "alarms": row.count,
            f"lasting_{EVAL_SIGNAL_LONG_S / 60:.0f}_min": row.long,
            "exposure": round(row.exposure, 2),
            "unit": row.unit,
        }
        for row in signal_table(result)
    ]


def summary(result: EvaluationResult) -> dict[str, Any]:
    """Headline figures (the acceptance criteria of issue 4) as a JSON-able dict."""
    table = {row.group: row for row in detection_table(result)}
    out: dict[str, Any] = {}
    for kind in ("flush", "anaphylaxis"):
        row = table.get(f"{kind}: all")
        if row is not None:
            out[kind] = detection_record(row)
    fitbit_days = sum(result.exposure_days.values())
    fitbit_fa = sum(1 for fa in result.false_alarms if fa.source == "fitbit")
    stress_fa = sum(1 for fa in result.false_alarms if fa.source == "stress_predict")
    out["fitbit"] = {
        "patient_days": round(fitbit_days, 2),
        "false_alarms": fitbit_fa,
        "per_patient_day": round(fitbit_fa / fitbit_days, 3) if fitbit_days else None,
    }
    out["stress_predict"] = {"sessions": len(result.sessions), "false_alarms": stress_fa}
    out["signal_states"] = signal_records(result)
    return out
