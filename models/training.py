"""Fitting the confirmer on labelled candidate alarms from the tuning split (card: model_card)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.alarm import Alarm, AlarmKind
from models.artifact_identity import versioned
from models.confirm import FEATURES, Confirmer, feature_matrix, from_recovery_path
from models.const import (
    CONFIRM_CV_FOLDS,
    CONFIRM_KEEP_POSITIVE_SHARE,
    CONFIRM_MIN_PER_CLASS,
    CONFIRM_REAL_LABEL_WEIGHT,
    CONFIRM_THRESHOLD,
)


def train_confirmer(
    candidates: Sequence[tuple[Alarm, int]],
    seed: int,
    version: str,
    real: Sequence[tuple[Alarm, int]] = (),
) -> tuple[Confirmer, dict[str, Any]]:
    """Fit one logistic regression per kind; the threshold keeps nearly every true episode.

    The confirmer's version is ``version`` and the start of its content digest
    (:func:`models.artifact_identity.versioned`): the same inputs give the same model under the
    same name, other inputs another name.

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
    # the alarms carry the version: two models, even of one seed, must not share it
    confirmer.version = versioned(version, confirmer)
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
