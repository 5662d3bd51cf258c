"""The report of ``flarewatch evaluate --recordings``: Markdown, JSON and PNGs, as the harness's.

Real labelled episodes and injected ones are reported apart: only the real ones say how the
detectors do on real reactions; the injected ones say how they do on the documented physiology
laid over these wearers' own signals. The tables and plots are the harness's own
(:mod:`models.metrics`, :mod:`models.report`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.evaluation import EvaluationResult
from models.metrics import (
    SOURCE_LABELS,
    DetectionRow,
    detection_markdown,
    detection_record,
    detection_row,
    detection_table,
    false_alarm_markdown,
    false_alarm_table,
    signal_markdown,
    signal_records,
    wearer_markdown,
    wearer_records,
)
from models.own_evaluation import OwnEvaluation
from models.own_recordings import EPISODE_KINDS, LabelledEpisode, OwnRecording
from models.report import plot_delays, plot_examples, plot_wearers


def kind_rows(result: EvaluationResult, label: str) -> dict[str, DetectionRow]:
    """One detection row per episode kind, also for a kind without episodes."""
    return {
        kind.value: detection_row(
            f"{kind.value}: {label}", [o for o in result.outcomes if o.episode.kind is kind]
        )
        for kind in EPISODE_KINDS
    }


def _kind_records(result: EvaluationResult, label: str) -> dict[str, dict[str, Any]]:
    return {kind: detection_record(row) for kind, row in kind_rows(result, label).items()}


def recording_records(recordings: list[OwnRecording]) -> list[dict[str, Any]]:
    """Per wearer: the file, its rows and what reading it dropped (counts, never values)."""
    return [
        {
            "subject": own.subject,
            "file": own.path.name,
            "rows": own.quality.rows,
            "dropped_rows": own.quality.dropped_rows,
            "dropped_cells": own.quality.dropped_cells,
            "merged_rows": own.quality.merged_rows,
            "days": round(own.recording.days, 3),
        }
        for own in recordings
    ]


def report_json(
    evaluation: OwnEvaluation,
    recordings: list[OwnRecording],
    meta: dict[str, Any],
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
        return {"false_alarms": count, "per_patient_day": round(count / days, 3) if days else None}

    out: dict[str, Any] = {**meta, "recordings": recording_records(recordings)}
    out["real"] = {
        **_kind_records(real, "real"),
        "false_alarms": {
            "patient_days": round(days, 3),
            **rate(counts.get("all kinds", 0)),
            "by_kind": {kind.value: rate(counts.get(kind.value, 0)) for kind in EPISODE_KINDS},
        },
        "signal_states": signal_records(real),
        "wearers": wearer_records(real),
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


def report_markdown(
    evaluation: OwnEvaluation,
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
            list(kind_rows(real, "real labelled").values()), "### Real labelled episodes"
        ),
        false_alarm_markdown(real, "### False alarms outside the labelled episodes"),
        signal_markdown(real),
        wearer_markdown(real, "### Per wearer, real labelled episodes"),
    ]
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
    recordings: list[OwnRecording],
    episodes: list[LabelledEpisode],
    out: Path,
    stem: str,
    header: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Write ``stem``.md, ``stem``.json and the PNGs into ``out``; returns the JSON report."""
    report = report_json(evaluation, recordings, meta)
    text = report_markdown(evaluation, episodes, meta.get("episodes_file"), header)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(text, encoding="utf-8")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    images = out / "img"
    for result, suffix in ((evaluation.real, "-real"), (evaluation.injected, "")):
        if result is None:
            continue
        plot_examples(result, images / f"{stem}{suffix}-examples.png")
        if any(o.delay_s for o in result.outcomes):  # an empty histogram has no legend
            plot_delays(result, images / f"{stem}{suffix}-delays.png")
        plot_wearers(result, images / f"{stem}{suffix}-wearers.png")
    return report
