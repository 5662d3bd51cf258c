"""Fitting the confirmer on labelled candidate alarms from the tuning split, and its model card."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.alarm import Alarm, AlarmKind
from models.confirm import FEATURES, Confirmer, feature_matrix, from_recovery_path
from models.const import (
    CONFIRM_CV_FOLDS,
    CONFIRM_KEEP_POSITIVE_SHARE,
    CONFIRM_MIN_PER_CLASS,
    CONFIRM_REAL_LABEL_WEIGHT,
    CONFIRM_THRESHOLD,
    MODEL_VERSION,
)


def train_confirmer(
    candidates: Sequence[tuple[Alarm, int]],
    seed: int,
    version: str,
    real: Sequence[tuple[Alarm, int]] = (),
) -> tuple[Confirmer, dict[str, Any]]:
    """Fit one logistic regression per kind; the threshold keeps nearly every true episode.

    ``candidates`` come from the injected episodes of the tuning split; ``real`` are onsets of
    real episodes labelled by a care team (:mod:`models.labels`). Each real one weighs
    CONFIRM_REAL_LABEL_WEIGHT, and the threshold also keeps the promised share of the real
    reactions, scored out of fold: a confirmer must not learn to veto what was really one.
    """
    candidates = [(a, label) for a, label in candidates if not from_recovery_path(a)]
    real = [(a, label) for a, label in real if not from_recovery_path(a)]
    models: dict[str, Any] = {}
    bounds: dict[str, tuple[list[float], list[float]]] = {}
    stats: dict[str, Any] = {}
    thresholds = [CONFIRM_THRESHOLD]
    everything = [*candidates, *real]
    is_real = np.array([False] * len(candidates) + [True] * len(real))
    for kind in (AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS):
        mine = np.array([a.kind is kind for a, _ in everything], dtype=bool)
        rows = [(a.evidence, label) for a, label in everything if a.kind is kind]
        labels = np.array([label for _, label in rows], dtype=int)
        real_rows = is_real[mine] if len(everything) else np.zeros(0, dtype=bool)
        positives, negatives = int(labels.sum()), int(len(labels) - labels.sum())
        stats[kind.value] = {
            "positives": positives,
            "negatives": negatives,
            "real_positives": int(labels[real_rows].sum()),
            "real_negatives": int((1 - labels[real_rows]).sum()),
        }
        groups = np.array(subjects(everything, kind))
        wearers = len(set(groups.tolist()))
        if positives < CONFIRM_MIN_PER_CLASS or negatives < CONFIRM_MIN_PER_CLASS or wearers < 2:
            continue  # too little to fit, or no second wearer to validate the threshold on
        x = feature_matrix([evidence for evidence, _ in rows])
        model = make_pipeline(
            StandardScaler(),
            LogisticRegression(class_weight="balanced", C=1.0, max_iter=1000, random_state=seed),
        )
        # the threshold comes from out-of-fold probabilities, each subject scored by a model fitted
        # without it: in-sample probabilities are optimistic for the positives
        folds = GroupKFold(n_splits=min(CONFIRM_CV_FOLDS, wearers))
        weight = {
            "logisticregression__sample_weight": np.where(real_rows, CONFIRM_REAL_LABEL_WEIGHT, 1.0)
        }
        proba = cross_val_predict(
            model, x, labels, groups=groups, cv=folds, method="predict_proba", params=weight
        )[:, 1]
        keep = float(np.quantile(proba[labels == 1], 1.0 - CONFIRM_KEEP_POSITIVE_SHARE))
        real_reactions = proba[(labels == 1) & real_rows]
        if len(real_reactions):
            share = 1.0 - CONFIRM_KEEP_POSITIVE_SHARE
            keep = min(keep, float(np.quantile(real_reactions, share)))
        model.fit(x, labels, **weight)
        bounds[kind.value] = (
            x[labels == 1].min(axis=0).tolist(),
            x[labels == 1].max(axis=0).tolist(),
        )
        thresholds.append(keep)
        models[kind.value] = model
        stats[kind.value]["coefficients"] = dict(
            zip(FEATURES, np.round(model[-1].coef_[0], 3).tolist(), strict=True)
        )
    threshold = float(min(thresholds))
    confirmer = Confirmer(models, version, threshold, bounds)
    for kind_stats, kind in ((stats[k.value], k) for k in (AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS)):
        model = models.get(kind.value)
        if model is None:
            continue
        kinds = [(a, label) for a, label in candidates if a.kind is kind]
        labels = np.array([label for _, label in kinds], dtype=int)
        kept = np.array(confirmer.probabilities([a for a, _ in kinds])) >= threshold
        kind_stats["tuning_kept_positive"] = round(float(kept[labels == 1].mean()), 4)
        kind_stats["tuning_kept_negative"] = round(float(kept[labels == 0].mean()), 4)
        for name, label in (("real_kept_positive", 1), ("real_kept_negative", 0)):
            alarms = [a for a, y in real if a.kind is kind and y == label]
            if alarms:
                accepted = confirmer.accept(alarms)
                kind_stats[name] = round(sum(accepted) / len(accepted), 4)
    return confirmer, {"threshold": threshold, "kinds": stats}


def subjects(candidates: Sequence[tuple[Alarm, int]], kind: AlarmKind) -> list[str]:
    """The wearer (recording) of each candidate of ``kind``, in order: the CV groups."""
    return [a.patient_id for a, _ in candidates if a.kind is kind]


def write_model_card(
    path: Path, version: str, training: dict[str, Any], evaluation_summary: dict[str, Any] | None
) -> None:
    """Markdown model card next to the artifact: data, method, metrics, limits."""
    lines = [
        f"# Model card: flarewatch detectors {MODEL_VERSION} + confirmer {version}",
        "",
        "## What it is",
        "Per-patient streaming rules (robust personal baselines, hysteresis; `models/detector.py`)",
        "propose flush and anaphylaxis-like onsets; a logistic regression per kind",
        "(`confirmer.skops`, loaded with skops, no pickle) confirms them in batches.",
        "",
        "## Training data",
        "Tuning half of the subjects only (stress-predict odd-numbered sessions S01, S03, ...;",
        "Fitbit users 1st, 3rd, 5th, 7th by name). Positives: onsets matched to episodes injected",
        "into those recordings (`models/injection.py`, cited magnitudes); negatives: onsets on the",
        "same recordings untouched.",
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
    sources = training.get("real_labels")
    if sources:
        lines += ["", "## Real labelled episodes", ""]
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
    if evaluation_summary is not None:
        lines += ["", "## Held-out metrics", "", "```json", _json(evaluation_summary), "```"]
    lines += [
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
        "  research replay and tuning, not as a safety alarm. The metrics above are for the",
        "  `balanced` detection profile; docs/models.md gives `sensitive`, `personal` (surge",
        "  evidence calibrated per patient) and `quiet`.",
        "- The confirmer is fitted on `balanced` onsets and reads the surge evidence relative to",
        "  the level each onset needed; at its threshold it rejected none of the tuning false",
        "  alarms, so on held-out subjects every profile alarms as its rules alone.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _source_line(source: dict[str, Any]) -> str:
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


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2)
