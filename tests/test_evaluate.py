"""Evaluation harness on a small subset of the real recordings, injection model, artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pytest

from flarewatch.cli import main
from models.alarm import Alarm, AlarmKind, Severity, is_onset
from models.artifacts import (
    ARTIFACT_DIR,
    CONFIRMER_FILE,
    default_bank,
    load_confirmer,
    save_confirmer,
)
from models.confirm import Confirmer
from models.confounders import confounders_at, context_exposure_days
from models.const import (
    EVAL_SIGNAL_LONG_S,
    INJECT_FLUSH_TEMP_RISE_C,
    INJECT_SURGE_HR_RISE_FRAC,
    MODEL_VERSION,
    TRADEOFF_SURGE_SETTINGS,
)
from models.datasets import Recording, load_fitbit, load_stress_predict
from models.errors import ArtifactError
from models.evaluation import (
    STRESS_COPIES,
    EpisodeOutcome,
    EvaluationResult,
    FalseAlarm,
    episode_window,
    evaluate_stress,
    evaluation_streams,
    record_false_alarms,
    replay_with_snapshots,
)
from models.evaluation_cli import rules_only_bank
from models.injection import Episode, draw_episode, inject
from models.metrics import false_alarm_table, markdown_report, summary, wearer_table
from models.onsets import fitbit_onsets
from models.recording import iter_samples
from models.replay import replay
from models.tradeoff import tradeoff_point
from models.uncertainty import subject_intervals
from service.alerts.const import DEFAULT_SIGNAL_WINDOW_S


def test_splits_are_disjoint_and_cover_every_subject() -> None:
    tuning = {r.subject for r in load_stress_predict(split="tuning")}
    holdout = {r.subject for r in load_stress_predict(split="holdout")}
    assert not tuning & holdout and len(tuning | holdout) == 35
    fitbit_t = {r.subject for r in load_fitbit(split="tuning", max_days=1)}
    fitbit_h = {r.subject for r in load_fitbit(split="holdout", max_days=1)}
    assert not fitbit_t & fitbit_h and len(fitbit_t | fitbit_h) == 8
    # a limit of 0 loads nothing (it used to load one session, which shifted the seeded episodes)
    assert load_stress_predict(split="tuning", limit=0) == []
    assert load_fitbit(split="tuning", limit=0) == []
    assert [r.subject for r in load_stress_predict(split="holdout", limit=2)] == ["S02", "S04"]


def test_fitbit_steps_are_stamped_when_known() -> None:
    recording = load_fitbit(split="tuning", limit=1, max_days=2)[0]
    frame = recording.frame
    steps = frame[frame["steps"].notna()]
    assert len(steps) and (steps["time_s"] % 60 == 0).all()
    assert frame["time_s"].is_monotonic_increasing and 1.5 < recording.days <= 2.0


@pytest.mark.parametrize("kind", [AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS])
def test_injection_changes_only_the_episode_and_stays_in_documented_ranges(
    kind: AlarmKind,
) -> None:
    frame = load_stress_predict(split="tuning", limit=1)[0].frame
    rng = np.random.default_rng(1)
    onset = float(frame["time_s"].iloc[0] + 1500)
    episode = draw_episode(rng, kind, onset)
    out = inject(frame, [episode], rng)
    outside = (frame["time_s"] < onset) | (frame["time_s"] >= episode.end_s)
    assert out[outside].equals(frame[outside])
    ratio = (out["hr_bpm"] / frame["hr_bpm"]).max()
    assert ratio == pytest.approx(1 + episode.hr_rise_frac, rel=1e-3)
    if kind is AlarmKind.FLUSH:
        low, high = INJECT_FLUSH_TEMP_RISE_C
        assert low <= (out["skin_temp_c"] - frame["skin_temp_c"]).max() <= high
    else:
        assert INJECT_SURGE_HR_RISE_FRAC[0] <= episode.hr_rise_frac <= INJECT_SURGE_HR_RISE_FRAC[1]
    assert frame.equals(load_stress_predict(split="tuning", limit=1)[0].frame)  # not mutated


def test_evaluate_cli_on_a_subset_is_reproducible_and_writes_the_report(tmp_path: Path) -> None:
    args = [
        "evaluate",
        "--split",
        "holdout",
        "--max-sessions",
        "3",
        "--max-fitbit-days",
        "4",
        "--seed",
        "7",
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    first = json.loads((tmp_path / "a" / "evaluation-holdout.json").read_text())
    second = json.loads((tmp_path / "b" / "evaluation-holdout.json").read_text())
    assert first == second
    assert first["stress_predict"]["sessions"] == 3
    assert 10 < first["fitbit"]["patient_days"] <= 16
    assert first["anaphylaxis"]["episodes"] > 10
    # with a documented surge of 20-60 % at rest, most injected episodes are found
    assert first["anaphylaxis"]["sensitivity"] >= 0.6
    low, high = first["ci95"]["anaphylaxis_sensitivity"]
    assert low <= first["anaphylaxis"]["sensitivity"] <= high
    report = (tmp_path / "a" / "evaluation-holdout.md").read_text()
    assert "| anaphylaxis: all |" in report and "False alarms" in report
    # one row per wearer, in the report and the JSON, adding up to the pooled figures
    wearers = first["wearers"]
    assert len(wearers) == 3 + len({w["subject"] for w in wearers if w["unit"] == "patient-days"})
    assert sum(w["anaphylaxis"]["episodes"] for w in wearers) == first["anaphylaxis"]["episodes"]
    assert (
        sum(w["false_alarms"] for w in wearers if w["unit"] == "sessions")
        == (first["stress_predict"]["false_alarms"])
    )
    assert "### Per wearer" in report and f"| {wearers[0]['subject']} |" in report
    for plot in ("examples", "delays", "wearers"):
        png = tmp_path / "a" / "img" / f"evaluation-holdout-{plot}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_released_artifact_loads_and_matches_these_rules() -> None:
    confirmer = load_confirmer(ARTIFACT_DIR / CONFIRMER_FILE)
    assert default_bank().model_version == f"{MODEL_VERSION}+{confirmer.version}"
    assert (ARTIFACT_DIR / "MODEL_CARD.md").read_text().count(MODEL_VERSION) >= 1


def test_artifact_round_trip_and_refusals(tmp_path: Path) -> None:
    released = load_confirmer(ARTIFACT_DIR / CONFIRMER_FILE)
    path = tmp_path / "c.skops"
    save_confirmer(Confirmer(released.models, "test-1", 0.3), path, {"note": "test"})
    again = load_confirmer(path)
    assert again.version == "test-1" and again.threshold == 0.3
    assert default_bank(confirmer_path=path).model_version.endswith("+test-1")
    with pytest.raises(ArtifactError, match="file not found"):
        load_confirmer(tmp_path / "absent.skops")
    garbage = tmp_path / "bad.skops"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_confirmer(garbage)


def test_each_fitbit_episode_starts_from_the_untouched_state() -> None:
    recording = load_fitbit(split="tuning", limit=1, max_days=3)[0]
    frame = recording.frame
    cuts = fitbit_onsets(frame, np.random.default_rng(5))[:2]  # at rest, after 30 min of wear
    assert len(cuts) == 2
    whole, snapshots = replay_with_snapshots(
        rules_only_bank(), recording, frame, cuts, progress=lambda n: None
    )
    _, reversed_snapshots = replay_with_snapshots(
        rules_only_bank(), recording, frame, cuts[::-1], progress=lambda n: None
    )
    assert reversed_snapshots == snapshots[::-1]
    for cut, snapshot in zip(cuts, snapshots, strict=True):
        prefix = rules_only_bank()
        replay(prefix, recording.subject, iter_samples(frame[frame["time_s"] < cut]))
        assert snapshot == prefix.state_dict()
    # snapshots do not disturb the replay: the same alarms as one uninterrupted pass
    plain = replay(rules_only_bank(), recording.subject, iter_samples(frame))
    assert [(a.time_s, a.kind, a.severity) for a in whole if is_onset(a)] == [
        (a.time_s, a.kind, a.severity) for a in plain if is_onset(a)
    ]
    # an episode injected at a cut replays from that snapshot and is detected there
    episode = Episode(
        kind=AlarmKind.ANAPHYLAXIS,
        onset_s=cuts[1],
        hr_rise_frac=0.6,
        temp_rise_c=0.0,
        rise_s=60.0,
        plateau_s=20 * 60.0,
        decay_s=5 * 60.0,
        syncope_after_s=None,
    )
    window = episode_window(frame, episode)
    assert window["time_s"].min() >= cuts[1] and window["time_s"].max() <= episode.end_s + 300
    bank = rules_only_bank()
    bank.load_state_dict(snapshots[1])
    alarms = replay(
        bank, recording.subject, iter_samples(inject(window, [episode], np.random.default_rng(3)))
    )
    assert any(is_onset(a) and a.kind is AlarmKind.ANAPHYLAXIS for a in alarms)


def test_tradeoff_curve_orders_eager_and_strict_settings(tmp_path: Path) -> None:
    fitbit = load_fitbit(split="tuning", limit=2, max_days=6)
    eager = tradeoff_point((0.10, 0.10, 10.0), fitbit, 7, progress=lambda n: None)
    strict = tradeoff_point((0.20, 0.30, 100.0), fitbit, 7, progress=lambda n: None)
    assert eager.episodes == strict.episodes > 5  # the same seeded episodes for every setting
    assert eager.false_alarms > strict.false_alarms
    assert eager.sensitivity > strict.sensitivity
    assert eager.median_delay_min is not None and strict.median_delay_min is not None
    assert eager.median_delay_min < strict.median_delay_min
    # a band without step counting meets the same episodes but cannot tell walking from a surge
    blind = tradeoff_point(
        (0.10, 0.10, 10.0), [r.without(["steps"]) for r in fitbit], 7, progress=lambda n: None
    )
    assert blind.episodes == eager.episodes
    assert blind.false_alarms > 2 * eager.false_alarms
    assert (
        main(
            [
                "evaluate",
                "--tradeoff",
                "--split",
                "tuning",
                "--max-fitbit-days",
                "2",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    table = (tmp_path / "evaluation-tuning-tradeoff.md").read_text()
    assert table.count("frac·s |") == len(TRADEOFF_SURGE_SETTINGS)
    assert table.count("calibrated to 0.2 / day |") == 1  # the 'personal' profile's point
    png = tmp_path / "img" / "evaluation-tuning-tradeoff.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def _outcome(source: str, subject: str, detected: bool) -> EpisodeOutcome:
    episode = draw_episode(np.random.default_rng(0), AlarmKind.ANAPHYLAXIS, 0.0)
    return EpisodeOutcome(
        source, subject, episode, detected, 60.0 if detected else None, False, None, {}
    )


@pytest.mark.parametrize("source", ["fitbit", "own"])
def test_intervals_resample_subjects_not_episodes(source: str) -> None:
    """Also for one's own recordings, whose wearers' days are not Fitbit days."""
    result = EvaluationResult(day_source=source)
    # one wearer catches everything, the other nothing: 100 episodes each
    result.outcomes += [_outcome(source, "calm", True) for _ in range(100)]
    result.outcomes += [_outcome(source, "noisy", False) for _ in range(100)]
    result.exposure_days.update(calm=10.0, noisy=10.0)
    result.false_alarms += [
        FalseAlarm(
            source, "noisy", Alarm("noisy", 0.0, AlarmKind.ANAPHYLAXIS, Severity.WARNING, "v"), {}
        )
        for _ in range(4)
    ]
    ci = subject_intervals(result, seed=1, resamples=400)
    # an episode bootstrap would give about 0.43-0.57; two wearers can be both calm or both not
    assert ci["anaphylaxis_sensitivity"] == [0.0, 1.0]
    assert ci[f"{source}_false_alarms_per_day"] == [0.0, 0.4]
    single = EvaluationResult(outcomes=result.outcomes[:100], day_source=source)
    assert subject_intervals(single, seed=1, resamples=50)["anaphylaxis_sensitivity"] == [1.0, 1.0]


def test_per_wearer_table_shows_who_makes_the_alarms() -> None:
    result = EvaluationResult()
    result.outcomes += [_outcome("fitbit", "calm", True) for _ in range(3)]
    result.outcomes += [_outcome("fitbit", "noisy", False) for _ in range(2)]
    result.exposure_days.update(calm=10.0, noisy=5.0)
    result.sessions["S02"] = 1
    alarm = Alarm("x", 0.0, AlarmKind.FLUSH, Severity.WARNING, "v")
    result.false_alarms += [FalseAlarm("fitbit", "noisy", alarm, {}) for _ in range(2)]
    result.false_alarms.append(FalseAlarm("stress_predict", "S02", alarm, {}))
    rows = {row.subject: row for row in wearer_table(result)}
    assert set(rows) == {"calm", "noisy", "S02"}
    assert rows["calm"].anaphylaxis.sensitivity == 1.0
    assert rows["calm"].anaphylaxis.median_delay_s == 60.0
    assert rows["calm"].per_unit == 0.0
    assert rows["noisy"].anaphylaxis.detected == 0 and rows["noisy"].per_unit == 0.4
    assert rows["S02"].flush.episodes == 0 and rows["S02"].per_unit == 1.0
    report = markdown_report(result, "## test")
    assert "| Fitbit free-living | noisy | 0/2 (0.00), - | - | 2 | 5.00 patient-days | 0.400 |" in (
        report
    )
    assert "| stress-predict (E4) | S02 | - | - | 1 | 1.00 sessions | 1.000 |" in report


def test_a_band_without_a_sensor_meets_the_same_episodes_without_its_signal(
    tmp_path: Path,
) -> None:
    session = load_stress_predict(limit=1)[0]
    bare = session.without(["skin-temp", "motion"])
    samples = list(bare.samples(session.frame))
    assert len(samples) == len(session.frame)
    assert all(s.skin_temperature_c is None and s.acceleration_sd_g is None for s in samples)
    assert sum(s.heart_rate_bpm is not None for s in samples) == session.frame["hr_bpm"].count()
    assert bare.frame is session.frame  # episodes are still placed on the whole recording

    args = ["evaluate", "--split", "holdout", "--max-sessions", "2", "--max-fitbit-days", "2"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert main([*args, "--without", "skin-temp", "--out", str(tmp_path)]) == 0
    full = json.loads((tmp_path / "evaluation-holdout.json").read_text())
    no_temp = json.loads((tmp_path / "evaluation-holdout-without-skin-temp.json").read_text())
    assert no_temp["without"] == ["skin-temp"] and full["without"] == []
    assert no_temp["flush"]["episodes"] == full["flush"]["episodes"] > 0
    assert full["flush"]["sensitivity"] > 0.5
    # a flush is skin warming: a band without a thermometer reports none
    assert no_temp["flush"]["sensitivity"] == 0.0
    assert no_temp["anaphylaxis"]["episodes"] == full["anaphylaxis"]["episodes"]
    assert (
        "band without skin-temp"
        in (tmp_path / "evaluation-holdout-without-skin-temp.md").read_text()
    )


LABELLED_ONSET: Final = {
    "episode": "0123456789abcdef",
    "subject": "0123456789abcdef",
    "label": "reaction",
    "kind": "anaphylaxis",
    "time_s": 1_764_000_000.0,
    "severity": "critical",
    "model_version": f"{MODEL_VERSION}+confirm-20261125",
    "evidence": {"surge_score": 80.0, "onset": 1.0},
}
"""One record of ``admin episode export-labels``: a reaction's onset, as the trainer reads it."""


def test_train_with_labelled_real_episodes_records_them_on_the_model_card(
    tmp_path: Path,
) -> None:
    record = LABELLED_ONSET
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        json.dumps(record) + "\n" + json.dumps({**record, "label": "false_alarm"}) + "\n"
    )
    model = tmp_path / "model" / "confirmer.skops"
    args = ["evaluate", "--split", "holdout", "--max-sessions", "2", "--max-fitbit-days", "2"]
    assert main([*args, "--labels", str(labels), "--out", str(tmp_path)]) == 2  # needs --train
    assert not model.exists()
    assert (
        main(
            [
                *args,
                "--train",
                "--labels",
                str(labels),
                "--model",
                str(model),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    card = (model.parent / "MODEL_CARD.md").read_text()
    assert "## Real labelled episodes" in card and "2 onsets used" in card
    assert (
        "+confirm-20261125-labelled"
        in json.loads((tmp_path / "evaluation-holdout.json").read_text())["model_version"]
    )


def test_context_rates_divide_by_the_time_spent_in_that_context() -> None:
    day0 = 1_764_028_800.0  # a midnight
    times = np.arange(day0, day0 + 3 * 86_400, 60.0)
    steps = np.where((times >= day0 + 10 * 3600) & (times < day0 + 10 * 3600 + 600), 80.0, np.nan)
    frame = pd.DataFrame({"time_s": times, "hr_bpm": 60.0, "steps": steps})
    days = context_exposure_days(frame)
    total = Recording("fitbit", "u", frame).days
    for name in ("time", "exercise", "steps"):
        assert sum(v for k, v in days.items() if k.startswith(f"{name} = ")) == pytest.approx(total)
    assert days["time = night"] == pytest.approx(total * 6 / 24, rel=0.01)
    # steps only 10:00-10:10 on day 0: none for a day before them (10 h, no history) and from
    # 10:10 on day 1 to the end (1 d 13 h 50 min): all but the 24 h 10 min after them
    assert days["steps = none for a day"] == pytest.approx(3 - 1 - 10 / 1440, abs=0.002)
    assert confounders_at(Recording("fitbit", "u", frame), frame, day0 + 2 * 86_400)["steps"] == (
        "none for a day"
    )
    result = EvaluationResult(exposure_days={"u": total}, context_days=days)
    alarm = Alarm("u", day0 + 2 * 86_400, AlarmKind.ANAPHYLAXIS, Severity.WARNING, "v")
    result.false_alarms.append(FalseAlarm("fitbit", "u", alarm, {"steps": "none for a day"}))
    [row] = [r for r in false_alarm_table(result) if r["group"].endswith("none for a day")]
    assert row["per_unit"] == pytest.approx(1 / days["steps = none for a day"], rel=0.01)


def test_more_flush_copies_leave_the_surge_episodes_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions = load_stress_predict(split="tuning", limit=2)

    def episodes(flush_copies: int) -> tuple[list[Episode], list[Episode]]:
        monkeypatch.setitem(STRESS_COPIES, AlarmKind.FLUSH, flush_copies)
        result = EvaluationResult()
        stress_rng, _ = evaluation_streams(11)
        evaluate_stress(rules_only_bank, sessions, stress_rng, result, lambda n: None)
        drawn = [o.episode for o in result.outcomes]
        return (
            [e for e in drawn if e.kind is AlarmKind.FLUSH],
            [e for e in drawn if e.kind is AlarmKind.ANAPHYLAXIS],
        )

    few_flushes, surges = episodes(1)
    more_flushes, same_surges = episodes(3)
    assert len(few_flushes) == 2 and len(more_flushes) == 6
    assert more_flushes[0] == few_flushes[0]  # the first session's first copy
    assert same_surges == surges and len(surges) == 2 * STRESS_COPIES[AlarmKind.ANAPHYLAXIS]


def test_signal_states_are_counted_apart_with_how_long_they_last() -> None:
    frame = pd.DataFrame({"time_s": np.arange(0.0, 7200.0, 60.0), "phase": "relax"})
    recording = Recording("stress_predict", "S99", frame)
    alarms = [
        Alarm("S99", 600.0, AlarmKind.NO_DATA, Severity.WARNING, "v"),
        Alarm("S99", 900.0, AlarmKind.NO_DATA, Severity.WARNING, "v", resolved=True),
        Alarm("S99", 1000.0, AlarmKind.FLUSH, Severity.WARNING, "v", evidence={"onset": 1.0}),
        Alarm("S99", 1200.0, AlarmKind.NO_DATA, Severity.WARNING, "v"),
        Alarm("S99", 3000.0, AlarmKind.NO_DATA, Severity.WARNING, "v", resolved=True),
        Alarm("S99", 6000.0, AlarmKind.NO_CONTACT, Severity.WARNING, "v"),  # until the end
    ]
    result = EvaluationResult()
    result.sessions["S99"] = 1
    record_false_alarms(recording, frame, alarms, result)
    assert [fa.alarm.kind for fa in result.false_alarms] == [AlarmKind.FLUSH]
    assert [(s.kind, s.duration_s) for s in result.signal_losses] == [
        (AlarmKind.NO_DATA, 300.0),
        (AlarmKind.NO_DATA, 1800.0),
        (AlarmKind.NO_CONTACT, 7140.0 - 6000.0),
    ]
    report = markdown_report(result, "## test")
    assert "### Signal states on the untouched recordings" in report
    assert "| stress-predict (E4) | no_data | 2 | 2.00 / session | 17.5 | 1 | 1.00 |" in report
    states = summary(result)["signal_states"]
    assert [(s["kind"], s["alarms"], s["lasting_10_min"]) for s in states] == [
        ("no_contact", 1, 1),
        ("no_data", 2, 1),
    ]


def test_the_long_signal_loss_of_the_report_is_the_services_signal_window() -> None:
    assert EVAL_SIGNAL_LONG_S == DEFAULT_SIGNAL_WINDOW_S
