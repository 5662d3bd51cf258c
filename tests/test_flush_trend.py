"""The flush path over the skin's own trend (rules 1.11): a flush on a skin that was cooling is
found, on a real recording, where the warming-slope rule alone misses it; the same warming with
the heart slowing (relaxing after stress) is not a flush; the trend's state saves, restores and
is checked like the rest."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind
from models.bank import DetectorBank
from models.const import FLUSH_TREND_LAG_S, FLUSH_TREND_SNAPSHOT_S
from models.datasets import load_stress_predict
from models.detector import PatientDetector
from models.errors import ModelError
from models.injection import Episode, inject
from models.replay import replay
from models.skin_trend import SkinTrend

# A +0.72 degC flush (heart +9 %) rising over 7.1 min, drawn by the evaluation (seed 20261125)
# into tuning session S07 on a skin cooling through the stress task. Its warming over that
# cooling never reaches the 0.10 degC/min of the slope rule.
S07_FLUSH = Episode(
    kind=AlarmKind.FLUSH,
    onset_s=1644836843.0,
    rise_s=426.17,
    plateau_s=559.90,
    decay_s=1558.51,
    hr_rise_frac=0.0916,
    temp_rise_c=0.720,
    syncope_after_s=None,
)


def _flush_onsets(alarms: list[Alarm]) -> list[Alarm]:
    return [a for a in alarms if a.kind is AlarmKind.FLUSH and a.evidence.get("onset") == 1.0]


def _replay_s07(episode: Episode = S07_FLUSH, **params: object) -> list[Alarm]:
    (session,) = [r for r in load_stress_predict(split="tuning") if r.subject == "S07"]
    frame = inject(session.frame, [episode], np.random.default_rng(0))
    bank = DetectorBank(PatientDetector(**params))  # type: ignore[arg-type]
    return replay(bank, "S07", session.samples(frame))


def test_a_flush_on_a_cooling_skin_is_found_over_the_skins_own_trend() -> None:
    found = _flush_onsets(_replay_s07())
    assert len(found) == 1
    (alarm,) = found
    assert S07_FLUSH.onset_s < alarm.time_s < S07_FLUSH.onset_s + S07_FLUSH.rise_s + 120
    assert alarm.evidence["over_trend"] == 1.0 and alarm.evidence["temp_above_trend_c"] >= 0.6
    # the trend path is the cause: without it the same flush goes unnoticed
    assert _flush_onsets(_replay_s07(flush_trend=False)) == []


def test_the_same_warming_with_the_heart_slowing_is_no_flush() -> None:
    # a re-warming as the person relaxes after the stress task: skin back up, heart down
    relaxing = dataclasses.replace(S07_FLUSH, hr_rise_frac=-S07_FLUSH.hr_rise_frac)
    assert _flush_onsets(_replay_s07(episode=relaxing)) == []


def _resting(minutes: float) -> list[Sample]:
    """A person at rest with a band that measures skin temperature (a little sensor noise)."""
    return [
        Sample(
            seq=i,
            time_ms=int((1_764_000_000 + i * 5) * 1000),
            heart_rate_bpm=round(70.0 + 0.8 * math.sin(i * 1.7), 1),
            skin_temperature_c=round(33.5 + 0.02 * math.sin(i * 2.3), 2),
        )
        for i in range(int(minutes * 60 / 5))
    ]


def test_skin_trend_line_and_heart_change() -> None:
    trend = SkinTrend()
    t0 = 1_764_000_000.0
    for k in range(25):  # a skin cooling 0.05 degC/min, the heart steady at 70
        t = t0 + k * FLUSH_TREND_SNAPSHOT_S
        trend.observe(t, 34.0 - 0.05 * (t - t0) / 60, 70.0, settled=True)
    now = t0 + 24 * FLUSH_TREND_SNAPSHOT_S
    on_line = 34.0 - 0.05 * (now - t0) / 60
    assert trend.above_trend_c(now, on_line) == pytest.approx(0.0, abs=1e-9)
    assert trend.above_trend_c(now, on_line + 0.7) == pytest.approx(0.7)
    assert trend.hr_change_frac(now, 77.0) == pytest.approx(0.10)
    assert len(trend.time_s) <= 22  # bounded: the fit window and the lag only
    trend.observe(now + 30, None, 70.0, settled=True)  # no skin temperature: forgotten
    assert trend.above_trend_c(now + 30, on_line) is None
    assert trend.hr_change_frac(now + 30, 70.0) is None


def test_skin_trend_needs_a_full_window() -> None:
    trend = SkinTrend()
    t0 = 1_764_000_000.0
    for k in range(6):  # three minutes only
        trend.observe(t0 + k * 30, 34.0, 70.0, settled=True)
    assert trend.above_trend_c(t0 + FLUSH_TREND_LAG_S + 150, 35.0) is None


def test_trend_state_round_trips_and_damage_is_refused() -> None:
    detector = PatientDetector()
    detector.update(_resting(50))
    state = detector.state_dict()
    assert len(state["skin_trend"]["time_s"]) > 10
    again = PatientDetector()
    again.load_state_dict(state)
    assert again.state_dict() == state
    old = {k: v for k, v in state.items() if k not in ("skin_trend", "flush_trend_since_s")}
    upgraded = PatientDetector()
    upgraded.load_state_dict(old)  # saved by 1.10: the trend starts empty
    assert upgraded.skin_trend == SkinTrend()
    for damage in (
        {"time_s": [1.0], "temp_c": [], "hr_bpm": []},
        {"time_s": [1.0], "temp_c": [math.nan], "hr_bpm": [70.0]},
    ):
        broken = dict(state, skin_trend=damage)
        with pytest.raises(ModelError, match="does not fit"):
            PatientDetector().load_state_dict(broken)
