"""Learned confirmation of candidate alarms: one scikit-learn classifier per episode kind.

The rules propose; the confirmer disposes. It sees the evidence the rules computed at onset
(rise over the references, trend, warming, time at rest, wear time, ...) and was trained on the
tuning split: injected episodes as positives, onsets on the real recordings as negatives.
Candidates are scored in one batch per call, across patients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.alarm import Alarm, AlarmKind
from models.const import CONFIRM_THRESHOLD

FEATURES: tuple[str, ...] = (
    "hr_rise_frac",
    "hr_tod_rise_frac",
    "hr_trend_bpm",
    "hr_ref_bpm",
    "temp_rise_c",
    "temp_slope_c_per_min",
    "has_temp",
    "has_motion",
    "rest_s",
    "worn_s",
    "surge_score",
    "still",
)
"""Evidence keys the confirmer reads, in column order."""


def feature_matrix(evidences: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Rows of :data:`FEATURES` from alarm evidence (missing keys read as 0)."""
    return np.array([[float(e.get(name, 0.0)) for name in FEATURES] for e in evidences])


class Confirmer:
    """Accepts or rejects onset alarms with a fitted classifier per kind (kinds without one pass).

    ``models`` maps an :class:`AlarmKind` value to a fitted scikit-learn classifier with
    ``predict_proba``; ``version`` names the artifact it was loaded from.
    """

    def __init__(
        self,
        models: Mapping[str, Any],
        version: str,
        threshold: float = CONFIRM_THRESHOLD,
    ) -> None:
        self.models = models
        self.version = version
        self.threshold = threshold

    def probabilities(self, candidates: Sequence[Alarm]) -> list[float]:
        """Probability that each candidate is a real episode (1.0 for kinds without a model)."""
        out = [1.0] * len(candidates)
        for kind in (AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS):
            model = self.models.get(kind.value)
            index = [i for i, a in enumerate(candidates) if a.kind is kind]
            if model is None or not index:
                continue
            proba = model.predict_proba(feature_matrix([candidates[i].evidence for i in index]))
            for i, p in zip(index, proba[:, 1].tolist(), strict=True):
                out[i] = float(p)
        return out

    def accept(self, candidates: Sequence[Alarm]) -> list[bool]:
        """Which candidates to raise, scored in one batch per kind."""
        return [p >= self.threshold for p in self.probabilities(candidates)]
