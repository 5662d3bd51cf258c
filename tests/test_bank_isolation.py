"""One patient's failing detector, or a failing confirmer, never silences the other alarms.

The service runs every patient through one ``DetectorBank.update`` call per cycle: before this,
an unforeseen error in one patient's detector dropped the alarms of every patient in the cycle
(and of every cycle after, as the same state failed again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from flarewatch.payloads import Sample
from models.alarm import UNCONFIRMED, Alarm, AlarmKind
from models.bank import DetectorBank
from models.confirm import Confirmer
from models.detector import PatientDetector
from tests.test_models_detector import make_samples


class FaultyForOnePatient(PatientDetector):
    """A detector with a bug that only one patient's data reaches (fault injection)."""

    def update(self, samples: Iterable[Sample]) -> list[Alarm]:
        if self.patient_id == "p-bad":
            raise ZeroDivisionError("heart rate 131.5 over 0")
        return super().update(samples)


def onsets(alarms: list[Alarm], patient_id: str) -> list[AlarmKind]:
    return [a.kind for a in alarms if a.patient_id == patient_id and not a.resolved]


def test_a_failing_patient_starts_afresh_and_the_others_still_alarm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bank = DetectorBank(FaultyForOnePatient())
    surge = make_samples(90, surge_at_min=40, surge_frac=0.5)
    with caplog.at_level(logging.ERROR, logger="models.bank"):
        alarms = bank.update([("p-bad", surge), ("p-good", surge)])
    assert AlarmKind.ANAPHYLAXIS in onsets(alarms, "p-good")
    assert "p-bad" not in bank.detectors, "the failing patient starts afresh"
    assert "p-good" in bank.detectors
    (record,) = caplog.records
    assert "p-bad" in record.getMessage() and "ZeroDivisionError" in record.getMessage()
    assert "131.5" not in caplog.text, "the error's text may quote vitals: type only"
    # time goes on for everyone, also after the failure
    assert bank.tick(surge[-1].time_ms / 1000.0 + 3600.0)


def test_a_confirmer_that_fails_lets_the_rules_alarms_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # an artifact fitted on other features than the detector computes: scikit-learn raises
    mismatched = LogisticRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0]]), [0, 1])
    bank = DetectorBank(PatientDetector(), Confirmer({"anaphylaxis": mismatched}, "bad-1"))
    surge = make_samples(90, surge_at_min=40, surge_frac=0.5)
    with caplog.at_level(logging.ERROR, logger="models.bank"):
        alarms = bank.update([("p1", surge)])
    assert AlarmKind.ANAPHYLAXIS in onsets(alarms, "p1")
    assert "confirmer failed (ValueError)" in caplog.text
    # its version names the confirmer, which never judged it: the alarm says so
    onset = next(a for a in alarms if a.kind is AlarmKind.ANAPHYLAXIS and not a.resolved)
    assert onset.model_version.endswith("+bad-1") and onset.evidence[UNCONFIRMED] == 1.0
