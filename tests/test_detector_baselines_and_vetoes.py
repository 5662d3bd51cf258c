"""Detector 1.2 to 1.4 repairs: references that follow a sensor warm-up, hourly baselines a surge
cannot seed, a confirmer that cannot out-extrapolate its training data, syncope after a veto, and
flushes found while the wearer gestures but not while walking."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind, Severity
from models.bank import DetectorBank
from models.confirm import FEATURES, Confirmer
from models.const import MODEL_VERSION
from models.detector import PatientDetector
from models.features import SignalTracker
from tests.test_models_detector import T0, make_samples, onsets, reject_all, with_motion


def band_on_warm_up(minutes: float, low_c: float = 2.0, settle_min: float = 10.0) -> list[Sample]:
    """A resting wearer whose skin sensor reads ``low_c`` low at band-on and settles slowly."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(int(minutes * 60)):
        lag = low_c * max(0.0, 1.0 - i / 60 / settle_min)
        skin = 33.0 - lag + float(rng.normal(0, 0.02))
        hr = 64.0 + float(rng.normal(0, 1.5))
        out.append(
            Sample(
                seq=i,
                time_ms=int((T0 + i) * 1000),
                heart_rate_bpm=round(hr, 1),
                skin_temperature_c=round(skin, 2),
            )
        )
    return out


def test_skin_reference_catches_up_after_the_band_on_warm_up() -> None:
    detector = PatientDetector()
    alarms = detector.update(band_on_warm_up(40))
    rise = detector.tracker.temp_rise_c()
    assert rise is not None and abs(rise) < 0.1  # 1.1 left it ~1 degC below the skin
    assert onsets(alarms) == []


def test_flush_after_a_cooling_spell_is_measured_from_the_low() -> None:
    tracker = SignalTracker()
    for i in range(36 * 60):
        minute = i / 60
        skin = 33.0 - 0.6 * min(max(minute - 27.0, 0.0) / 5.0, 1.0)  # cools 0.6 degC by 32 min
        skin += 0.8 * min(max(minute - 32.0, 0.0) / 5.0, 1.0)  # then a flush warms it 0.8 degC
        tracker.step(T0 + i, 64.0, skin, None, None, freeze=False)
    rise = tracker.temp_rise_c()
    assert rise is not None and rise > 0.3  # 1.1 followed the cooling slowly: +0.14 degC


def test_a_skin_cooling_slowly_across_a_gap_has_not_fallen_from_its_peak() -> None:
    tracker = SignalTracker()
    times = [*range(30 * 60), *range(38 * 60, 45 * 60)]  # an 8-min gap in the data
    for i in times:
        skin = 33.0 - 0.05 * max(i / 60 - 20.0, 0.0)  # cools 0.05 degC/min from 20 min on
        tracker.step(T0 + i, 64.0, skin, None, None, freeze=False)
        # half the flush warming rate: never a fall that would hold a flush back (1.10)
        assert tracker.temp_fall_c() < 0.05, i / 60


def test_an_hour_never_seen_at_rest_is_not_learnt_from_the_surge() -> None:
    tracker = SignalTracker()
    start = 1_764_028_800.0  # 00:00 UTC: two calm hours, then a +40 % surge from 02:00
    for i in range(0, 2 * 3600 + 15 * 60, 5):
        t = start + i
        hr = 64.0 if i < 2 * 3600 else 64.0 * 1.4
        tracker.step(t, hr, None, None, None, freeze=False)
    rise = tracker.tod_rise_frac(start + 2 * 3600 + 15 * 60)
    assert rise is not None and rise > 0.3  # 1.1 seeded 02:00 with the surge: rise ~0


@pytest.mark.parametrize("batch", [10, 100_000])
def test_syncope_after_a_vetoed_surge_raises_a_critical_onset(batch: int) -> None:
    samples = make_samples(80, period_s=1.0, hr=80.0, surge_at_min=40, surge_frac=0.4)
    fainted = with_motion(samples, still_from_min=46)
    bank = DetectorBank(confirmer=reject_all())
    alarms = [
        a
        for i in range(0, len(fainted), batch)
        for a in bank.update([("p", fainted[i : i + batch])])
    ]
    started = onsets(alarms, AlarmKind.ANAPHYLAXIS)
    assert len(started) == 1
    assert started[0].severity is Severity.CRITICAL and started[0].evidence["still"] == 1.0
    assert 46 < (started[0].time_s - T0) / 60 <= 47.5
    # without the syncope the veto holds for the whole episode
    quiet = with_motion(samples, still_from_min=None)
    assert onsets(DetectorBank(confirmer=reject_all()).update([("p", quiet)])) == []


def test_confirmer_inputs_are_clipped_to_the_range_of_its_training_positives() -> None:
    trend = FEATURES.index("hr_trend_bpm")
    x = np.zeros((40, len(FEATURES)))
    x[:, trend] = np.r_[np.linspace(0, 10, 20), np.linspace(10, 40, 20)]
    labels = np.r_[np.ones(20), np.zeros(20)]  # steeper rises were false alarms in training
    model = LogisticRegression().fit(x, labels)
    low, high = x[labels == 1].min(axis=0).tolist(), x[labels == 1].max(axis=0).tolist()
    confirmer = Confirmer({"anaphylaxis": model}, "clip", 0.5, {"anaphylaxis": (low, high)})

    def surge(trend_bpm: float) -> Alarm:
        evidence = {"onset": 1.0, "hr_trend_bpm": trend_bpm}
        return Alarm(
            "p", T0, AlarmKind.ANAPHYLAXIS, Severity.WARNING, MODEL_VERSION, evidence=evidence
        )

    at_edge, steepest = confirmer.probabilities([surge(10.0), surge(65.0)])
    assert steepest == pytest.approx(at_edge)
    unclipped = Confirmer({"anaphylaxis": model}, "raw", 0.5).probabilities([surge(65.0)])[0]
    assert unclipped < steepest


def moving(samples: list[Sample], acc_sd_g: float, from_min: float) -> list[Sample]:
    """Wrist movement of ``acc_sd_g`` (standard deviation of |acceleration|) from a minute on."""
    rng = np.random.default_rng(5)
    out = []
    for s in samples:
        minute = (s.time_ms / 1000 - T0) / 60
        acc = acc_sd_g if minute >= from_min else 0.008
        out.append(s.model_copy(update={"acceleration_sd_g": acc * float(rng.uniform(0.9, 1.1))}))
    return out


@pytest.mark.parametrize(
    ("acc_sd_g", "flushes"),
    [(0.008, 1), (0.13, 1), (0.30, 0)],
    ids=["still", "seated gestures", "walking"],
)
def test_flush_is_sought_while_gesturing_but_not_while_walking(
    acc_sd_g: float, flushes: int
) -> None:
    warm = make_samples(90, period_s=1.0, temp=32.0, warm_at_min=45)
    alarms = PatientDetector().update(moving(warm, acc_sd_g, from_min=35))
    assert len(onsets(alarms, AlarmKind.FLUSH)) == flushes


def test_heart_rate_reference_settles_during_the_band_on_warm_up() -> None:
    """The first optical readings sit at 60 bpm, the wearer's rate is 90 from minute 2 on."""
    rng = np.random.default_rng(6)
    samples = [
        Sample(
            seq=i,
            time_ms=int((T0 + i) * 1000),
            heart_rate_bpm=round((60.0 if i < 120 else 90.0) + float(rng.normal(0, 1.5)), 1),
        )
        for i in range(50 * 60)
    ]
    detector = PatientDetector()
    alarms = detector.update(samples)
    ref = detector.tracker.hr_ref
    assert ref is not None and abs(ref - 90.0) < 3.0  # 1.2 left it near 60 for the session
    assert onsets(alarms) == []


def walk(minutes: float, after_walk: Callable[[float], float], seed: int) -> list[Sample]:
    """40 min at 70 bpm, a 20-min walk at 110 bpm, then no steps and ``after_walk(minute)`` bpm."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(0, int(minutes * 60), 5):
        minute = i / 60
        if minute < 40:
            hr, steps = 70.0, 0
        elif minute < 60:
            hr, steps = 110.0, 100
        else:
            hr, steps = after_walk(minute), 0
        samples.append(
            Sample(
                seq=i,
                time_ms=int((T0 + i) * 1000),
                heart_rate_bpm=round(hr + float(rng.normal(0, 1.5)), 1),
                steps=steps,
            )
        )
    return samples


def recovering(minute: float) -> float:
    """An ordinary recovery from the walk toward 70 bpm."""
    return 70.0 + 40.0 * math.exp(-(minute - 60) / 4.0)


def test_surge_while_the_heart_still_slows_after_exercise_is_caught() -> None:
    """A walk (110 bpm), recovery toward 70 bpm, then a +40 % surge 18 min after the last step."""

    def surge_at_78(minute: float) -> float:
        return recovering(minute) * (1 + 0.40 * min(max(minute - 78, 0.0) / 2.0, 1.0))

    samples = walk(110, surge_at_78, seed=7)
    started = onsets(PatientDetector().update(samples), AlarmKind.ANAPHYLAXIS)
    assert len(started) == 1
    # 1.2: never (reference 84); 1.4 needs 70 frac·s of evidence (docs/evaluation.md)
    assert 0 < (started[0].time_s - (T0 + 78 * 60)) / 60 <= 9.0


def walk_then_rest(heart_slows: bool) -> list[Sample]:
    """The walk, then 30 min without a step: an ordinary recovery or a heart that keeps racing."""

    def racing(minute: float) -> float:  # exercise-induced anaphylaxis
        return 110.0 + 0.5 * (minute - 60)

    return walk(90, recovering if heart_slows else racing, seed=8)


@pytest.mark.parametrize("heart_slows", [True, False])
def test_a_heart_that_does_not_slow_down_after_exercise_alarms(heart_slows: bool) -> None:
    started = onsets(PatientDetector().update(walk_then_rest(heart_slows)), AlarmKind.ANAPHYLAXIS)
    if heart_slows:
        assert started == []  # an ordinary recovery
        return
    [alarm] = started
    assert alarm.evidence["recovery"] == 1.0
    # the steps stopped at 60 min; the path waits for 5 min of rest, then needs its evidence
    assert 65.0 < (alarm.time_s - T0) / 60 <= 80.0
    # the learned confirmer was not built for this path and never vetoes it
    vetoing = DetectorBank(confirmer=reject_all())
    [kept] = onsets(vetoing.update([("p", walk_then_rest(heart_slows))]), AlarmKind.ANAPHYLAXIS)
    assert kept.time_s == alarm.time_s


def first_surge_delay_min(samples: list[Sample], onset_min: float) -> float | None:
    """Minutes from the injected onset to the first anaphylaxis alarm (None if none)."""
    started = onsets(PatientDetector().update(samples), AlarmKind.ANAPHYLAXIS)
    return None if not started else (started[0].time_s - (T0 + onset_min * 60)) / 60


def test_one_low_reading_does_not_wipe_the_surge_evidence() -> None:
    # a Fitbit-like wearer (one reading a minute) with a +35 % surge; one optical reading in the
    # middle of the build-up falls back to the resting rate
    clean = make_samples(90, period_s=60.0, surge_at_min=40, surge_frac=0.35)
    dip_at = int((T0 + 44 * 60) * 1000)
    dipped = [
        s.model_copy(update={"heart_rate_bpm": 64.0}) if s.time_ms == dip_at else s for s in clean
    ]
    assert dipped != clean
    base = first_surge_delay_min(clean, 40)
    late = first_surge_delay_min(dipped, 40)
    assert base is not None and late is not None
    # the dip costs about its own shortfall, not the minutes of evidence gathered before it
    # (1.3 restarted the evidence from zero: +4 min)
    assert late - base <= 1.5


def test_reference_holds_while_surge_evidence_builds() -> None:
    detector = PatientDetector()
    samples = make_samples(60, surge_at_min=40, surge_frac=0.30, surge_rise_min=3.0)
    before = [s for s in samples if s.time_ms < (T0 + 40 * 60) * 1000]
    detector.update(before)
    ref_at_onset = detector.tracker.hr_ref
    assert ref_at_onset is not None
    refs = []
    for sample in samples[len(before) :]:
        if onsets(detector.update([sample])):
            break
        refs.append(detector.tracker.hr_ref)
    assert refs and detector.surge.engaged
    # 1.3 let it creep up ~+4 % while the evidence built, hiding small surges
    assert max(r for r in refs if r is not None) <= ref_at_onset * 1.01


def test_alarms_say_whether_the_band_reports_activity() -> None:
    hr_only = make_samples(40, surge_at_min=25, surge_frac=0.5)
    [blind] = onsets(PatientDetector().update(hr_only), AlarmKind.ANAPHYLAXIS)
    assert blind.evidence["activity_known"] == 0.0
    counted = [s.model_copy(update={"steps": 0}) for s in hr_only]  # a step counter, sitting
    [known] = onsets(PatientDetector().update(counted), AlarmKind.ANAPHYLAXIS)
    assert known.evidence["activity_known"] == 1.0
    assert known.time_s == blind.time_s  # it informs the message, it does not change detection
    tracker = SignalTracker()
    tracker.step(T0, 60.0, None, 0, None, freeze=False)
    assert tracker.activity_known(T0 + 23 * 3600)
    assert not tracker.activity_known(T0 + 25 * 3600)  # a day without steps or motion


def test_a_lasting_elevation_is_one_episode_not_an_alarm_every_two_hours() -> None:
    # heart rate up 50 % for six hours at rest (a fever, a sensor fault): before 1.5 the
    # episode closed after 2 h, the reference still sat at the old rest and it re-alarmed
    lasting = make_samples(8 * 60, period_s=15.0, surge_at_min=30, surge_frac=0.5)
    alarms = PatientDetector().update(lasting)
    surges = [a for a in alarms if a.kind is AlarmKind.ANAPHYLAXIS]
    assert len(onsets(alarms, AlarmKind.ANAPHYLAXIS)) == 1
    [end] = [a for a in surges if a.resolved]
    assert end.evidence["expired"] == 1.0  # said apart from a calm end
    assert end.time_s - T0 == pytest.approx(30 * 60 + 2 * 3600, abs=10 * 60)
    # the lasting level is the reference now: a further surge on top of it is a new episode
    more = make_samples(9 * 60, period_s=15.0, surge_at_min=30, surge_frac=0.5)
    detector = PatientDetector()
    detector.update(more[: len(lasting)])
    worse = [
        s.model_copy(update={"heart_rate_bpm": round(s.heart_rate_bpm * 1.4, 1)})
        for s in more[len(lasting) :]
    ]
    assert onsets(detector.update(worse), AlarmKind.ANAPHYLAXIS)


def test_a_state_saved_before_the_activity_flag_still_loads() -> None:
    """Upgrading 1.4 -> 1.5 keeps every patient's baselines (the new field has a default)."""
    detector = PatientDetector()
    detector.update(make_samples(30))
    state = detector.state_dict()
    del state["tracker"]["activity_signal_s"]  # what rules 1.4 saved
    restored = PatientDetector()
    restored.load_state_dict(state)
    assert restored.tracker.hr_ref == detector.tracker.hr_ref
    assert restored.tracker.activity_signal_s is None
