"""The report of ``flarewatch evaluate --recordings``: Markdown, JSON and PNGs, as the harness's.

Real labelled episodes and injected ones are reported apart: only the real ones say how the
detectors do on real reactions; the injected ones say how they do on the documented physiology
laid over these wearers' own signals. The tables and plots are the harness's own
(:mod:`models.metrics`, :mod:`models.report`); the real figures add 95 % intervals for small
counts (:mod:`models.own_intervals`), one line per labelled episode, and a PNG of each one's
signals and alarms, named after its line in the episodes file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from flarewatch.output_files import writing
from models.episodes_file import ONSET_ALARM
from models.evaluation import EpisodeOutcome, EvaluationResult, Progress
from models.metrics import (
    SOURCE_LABELS,
    DetectionRow,
    detection_markdown,
    detection_record,
    detection_row,
    detection_table,
    false_alarm_markdown,
    false_alarm_table,
    md_cell,
    signal_markdown,
    signal_records,
    wearer_markdown,
    wearer_records,
)
from models.own_evaluation import LabelledOutcome, OwnEvaluation, Wearer
from models.own_intervals import poisson_rate_interval, wilson_interval
from models.own_recordings import EPISODE_KINDS, LabelledEpisode
from models.report import plot_delays, plot_examples, plot_wearers

PLOTS: Final = ("examples", "delays", "wearers")
"""The report's pictures, each once for the real and once for the injected episodes."""

EPISODE_IMAGES: Final = "real-episodes"
"""Folder (under ``img/``, after the report's stem) of the PNG of every labelled episode."""


def kind_rows(result: EvaluationResult, label: str) -> dict[str, DetectionRow]:
    """One detection row per episode kind, also for a kind without episodes."""
    return {
        kind.value: detection_row(
            f"{kind.value}: {label}", [o for o in result.outcomes if o.episode.kind is kind]
        )
        for kind in EPISODE_KINDS
    }


def onset_rows(result: EvaluationResult, label: str) -> list[DetectionRow]:
    """Per kind, one row per source of the labelled onsets, where the episodes file says it.

    A delay means something only from a first sign or a reaction added by hand.
    """
    groups: dict[str, list[EpisodeOutcome]] = {}
    for o in result.outcomes:
        if "onset" in o.confounders:
            name = f"{o.episode.kind.value}: {label}, onset = {o.confounders['onset']}"
            groups.setdefault(name, []).append(o)
    return [detection_row(name, outcomes) for name, outcomes in sorted(groups.items())]


def _kind_records(result: EvaluationResult, label: str) -> dict[str, dict[str, Any]]:
    return {kind: detection_record(row) for kind, row in kind_rows(result, label).items()}


def _rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 3), round(interval[1], 3)]


def _real_kind_records(result: EvaluationResult) -> dict[str, dict[str, Any]]:
    """Per kind: the harness's figures, the episodes found and the 95 % interval."""
    return {
        kind: {
            **detection_record(row),
            "detected": row.detected,
            "other_kind": row.other_kind,
            "sensitivity_ci95": _rounded(wilson_interval(row.detected, row.episodes)),
        }
        for kind, row in kind_rows(result, "real").items()
    }


def episode_image(stem: str, labelled: LabelledEpisode) -> str:
    """Where the PNG of one labelled episode goes, relative to the report (by its line)."""
    return f"img/{stem}-{EPISODE_IMAGES}/line-{labelled.line}.png"


def _iso(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).isoformat(timespec="seconds")


def episode_records(episodes: list[LabelledOutcome], stem: str) -> list[dict[str, Any]]:
    """One record per labelled episode: where it is written, what the detectors made of it."""
    return [
        {
            "line": e.labelled.line,
            "subject": e.labelled.subject,
            "kind": e.labelled.kind.value,
            "onset_s": e.labelled.onset_s,
            "onset_utc": _iso(e.labelled.onset_s),
            "end_s": e.labelled.end_s,
            "detected": e.outcome.detected,
            "delay_min": None if e.outcome.delay_s is None else round(e.outcome.delay_s / 60, 2),
            "onset_from": e.labelled.onset_from,
            "other_kind": e.outcome.other_kind,
            "severity": e.outcome.severity,
            "hr_readings": e.hr_readings,
            "image": None if e.example is None else episode_image(stem, e.labelled),
        }
        for e in episodes
    ]


def recording_records(wearers: list[Wearer]) -> list[dict[str, Any]]:
    """Per wearer: the file, its rows and what reading it dropped (counts, never values)."""
    return [
        {
            "subject": w.subject,
            "file": w.path.name,
            "rows": w.quality.rows,
            "dropped_rows": w.quality.dropped_rows,
            "dropped_cells": w.quality.dropped_cells,
            "merged_rows": w.quality.merged_rows,
            "days": round(w.days, 3),
        }
        for w in wearers
    ]


def report_json(
    evaluation: OwnEvaluation,
    wearers: list[Wearer],
    meta: dict[str, Any],
    stem: str,
) -> dict[str, Any]:
    """The JSON report: run settings, recordings, real and injected figures, per wearer."""
    real = evaluation.real
    days = sum(real.exposure_days.values())
    counts = {
        row["group"]: int(row["false_alarms"])
        for row in false_alarm_table(real)
        if row["source"] == SOURCE_LABELS[real.day_source]
    }

    def rate(count: int) -> dict[str, Any]:
        return {
            "false_alarms": count,
            "per_patient_day": round(count / days, 3) if days else None,
            "per_patient_day_ci95": _rounded(poisson_rate_interval(count, days)),
        }

    out: dict[str, Any] = {**meta, "recordings": recording_records(wearers)}
    out["real"] = {
        **_real_kind_records(real),
        "false_alarms": {
            "patient_days": round(days, 3),
            **rate(counts.get("all kinds", 0)),
            "by_kind": {kind.value: rate(counts.get(kind.value, 0)) for kind in EPISODE_KINDS},
        },
        "signal_states": signal_records(real),
        "wearers": wearer_records(real),
        "episodes": episode_records(evaluation.episodes, stem),
    }
    injected = evaluation.injected
    out["injected"] = (
        None
        if injected is None
        else {
            **_kind_records(injected, "injected"),
            "wearers": wearer_records(injected),
        }
    )
    return out


def intervals_markdown(report: dict[str, Any]) -> str:
    """The real figures with their 95 % intervals, and what those intervals assume."""
    lines = [
        "### 95 % intervals of the real figures",
        "",
        "Sensitivity: Wilson's interval over the labelled episodes; false alarms: the exact "
        "Poisson interval over the patient-days. Both take episodes and alarms as independent; "
        "those of one wearer are not, so with most of them from a few wearers the real "
        "uncertainty is wider (see the per-wearer table).",
        "",
        "| figure | count | value | 95 % interval |",
        "| --- | ---: | ---: | --- |",
    ]
    real = report["real"]
    for kind in EPISODE_KINDS:
        record = real[kind.value]
        lines.append(
            f"| {kind.value} sensitivity | {record['detected']}/{record['episodes']} | "
            f"{_number(record['sensitivity'])} | {_between(record['sensitivity_ci95'])} |"
        )
    alarms = real["false_alarms"]
    for label, record in (("all kinds", alarms), *alarms["by_kind"].items()):
        lines.append(
            f"| false alarms per patient-day, {label} | {record['false_alarms']} in "
            f"{alarms['patient_days']:.2f} days | {_number(record['per_patient_day'])} | "
            f"{_between(record['per_patient_day_ci95'])} |"
        )
    return "\n".join(lines) + "\n"


def episodes_markdown(records: list[dict[str, Any]]) -> str:
    """One line per labelled episode, by its line in the episodes file."""
    lines = [
        "### Each labelled episode",
        "",
        "Found: an onset alarm of its kind from its onset until 5 min after its end; delay from "
        'the labelled onset; "no heart rate" where the band recorded none in that time (the '
        "detectors could not have found it). The picture shows the signals and every alarm.",
        "",
        "| line | wearer | kind | onset (UTC) | found | delay (min) | note | picture |",
        "| ---: | --- | --- | --- | --- | ---: | --- | --- |",
    ]
    for r in sorted(records, key=lambda r: r["line"]):
        notes = [
            text
            for text, applies in (
                ("other kind raised", r["other_kind"]),
                ("no heart rate", r["hr_readings"] == 0),
                ("onset is the alarm's: no delay", r["onset_from"] == ONSET_ALARM),
            )
            if applies
        ]
        delay = "-" if r["delay_min"] is None else f"{r['delay_min']:.1f}"
        picture = "-" if r["image"] is None else f"[png]({r['image']})"
        lines.append(
            f"| {r['line']} | {md_cell(r['subject'])} | {r['kind']} | {r['onset_utc']} | "
            f"{'yes' if r['detected'] else 'no'} | {delay} | {', '.join(notes)} | {picture} |"
        )
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _between(interval: list[float] | None) -> str:
    return "-" if interval is None else f"{interval[0]:.3f} to {interval[1]:.3f}"


def report_markdown(
    evaluation: OwnEvaluation,
    report: dict[str, Any],
    episodes: list[LabelledEpisode],
    episodes_file: str | None,
    header: str,
) -> str:
    """The Markdown report (the sections of the harness's, real and injected apart)."""
    real, injected = evaluation.real, evaluation.injected
    days = sum(real.exposure_days.values())
    labelled = (
        f"{len(episodes)} labelled episodes from `{episodes_file}`"
        if episodes_file is not None
        else "no labelled episodes (every onset alarm counts as false)"
    )
    parts = [
        header,
        "",
        f"{len(real.exposure_days)} wearers, {days:.2f} patient-days covered by data outside "
        f"the labelled episodes; {labelled}.",
        "",
        detection_markdown(
            [*kind_rows(real, "real labelled").values(), *onset_rows(real, "real labelled")],
            "### Real labelled episodes",
        ),
        false_alarm_markdown(real, "### False alarms outside the labelled episodes"),
        intervals_markdown(report),
        signal_markdown(real),
        wearer_markdown(real, "### Per wearer, real labelled episodes"),
    ]
    if report["real"]["episodes"]:
        parts.append(episodes_markdown(report["real"]["episodes"]))
    if injected is None:
        parts.append("### Injected episodes\n\nNot run (`--no-inject`).\n")
    else:
        parts.append(
            detection_markdown(
                detection_table(injected),
                "### Injected episodes (into copies of your recordings)",
            )
        )
        parts.append(wearer_markdown(injected, "### Per wearer, injected episodes"))
    return "\n".join(parts)


def write_report(
    evaluation: OwnEvaluation,
    wearers: list[Wearer],
    episodes: list[LabelledEpisode],
    out: Path,
    stem: str,
    header: str,
    meta: dict[str, Any],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write ``stem``.md, ``stem``.json and the PNGs into ``out``; returns the JSON report.

    ``progress(1)`` is called after each labelled episode's picture (a study's hundreds take
    a minute or two).

    Raises ConfigError naming ``--out`` when a file cannot be written (a folder in its place,
    a full disk), not a traceback after the whole evaluation.
    """
    report = report_json(evaluation, wearers, meta, stem)
    text = report_markdown(evaluation, report, episodes, meta.get("episodes_file"), header)
    with writing("--out", out):
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}.md").write_text(text, encoding="utf-8")
        (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        images = out / "img"
        for result, suffix in ((evaluation.real, "-real"), (evaluation.injected, "")):
            for plot in PLOTS:
                # an earlier run's picture that this run does not draw would pass for this one's
                (images / f"{stem}{suffix}-{plot}.png").unlink(missing_ok=True)
            if result is None:
                continue
            plot_examples(result, images / f"{stem}{suffix}-examples.png")
            if any(o.delay_s for o in result.outcomes):  # an empty histogram has no legend
                plot_delays(result, images / f"{stem}{suffix}-delays.png")
            plot_wearers(result, images / f"{stem}{suffix}-wearers.png")
        _plot_episodes(evaluation.episodes, out, stem, progress)
    return report


def _plot_episodes(
    episodes: list[LabelledOutcome], out: Path, stem: str, progress: Progress | None
) -> None:
    """A PNG of every labelled episode; those of an earlier run in the folder go first."""
    folder = out / f"img/{stem}-{EPISODE_IMAGES}"
    for old in folder.glob("line-*.png") if folder.is_dir() else ():
        old.unlink()  # an earlier episodes file's lines would be taken for this one's
    for e in episodes:
        if e.example is not None:
            plot_examples(
                EvaluationResult(examples=[e.example]), out / episode_image(stem, e.labelled)
            )
        if progress is not None:
            progress(1)
