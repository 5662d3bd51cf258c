"""Comparing detection profiles on one patient's own recording (models.profile_comparison)."""

from __future__ import annotations

import io
import json

import pytest

from flarewatch.payloads import Sample
from models.alarm import AlarmKind, Severity, is_onset
from models.bank import DetectorBank
from models.datasets import load_fitbit
from models.detector import PatientDetector
from models.profile_comparison import (
    ReviewedEpisode,
    compare_profiles,
    comparison_json,
    write_comparison,
)
from models.profiles import DetectionProfile
from models.replay import chunk_by_time, replay
from tests.test_models_detector import T0, make_samples


def rules_bank() -> DetectorBank:
    return DetectorBank(PatientDetector())


def test_every_profile_raises_what_its_own_replay_raises_on_real_free_living_data() -> None:
    """Two weeks of a real Fitbit wearer: one shared replay gives each profile's own alarms."""
    [recording] = load_fitbit(split="tuning", limit=1, max_days=14)
    samples = list(recording.samples(recording.frame))
    comparison = compare_profiles(rules_bank(), chunk_by_time(samples, 300.0))
    for profile in DetectionProfile:
        alone = rules_bank()
        alone.set_profile("alone", profile)
        expected = [
            (a.time_s, a.kind, a.severity) for a in replay(alone, "alone", samples) if is_onset(a)
        ]
        got = [(a.time_s, a.kind, a.severity) for a in comparison.runs[profile].onsets]
        assert got == expected, profile
    counts = {p: len(run.onsets) for p, run in comparison.runs.items()}
    assert counts[DetectionProfile.SENSITIVE] > counts[DetectionProfile.BALANCED]
    assert counts[DetectionProfile.BALANCED] > counts[DetectionProfile.QUIET]
    assert comparison.samples == len(samples)
    assert comparison.worn_days == pytest.approx(recording.days)
    rows = {row.profile: row for row in comparison.rows()}
    assert rows[DetectionProfile.BALANCED].per_worn_day == pytest.approx(
        counts[DetectionProfile.BALANCED] / recording.days
    )


def test_labelled_episodes_score_each_profile() -> None:
    """A +30 % surge at rest: the sensitive profile finds it first, the quiet one last."""
    samples = make_samples(60, surge_at_min=25, surge_frac=0.3)
    comparison = compare_profiles(rules_bank(), chunk_by_time(samples, 300.0))
    first = {p: run.onsets[0].time_s for p, run in comparison.runs.items()}
    assert (
        first[DetectionProfile.SENSITIVE]
        < first[DetectionProfile.BALANCED]
        < first[DetectionProfile.QUIET]
    )
    # the patient had the balanced alarm; a care team labelled it, and an earlier false alarm
    had = first[DetectionProfile.BALANCED]
    episodes = [
        ReviewedEpisode(AlarmKind.ANAPHYLAXIS, had, had + 20 * 60, reaction=True),
        ReviewedEpisode(AlarmKind.ANAPHYLAXIS, T0 + 16 * 60, T0 + 19 * 60, reaction=False),
        ReviewedEpisode(AlarmKind.FLUSH, had, had + 20 * 60, reaction=True),
    ]
    rows = {row.profile: row for row in comparison.rows(episodes)}
    sensitive, balanced, quiet = (
        rows[DetectionProfile.SENSITIVE],
        rows[DetectionProfile.BALANCED],
        rows[DetectionProfile.QUIET],
    )
    assert (balanced.reactions, balanced.reactions_found) == (2, 1)  # no flush in any profile
    assert balanced.median_shift_s == 0.0
    assert sensitive.median_shift_s == pytest.approx(first[DetectionProfile.SENSITIVE] - had)
    assert sensitive.median_shift_s is not None and sensitive.median_shift_s < 0
    assert quiet.median_shift_s is not None and quiet.median_shift_s > 0
    assert all((r.false_alarms, r.false_alarms_raised) == (1, 0) for r in rows.values())
    assert balanced.per_worn_day is None, "an hour of wear gives no rate per day"

    out = io.StringIO()
    write_comparison(comparison, episodes, out, current=DetectionProfile.BALANCED)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[0] == "profile" and "reactions found" in lines[0]
    assert lines[2].startswith("balanced *") and "1/2" in lines[2] and "+0.0 min" in lines[2]
    assert "1.0 h of wear" in lines[-1]
    data = json.loads(json.dumps(comparison_json(comparison, episodes)))
    assert [p["profile"] for p in data["profiles"]] == [p.value for p in DetectionProfile]
    assert data["samples"] == len(samples)


def test_a_surge_more_than_the_match_window_before_an_episode_is_not_credited() -> None:
    samples = make_samples(60, surge_at_min=25, surge_frac=0.4)
    comparison = compare_profiles(
        rules_bank(), chunk_by_time(samples, 300.0), profiles=[DetectionProfile.BALANCED]
    )
    [alarm] = comparison.runs[DetectionProfile.BALANCED].onsets
    assert alarm.severity in (Severity.WARNING, Severity.CRITICAL)
    late = ReviewedEpisode(AlarmKind.ANAPHYLAXIS, alarm.time_s + 16 * 60, None, reaction=True)
    near = ReviewedEpisode(AlarmKind.ANAPHYLAXIS, alarm.time_s + 14 * 60, None, reaction=True)
    [row] = comparison.rows([late, near])
    assert (row.reactions, row.reactions_found) == (2, 1)


def test_one_alarm_counts_for_one_episode_and_an_unclosed_episode_ends() -> None:
    samples = make_samples(60, surge_at_min=25, surge_frac=0.4)
    comparison = compare_profiles(
        rules_bank(), chunk_by_time(samples, 300.0), profiles=[DetectionProfile.BALANCED]
    )
    [alarm] = comparison.runs[DetectionProfile.BALANCED].onsets
    kind = AlarmKind.ANAPHYLAXIS
    # two labelled episodes close together: both windows hold the one alarm, the first takes it
    first = ReviewedEpisode(kind, alarm.time_s - 60, alarm.time_s + 60, reaction=True)
    second = ReviewedEpisode(kind, alarm.time_s + 5 * 60, None, reaction=False)
    [row] = comparison.rows([second, first])
    assert (row.reactions_found, row.false_alarms_raised) == (1, 0)
    # an episode never closed lasted at most MAX_EPISODE_S: an alarm 3 h on is not its own
    stale = ReviewedEpisode(kind, alarm.time_s - 3 * 3600, None, reaction=True)
    [row] = comparison.rows([stale])
    assert (row.reactions, row.reactions_found) == (1, 0)


def test_wear_counts_no_gap_of_an_hour_or_more() -> None:
    def at(minute: float) -> Sample:
        return Sample(seq=int(minute), time_ms=int((T0 + minute * 60) * 1000), heart_rate_bpm=70.0)

    batches = [[at(0), at(10)], [], [at(20)], [at(90)], [at(100)]]  # 70 min gap: not wear
    comparison = compare_profiles(rules_bank(), batches, profiles=[DetectionProfile.QUIET])
    assert comparison.worn_s == pytest.approx(30 * 60)
    assert (comparison.first_s, comparison.last_s) == (T0, T0 + 100 * 60)
    assert comparison.samples == 5


def test_no_profile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one detection profile"):
        compare_profiles(rules_bank(), [], profiles=[])
