"""Per-patient calibration of the surge evidence (the 'personal' profile, rules 1.6)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from flarewatch.payloads import Sample
from models.alarm import AlarmKind
from models.bank import DetectorBank
from models.calibration import EvidenceCalibration
from models.confirm import FEATURES, feature_matrix
from models.const import CALIBRATION_LEVELS, MODEL_VERSION, SURGE_SCORE_FRAC_S
from models.detector import PatientDetector
from models.errors import ModelError
from models.profiles import DetectionProfile, profile_params
from tests.test_models_detector import T0, onsets

DAY_S = 86_400.0


def excursions(calibration: EvidenceCalibration, days: float, every_s: float, peak: float) -> None:
    """Feed one sample a minute; every ``every_s`` an excursion of evidence rising to ``peak``."""
    t = 0.0
    while t < days * DAY_S:
        phase = t % every_s
        evidence = peak * phase / 300.0 if 0 < phase <= 300.0 else 0.0
        calibration.observe(T0 + t, evidence)
        t += 60.0


def test_default_until_three_days_then_the_smallest_rare_level() -> None:
    calibration = EvidenceCalibration()
    excursions(calibration, 2.5, 6 * 3600.0, peak=50.0)  # four a day, each up to 50 frac·s
    assert calibration.level(70.0, 0.2) == 70.0  # not enough history yet
    excursions_after = EvidenceCalibration()
    excursions(excursions_after, 6.0, 6 * 3600.0, peak=50.0)
    rates = excursions_after.rates_per_day()
    assert rates[45.0] > 3.0 and rates[70.0] == 0.0
    assert excursions_after.level(70.0, 0.2) == 70.0  # 45 is reached four times a day
    assert excursions_after.level(70.0, 5.0) == 20.0  # a lax target takes the lowest level


def test_a_quiet_heart_gets_the_lowest_level_a_restless_one_the_highest() -> None:
    quiet = EvidenceCalibration()
    excursions(quiet, 5.0, 5 * DAY_S, peak=0.0)
    assert quiet.level(70.0, 0.2) == CALIBRATION_LEVELS[0]
    restless = EvidenceCalibration()
    excursions(restless, 5.0, 4 * 3600.0, peak=1000.0)
    assert restless.level(70.0, 0.2) == CALIBRATION_LEVELS[-1]  # bounded, never deaf


def test_old_excursions_fade() -> None:
    calibration = EvidenceCalibration()
    excursions(calibration, 4.0, 3 * 3600.0, peak=100.0)
    busy = calibration.rates_per_day()[100.0]
    excursions(calibration, 60.0, 60 * DAY_S, peak=0.0)  # two calm months follow
    assert calibration.rates_per_day()[100.0] < busy / 5
    assert calibration.level(70.0, 0.2) == CALIBRATION_LEVELS[0]


def resting_days(
    days: float, *, bumps_every_s: float | None = None, surge_at_s: float | None = None
) -> list[Sample]:
    """A resting heart at 64 bpm sampled each minute, with short +40 % bumps and a late surge."""
    rng = np.random.default_rng(3)
    out: list[Sample] = []
    for i, t in enumerate(np.arange(0.0, days * DAY_S, 60.0)):
        factor = 1.0
        if bumps_every_s is not None and 3600.0 < t % bumps_every_s <= 3600.0 + 480.0:
            factor += 0.40
        if surge_at_s is not None and t >= surge_at_s:
            ramp = min((t - surge_at_s) / 180.0, 1.0)
            factor += 0.35 * (0.5 - 0.5 * math.cos(math.pi * ramp))
        hr = 64.0 * factor + rng.normal(0.0, 1.0)
        out.append(Sample(seq=i, time_ms=int((T0 + t) * 1000), heart_rate_bpm=round(hr, 1)))
    return out


def first_surge_delay_s(detector: PatientDetector, samples: list[Sample], onset_s: float) -> float:
    started = onsets(detector.update(samples), AlarmKind.ANAPHYLAXIS)
    late = [a for a in started if a.time_s >= T0 + onset_s]
    assert late, "the surge was not detected"
    assert late[0].evidence["surge_needed"] == detector.evidence_needed()
    return late[0].time_s - (T0 + onset_s)


def test_personal_profile_alarms_a_quiet_heart_sooner_and_a_restless_one_later() -> None:
    onset_s = 5 * DAY_S + 3 * 3600.0
    quiet = resting_days(5.5, surge_at_s=onset_s)
    balanced = PatientDetector()
    personal = PatientDetector(**profile_params(DetectionProfile.PERSONAL))
    fixed_delay = first_surge_delay_s(balanced, quiet, onset_s)
    personal_delay = first_surge_delay_s(personal, quiet, onset_s)
    assert balanced.evidence_needed() == SURGE_SCORE_FRAC_S
    assert personal.evidence_needed() == CALIBRATION_LEVELS[0]
    assert personal_delay < fixed_delay - 60.0

    restless = resting_days(5.5, bumps_every_s=8 * 3600.0)  # three +40 % bumps a day
    balanced, personal = PatientDetector(), PatientDetector(**profile_params("personal"))  # type: ignore[arg-type]
    assert len(onsets(balanced.update(restless), AlarmKind.ANAPHYLAXIS)) >= 15
    personal_alarms = onsets(personal.update(restless), AlarmKind.ANAPHYLAXIS)
    assert personal.evidence_needed() > SURGE_SCORE_FRAC_S
    # from the fourth day on the bumps no longer reach the calibrated level
    assert not [a for a in personal_alarms if a.time_s > T0 + 4 * DAY_S]


def test_calibration_is_saved_restored_and_absent_from_old_states() -> None:
    samples = resting_days(4.0, bumps_every_s=8 * 3600.0)
    detector = PatientDetector(surge_target_per_day=0.2)
    detector.update(samples[: len(samples) // 2])
    state = json.loads(json.dumps(detector.state_dict()))
    restored = PatientDetector(surge_target_per_day=0.2)
    restored.load_state_dict(state)
    rest = samples[len(samples) // 2 :]
    assert restored.update(rest) == detector.update(rest)
    assert restored.state_dict() == detector.state_dict()

    del state["calibration"]  # a state saved by 1.5
    old = PatientDetector(surge_target_per_day=0.2)
    old.load_state_dict(state)
    assert old.evidence_needed() == SURGE_SCORE_FRAC_S  # starts afresh, with the default


def test_personal_profile_in_the_bank_keeps_the_history_and_is_stamped() -> None:
    bank = DetectorBank(PatientDetector())
    bank.update([("p1", resting_days(4.0))])
    assert bank.detector("p1").evidence_needed() == SURGE_SCORE_FRAC_S  # balanced: fixed
    assert bank.set_profile("p1", DetectionProfile.PERSONAL)
    detector = bank.detector("p1")
    assert detector.model_version == f"{MODEL_VERSION}@personal"
    assert detector.evidence_needed() == CALIBRATION_LEVELS[0]  # four calm days already seen


def test_the_confirmer_reads_the_evidence_relative_to_what_was_needed() -> None:
    balanced = {"surge_score": 75.0, "surge_needed": SURGE_SCORE_FRAC_S}
    calibrated = {"surge_score": 21.0, "surge_needed": 20.0}
    saved_by_1_5 = {"surge_score": 75.0}  # no surge_needed: read as it is
    column = FEATURES.index("surge_score")
    scores = feature_matrix([balanced, calibrated, saved_by_1_5])[:, column]
    assert scores.tolist() == [75.0, 73.5, 75.0]


@pytest.mark.parametrize(
    "damage",
    [
        {"counts": [1.0, 2.0]},  # saved with other levels
        {"counts": [float("nan")] * len(CALIBRATION_LEVELS)},
        {"exposure_s": -5.0},
        {"counts": "many"},
    ],
)
def test_a_damaged_calibration_state_is_refused_with_a_clear_error(damage: dict) -> None:
    detector = PatientDetector(surge_target_per_day=0.2)
    detector.update(resting_days(0.2))
    state = json.loads(json.dumps(detector.state_dict()))
    state["calibration"].update(damage)
    with pytest.raises(ModelError, match="discard it and let the baselines relearn"):
        PatientDetector(surge_target_per_day=0.2).load_state_dict(state)
