"""The model card beside a trained confirmer: what it learnt from, what was measured, its limits.

A researcher judges from it whether the figures mean anything for their patients, so it says
what this training did and nothing it did not: the recordings and labels it learnt from (with the
data sets' citations and licences), the seed and software that reproduce it, the version its
alarms carry, and on which split, profile and sensors the metrics were measured (the tuning split
is the one it was fitted on: not held out). It is written whole or not at all, owner-only like the
artifact, as soon as the artifact is saved and again once the evaluation has measured it, so a
run that fails in between leaves a card that describes the model beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flarewatch.output_files import replacing
from models.const import CONFIRM_REAL_LABEL_WEIGHT, MODEL_VERSION
from models.evaluation import EvaluationResult

MODEL_CARD_FILE = "MODEL_CARD.md"

_SPLITS = {
    "holdout": "the subjects it was not trained on",
    "tuning": "the subjects it was trained on: not held out, so optimistic",
    "all": "every subject, those it was trained on included: not held out",
}

_DATA_SETS = (
    "- Stress-Predict: Iqbal T., Simpkin A. J., Roshan D., et al. *Sensors* 22(21):8135, 2022;",
    "  35 adults, ~55 min each, Empatica E4 (MIT licence).",
    "- Fitbit heart rate and steps: Mishra T., Wang M., Metwally A. A., et al. *Nature Biomedical",
    "  Engineering* 4:1208-1220, 2020, as redistributed by AnomalyDetect; 8 people, 49-95 days",
    "  each (MIT licence).",
    "",
    "Citations, licences and columns: `data/recordings/README.md`.",
)


@dataclass(frozen=True, slots=True)
class Measured:
    """The metrics on the card and how ``flarewatch evaluate`` measured them."""

    summary: Mapping[str, Any]
    split: str
    profile: str
    rules_only: bool = False
    without: Sequence[str] = ()


def model_card_path(model: Path) -> Path:
    """Where the card of the artifact ``model`` goes."""
    return model.with_name(MODEL_CARD_FILE)


def training_data(
    tuning: EvaluationResult, seed: int, limits: Mapping[str, float | None], recordings: Path | None
) -> dict[str, Any]:
    """What the confirmer learnt from, for its metadata and card (subjects of public data sets)."""
    return {
        "seed": seed,
        "stress_predict_sessions": sorted(tuning.sessions),
        "fitbit_users": len(tuning.exposure_days),
        "fitbit_patient_days": round(sum(tuning.exposure_days.values()), 2),
        "limits": {name: value for name, value in limits.items() if value is not None},
        "recordings": None if recordings is None else str(recordings),
    }


def write_model_card(
    path: Path, version: str, training: Mapping[str, Any], measured: Measured | None
) -> None:
    """Write the card of confirmer ``version`` and, once ``measured``, its metrics.

    ``training`` is what :func:`models.training.train_confirmer` returned, with ``data``
    (:func:`training_data`), ``software`` and ``digest`` added.
    """
    lines = [
        f"# Model card: flarewatch detectors {MODEL_VERSION} + confirmer {version}",
        "",
        f"Alarms it raises carry the model version `{MODEL_VERSION}+{version}`",
        "(followed by `@PROFILE` for a patient on another detection profile than `balanced`).",
        "",
        "## What it is",
        "Per-patient streaming rules (robust personal baselines, hysteresis; `models/detector.py`)",
        "propose flush and anaphylaxis-like onsets; a logistic regression per kind",
        "(`confirmer.skops`, loaded with skops, no pickle) confirms them in batches.",
        "",
        *_training_lines(training),
        *_real_label_lines(training),
        *_metric_lines(measured),
        *_limit_lines(training, measured),
    ]
    with replacing(path, "--model") as out:
        out.write("\n".join(lines))


def _training_lines(training: Mapping[str, Any]) -> list[str]:
    data = training.get("data", {})
    sessions = data.get("stress_predict_sessions", [])
    lines = [
        "## Training data",
        f"Tuning half of the subjects only: {len(sessions)} stress-predict sessions",
        f"({', '.join(sessions) or 'none'})",
        f"and {data.get('fitbit_users', 0)} Fitbit users ({data.get('fitbit_patient_days', 0)}"
        " patient-days).",
        "Positives: onsets matched to",
        "episodes injected into those recordings (`models/injection.py`, cited magnitudes);",
        "negatives: onsets on the same recordings untouched.",
    ]
    flags = _limit_flags(data.get("limits", {}))
    if flags:
        lines += [
            f"A quick run (`{flags}`): fewer recordings than the tuning half,",
            "so not the released recipe, and its figures do not compare with the released ones.",
        ]
    recordings = data.get("recordings")
    if recordings:
        lines.append(f"Recordings read from `{recordings}` (`--data`), not the bundled ones below.")
    software = training.get("software", {})
    lines += [
        "",
        "The bundled recordings come from two public data sets:",
        "",
        *_DATA_SETS,
        "",
        "## Reproducing it",
        f"Trained with seed {data.get('seed')}, "
        + ", ".join(f"{name} {v}" for name, v in software.items())
        + ":",
        f"`flarewatch evaluate --train --seed {data.get('seed')}"
        + (f" {flags}" if flags else "")
        + (f" --data {recordings}" if recordings else "")
        + (" --labels ..." if training.get("real_labels") else "")
        + " --model PATH`",
        f"with rules {MODEL_VERSION} gives the same model under the same",
        f"version (content digest `{training.get('digest', '-')}`).",
        "",
        f"Threshold: {training['threshold']:.4f}",
        "",
        "| kind | positives | negatives | kept positives (tuning) | kept negatives (tuning) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, stats in training["kinds"].items():
        lines.append(
            f"| {kind} | {stats['positives']} | {stats['negatives']} | "
            f"{stats.get('tuning_kept_positive', '-')} | {stats.get('tuning_kept_negative', '-')} |"
        )
    return lines


def _limit_flags(limits: Mapping[str, float | None]) -> str:
    """The command-line flags of the evaluation's limits (``--max-sessions 2 ...``)."""
    return " ".join(
        f"--{name.replace('_', '-')} {value:g}"
        for name, value in limits.items()
        if value is not None
    )


def _real_label_lines(training: Mapping[str, Any]) -> list[str]:
    sources = training.get("real_labels")
    if not sources:
        return []
    lines = ["", "## Real labelled episodes", ""]
    lines += [f"* {_source_line(source)}" for source in sources]
    lines += [
        "",
        f"Each real onset weighs {CONFIRM_REAL_LABEL_WEIGHT:g} injected ones.",
        "",
        "| kind | real reactions | real false alarms | reactions kept | false alarms kept |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, stats in training["kinds"].items():
        kept = (stats.get("real_kept_positive", "-"), stats.get("real_kept_negative", "-"))
        lines.append(
            f"| {kind} | {stats.get('real_positives', 0)} | {stats.get('real_negatives', 0)} "
            f"| {kept[0]} | {kept[1]} |"
        )
    return lines


def _metric_lines(measured: Measured | None) -> list[str]:
    if measured is None:
        return [
            "",
            "## Metrics",
            "",
            "Not measured: this card was written when the model was saved, before the evaluation",
            "that follows the training; one that still says so is of a run that did not finish.",
            "Measure it with `flarewatch evaluate --model PATH` (held-out subjects).",
        ]
    how = [f"split `{measured.split}` ({_SPLITS.get(measured.split, measured.split)})"]
    how.append(f"profile `{measured.profile}`")
    if measured.without:
        how.append(f"band without {', '.join(measured.without)}")
    if measured.rules_only:
        how.append("the rules alone (`--rules-only`): not this confirmer's figures")
    return [
        "",
        "## Metrics",
        "",
        "`flarewatch evaluate` on " + ";\n".join(how) + ".",
        "",
        "```json",
        json.dumps(measured.summary, indent=2),
        "```",
    ]


def _limit_lines(training: Mapping[str, Any], measured: Measured | None) -> list[str]:
    profile = (
        ""
        if measured is None
        else f"\n  The metrics above are for the `{measured.profile}` detection profile;"
        " docs/models.md compares\n  `balanced`, `sensitive`, `personal` (surge evidence"
        " calibrated per patient) and `quiet`."
    )
    return [
        "",
        "## Limits",
        "- No real flush or anaphylaxis was ever recorded: positives are injected into real data;",
        "  the numbers measure detection of the documented physiology, not clinical validity.",
        "- Flush needs a skin-temperature sensor; with heart rate only it is not reported.",
        "- Anaphylaxis without tachycardia (beta-blockers, ~4 % bradycardic) is not detected;",
        "  onsets during exercise or in the first 15 min of wear are not detected by design;",
        "  after exercise only once the steps have stopped and the heart does not slow down.",
        "- 8 Fitbit users and 35 lab sessions: small, mostly young adults; not SM patients.",
        "- Surge alarms need an activity signal (steps or motion): a heart-rate-only band makes",
        "  ~16x the false alarms (2.97 per Fitbit patient-day held-out against 0.18; see",
        "  'What each sensor is worth' in docs/evaluation.md).",
        "- A band off the wrist is recognised from its contact bit or, since 1.7, from its skin",
        "  temperature (2 degC below its 30-s average within seconds; found in 4 of 4 removals",
        "  in the stress-predict sessions, never while worn). A band with neither that goes on",
        "  reporting a heart rate off the wrist is taken as worn.",
        "- The held-out figures miss most targets of issue 4 (docs/evaluation.md): usable for",
        "  research replay and tuning, not as a safety alarm." + profile,
        _confirmer_line(training),
        "",
    ]


def _confirmer_line(training: Mapping[str, Any]) -> str:
    """What the confirmer does at its threshold on the tuning onsets, as measured."""
    kinds = training["kinds"]
    kept = {
        kind: (stats["tuning_kept_positive"], stats["tuning_kept_negative"])
        for kind, stats in kinds.items()
        if "tuning_kept_negative" in stats
    }
    if not kept:
        return (
            "- The confirmer has no model (too few examples of each class, or a single wearer):"
            " the rules alone decide."
        )
    fitted = (
        "- The confirmer is fitted on `balanced` onsets and reads the surge evidence relative to\n"
        "  the level each onset needed; at its threshold it"
    )
    if all(negatives == 1.0 for _, negatives in kept.values()):
        line = (
            f"{fitted} rejected none of the tuning false\n"
            "  alarms, so on held-out subjects every profile alarms as its rules alone."
        )
    else:
        shares = "; ".join(
            f"{kind}: {positives:.1%} of the true onsets, {negatives:.1%} of the false ones"
            for kind, (positives, negatives) in kept.items()
        )
        line = f"{fitted} keeps, on the tuning split, {shares}."
    alone = [kind for kind in kinds if kind not in kept]
    if alone:
        line += (
            f"\n  No model for {', '.join(alone)} (too few examples of a class, or a single"
            " wearer): the rules alone decide those."
        )
    return line


def _source_line(source: Mapping[str, Any]) -> str:
    """What one ``--labels`` source gave, in words."""
    if source.get("source") == "research export":
        return (
            f"`{source['file']}` (`flarewatch admin research export`, replayed through these"
            f" rules): {source['used']} onsets used from {source['subjects']} subjects,"
            f" {source['reactions_listed']} reactions ({source['reactions_without_onset']} with"
            f" no onset of their kind: nothing to confirm) and {source['false_alarm_episodes']}"
            f" false alarms; {source['unreviewed_onsets_left_out']} onsets nobody reviewed and"
            f" {source['rejected_lines']} unusable lines left out."
        )
    return (
        f"`{source['file']}` (`flarewatch admin episode export-labels`): {source['used']} onsets"
        f" used ({source['other_rules_version']} raised by other rules versions and"
        f" {source['rejected']} malformed lines left out)."
    )
