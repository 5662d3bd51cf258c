"""Fitting the confirmer: its threshold keeps the promised share of true onsets on wearers the
model was not fitted on, and a kind seen on a single wearer keeps the rules alone."""

from __future__ import annotations

import numpy as np

from models.alarm import Alarm, AlarmKind, Severity
from models.confirm import FEATURES
from models.const import CONFIRM_KEEP_POSITIVE_SHARE
from models.training import train_confirmer

WEARERS = 6


def candidates(separation: float, seed: int = 0) -> list[tuple[Alarm, int]]:
    """Several wearers' onset candidates; positives' surge evidence is shifted by ``separation``."""
    rng = np.random.default_rng(seed)
    out = []
    for w in range(WEARERS):
        offset = rng.normal(0.0, 0.3)  # wearers differ: out-of-fold is harder than in-sample
        for label, count in ((1, 60), (0, 15)):
            for _ in range(count):
                evidence = {name: float(rng.normal()) for name in FEATURES}
                evidence["surge_score"] = float(rng.normal(offset + separation * label, 1.0))
                alarm = Alarm(
                    f"w{w}", 0.0, AlarmKind.ANAPHYLAXIS, Severity.WARNING, "t", False, evidence
                )
                out.append((alarm, label))
    return out


def kept(confirmer, rows: list[tuple[Alarm, int]], label: int) -> float:
    alarms = [a for a, y in rows if y == label]
    return float(np.mean(confirmer.accept(alarms)))


def test_threshold_keeps_the_promised_share_of_unseen_wearers_positives() -> None:
    confirmer, info = train_confirmer(candidates(1.0), seed=1, version="t")
    fresh = candidates(1.0, seed=2)  # other wearers, same physiology
    assert kept(confirmer, fresh, 1) >= CONFIRM_KEEP_POSITIVE_SHARE - 0.05
    assert info["kinds"]["anaphylaxis"]["positives"] == WEARERS * 60


def test_without_evidence_the_confirmer_vetoes_almost_nothing() -> None:
    noise, _ = train_confirmer(candidates(0.0), seed=1, version="t")
    assert kept(noise, candidates(0.0, seed=3), 1) >= CONFIRM_KEEP_POSITIVE_SHARE - 0.05


def test_one_wearer_is_not_enough_to_set_a_threshold() -> None:
    rows = [(a, y) for a, y in candidates(6.0) if a.patient_id == "w0"]
    confirmer, _ = train_confirmer(rows * 2, seed=1, version="t")
    assert confirmer.models == {}
