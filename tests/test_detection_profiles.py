"""Detection profiles: a care team chooses the operating point per patient; baselines stay."""

from __future__ import annotations

from models.alarm import AlarmKind
from models.bank import DetectorBank
from models.const import MODEL_VERSION
from models.detector import PatientDetector
from models.profiles import DetectionProfile
from tests.test_models_detector import T0, make_samples, onsets

ONSET_MIN = 40


def first_alarm_min(bank: DetectorBank, patient: str, surge_frac: float) -> float | None:
    """Minutes from a surge's onset to the patient's first anaphylaxis alarm (None if none)."""
    samples = make_samples(75, surge_at_min=ONSET_MIN, surge_frac=surge_frac, surge_rise_min=3.0)
    started = onsets(bank.update([(patient, samples)]), AlarmKind.ANAPHYLAXIS)
    return None if not started else (started[0].time_s - (T0 + ONSET_MIN * 60)) / 60


def test_profiles_move_the_surge_alarm_and_are_stamped_on_it() -> None:
    delays = {}
    for profile in DetectionProfile:
        bank = DetectorBank(PatientDetector())
        bank.set_profile("p1", profile)
        delays[profile] = first_alarm_min(bank, "p1", 0.30)
        assert bank.detector("p1").model_version == (
            MODEL_VERSION if profile is DetectionProfile.BALANCED else f"{MODEL_VERSION}@{profile}"
        )
    sensitive, balanced, quiet = (
        delays[DetectionProfile(p)] for p in ("sensitive", "balanced", "quiet")
    )
    assert sensitive is not None and balanced is not None
    assert sensitive < balanced
    assert quiet is None or quiet > balanced
    # without days of history the personal profile is the balanced one
    assert delays[DetectionProfile.PERSONAL] == balanced


def test_changing_profile_keeps_what_was_learnt() -> None:
    bank = DetectorBank(PatientDetector())
    bank.update([("p1", make_samples(30))])
    before = bank.detector("p1").state_dict()
    assert bank.set_profile("p1", DetectionProfile.SENSITIVE)
    assert not bank.set_profile("p1", DetectionProfile.SENSITIVE)  # no change, nothing redone
    after = bank.detector("p1")
    assert after.state_dict() == before and after.surge_score_frac_s < 70
    assert bank.set_profile("p1", DetectionProfile.BALANCED)
    assert bank.detector("p1").model_version == MODEL_VERSION
    assert bank.detector("p1").state_dict() == before
    assert "p1" not in bank.profiles
