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
from models.const import CONFIRM_THRESHOLD, SURGE_SCORE_FRAC_S

FEATURES: tuple[str, ...] = (
    "hr_trend_bpm",
    "hr_ref_bpm",
    "temp_rise_c",
    "temp_slope_c_per_min",
    "worn_s",
    "surge_score",
    "still",
)
"""Evidence keys the confirmer reads, in column order.

Not ``rest_s`` (time since the last steps or movement): the injected training positives are at
rest by construction and the E4 sessions count no steps, so its weight learned how episodes were
sampled, not how they look. Nor the size of the rise: false onsets (activity without steps) rise
more than the +20-60 % injected surges, so a linear model learned to veto the largest surges (a
simulated +77 % surge at rest was rejected); the rules already demand the rise, the confirmer
only weighs its context. Nor which sensors the band has (``has_temp``/``has_motion``): that told
E4 sessions from Fitbit days, whose share of positives the evaluation design sets, and it
penalised every band with both sensors."""


_SCORE = FEATURES.index("surge_score")


def from_recovery_path(alarm: Alarm) -> bool:
    """An onset of the non-recovery path (after exercise, rules 1.6).

    Its surge evidence is not what raised it (the short reference followed the heart up during
    the exercise), so the confirmer neither learns from nor judges it: fitted with them, it vetoed
    13 true held-out onsets of the main path.
    """
    return alarm.evidence.get("recovery") == 1.0


def feature_matrix(evidences: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Rows of :data:`FEATURES` from alarm evidence (missing keys read as 0).

    ``surge_score`` is read relative to the evidence the detector needed (``surge_needed``,
    since 1.6), in units of the balanced profile's level: a patient calibrated to 20 frac·s, or on
    the sensitive profile's 30, alarms with less evidence by design, and the confirmer, fitted on
    balanced onsets, must not take that as a sign of a false one. Balanced onsets, and evidence
    saved before 1.6, read unchanged.
    """
    rows = np.array([[float(e.get(name, 0.0)) for name in FEATURES] for e in evidences])
    needed = np.array([float(e.get("surge_needed", SURGE_SCORE_FRAC_S)) for e in evidences])
    if len(rows):
        rows[:, _SCORE] *= SURGE_SCORE_FRAC_S / np.where(needed > 0, needed, SURGE_SCORE_FRAC_S)
    return rows


class Confirmer:
    """Accepts or rejects onset alarms with a fitted classifier per kind (kinds without one pass).

    ``models`` maps an :class:`AlarmKind` value to a fitted scikit-learn classifier with
    ``predict_proba``; ``version`` names the artifact it was loaded from; ``bounds`` maps a kind
    to the lowest and highest value of each feature among its training positives (inputs are
    clipped to them).
    """

    def __init__(
        self,
        models: Mapping[str, Any],
        version: str,
        threshold: float = CONFIRM_THRESHOLD,
        bounds: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    ) -> None:
        self.models = models
        self.version = version
        self.threshold = threshold
        self.bounds = bounds or {}

    def probabilities(self, candidates: Sequence[Alarm]) -> list[float]:
        """Probability that each candidate is a real episode (1.0 for kinds without a model)."""
        out = [1.0] * len(candidates)
        for kind in (AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS):
            model = self.models.get(kind.value)
            index = [i for i, a in enumerate(candidates) if a.kind is kind]
            if model is None or not index:
                continue
            x = feature_matrix([candidates[i].evidence for i in index])
            low_high = self.bounds.get(kind.value)
            if low_high is not None:
                # a linear model extrapolates: a surge steeper or larger than any it was trained
                # on must not score as less real than the steepest real one it saw
                x = np.clip(x, np.asarray(low_high[0]), np.asarray(low_high[1]))
            proba = model.predict_proba(x)
            for i, p in zip(index, proba[:, 1].tolist(), strict=True):
                out[i] = float(p)
        return out

    def accept(self, candidates: Sequence[Alarm]) -> list[bool]:
        """Which candidates to raise, scored in one batch per kind."""
        return [p >= self.threshold for p in self.probabilities(candidates)]
