"""``flarewatch evaluate --recordings DIR [--episodes EPISODES.csv]``: your own recordings.

Recordings are built at test time from short slices of data/recordings, written as replay CSVs.
S02 (held out) raises one real flush alarm 48 min in; S04 raises nothing.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flarewatch.cli import main
from models.alarm import AlarmKind, is_onset
from models.artifacts import default_bank
from models.const import EVAL_LABELLED_DEFAULT_LENGTH_S, EVAL_MATCH_AFTER_END_S
from models.datasets import load_fitbit, load_stress_predict
from models.injection import Episode, inject
from models.own_evaluation import plan_injections
from models.recording import iter_samples
from models.replay import replay

SURGE = Episode(AlarmKind.ANAPHYLAXIS, 0.0, 90.0, 15 * 60.0, 300.0, 0.5, 0.0, None)
"""A +50 % surge at rest (onset set per test), no syncope: any detector worth its name finds it."""


@cache
def _sessions() -> dict[str, pd.DataFrame]:
    """The first held-out stress-predict sessions (S02, S04) as replay frames."""
    return {
        r.subject: r.frame.drop(columns="phase")
        for r in load_stress_predict(split="holdout", limit=2)
    }


def session(subject: str) -> pd.DataFrame:
    """A copy of one session's frame (time_s, hr_bpm, skin_temp_c, acc_g, acc_sd_g)."""
    return _sessions()[subject].copy()


def at(frame: pd.DataFrame, minutes: float) -> float:
    """The epoch time ``minutes`` into ``frame``."""
    return float(frame["time_s"].iloc[0]) + minutes * 60.0


def write(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def episodes_file(path: Path, *lines: str) -> Path:
    path.write_text("subject,onset_s,end_s,kind\n" + "".join(f"{line}\n" for line in lines))
    return path


def evaluate(folder: Path, out: Path, *extra: str) -> dict[str, Any]:
    """Run the command; its JSON report."""
    code = main(["evaluate", "--recordings", str(folder), "--out", str(out), *extra])
    assert code == 0
    report: dict[str, Any] = json.loads((out / "evaluation-own.json").read_text())
    return report


def wearer(report: dict[str, Any], part: str, subject: str) -> dict[str, Any]:
    records: list[dict[str, Any]] = report[part]["wearers"]
    (record,) = [w for w in records if w["subject"] == subject]
    return record


def test_a_labelled_surge_is_found_and_a_label_on_quiet_data_is_missed(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    frame = session("S04")
    onset = at(frame, 30)
    surge = dataclasses.replace(SURGE, onset_s=onset)
    write(recordings, "surged.csv", inject(frame, [surge], np.random.default_rng(0)))
    write(recordings, "quiet.csv.gz", frame)  # the same minutes, untouched
    labels = episodes_file(
        tmp_path / "episodes.csv",
        f"surged,{onset},{surge.end_s},anaphylaxis",
        f"quiet,{onset},,anaphylaxis",  # no end: the documented default length
    )
    report = evaluate(recordings, tmp_path / "out", "--episodes", str(labels), "--no-inject")
    found = wearer(report, "real", "surged")["anaphylaxis"]
    assert found["episodes"] == 1 and found["detected"] == 1
    assert 0.0 < found["median_delay_min"] <= 10.0
    missed = wearer(report, "real", "quiet")["anaphylaxis"]
    assert missed["episodes"] == 1 and missed["detected"] == 0
    assert report["real"]["anaphylaxis"]["episodes"] == 2
    assert report["real"]["anaphylaxis"]["sensitivity"] == 0.5
    assert report["real"]["flush"] == {
        "episodes": 0,
        "detected": 0,
        "other_kind": 0,
        "sensitivity": None,
        "sensitivity_ci95": None,
        "median_delay_min": None,
        "p90_delay_min": None,
    }
    assert report["injected"] is None
    # exposure is the time covered by data outside the labelled windows
    window_days = (EVAL_LABELLED_DEFAULT_LENGTH_S + EVAL_MATCH_AFTER_END_S) / 86_400
    quiet_days = wearer(report, "real", "quiet")["exposure"]
    assert quiet_days == pytest.approx(55 / 1440 - window_days, abs=0.01)
    text = (tmp_path / "out" / "evaluation-own.md").read_text()
    assert "### Real labelled episodes" in text and "Not run (`--no-inject`)" in text
    assert (tmp_path / "out" / "img" / "evaluation-own-real-examples.png").stat().st_size > 0


def test_false_alarms_are_counted_outside_the_labelled_windows(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    frame = session("S02")
    write(recordings, "s02.csv", frame)
    alarms = replay(default_bank(), "s02", iter_samples(frame))
    (flush,) = [a.time_s for a in alarms if is_onset(a)]  # the real warming 48 min in
    unlabelled = evaluate(recordings, tmp_path / "none", "--no-inject")
    assert unlabelled["real"]["false_alarms"]["false_alarms"] == 1
    assert unlabelled["real"]["false_alarms"]["by_kind"]["flush"]["false_alarms"] == 1
    days = unlabelled["real"]["false_alarms"]["patient_days"]
    assert unlabelled["real"]["false_alarms"]["per_patient_day"] == pytest.approx(1 / days, 1e-2)

    elsewhere = episodes_file(tmp_path / "elsewhere.csv", f"s02,{at(frame, 5)},,flush")
    report = evaluate(
        recordings, tmp_path / "elsewhere", "--episodes", str(elsewhere), "--no-inject"
    )
    assert report["real"]["false_alarms"]["false_alarms"] == 1
    assert report["real"]["flush"]["sensitivity"] == 0.0
    assert report["real"]["false_alarms"]["patient_days"] < days

    covering = episodes_file(tmp_path / "covering.csv", f"s02,{flush - 120},{flush + 60},flush")
    report = evaluate(recordings, tmp_path / "covering", "--episodes", str(covering), "--no-inject")
    assert report["real"]["false_alarms"]["false_alarms"] == 0
    assert report["real"]["flush"]["sensitivity"] == 1.0
    assert report["real"]["flush"]["median_delay_min"] == pytest.approx(2.0, abs=0.01)


def test_injected_episodes_are_reported_apart_and_reproducible_from_the_seed(
    tmp_path: Path,
) -> None:
    recordings = tmp_path / "recordings"
    write(recordings, "fitbit.csv", load_fitbit(split="holdout", limit=1, max_days=1)[0].frame)
    write(recordings, "e4.csv", session("S04"))
    first = evaluate(recordings, tmp_path / "a", "--seed", "3")
    again = evaluate(recordings, tmp_path / "b", "--seed", "3")
    other = evaluate(recordings, tmp_path / "c", "--seed", "4")
    assert first == again
    assert first["injected"] != other["injected"]
    assert set(first) == {
        "model_version",
        "profile",
        "seed",
        "without",
        "episodes_file",
        "injected_episodes",
        "recordings",
        "real",
        "injected",
    }
    assert set(first["real"]) == {
        "flush",
        "anaphylaxis",
        "false_alarms",
        "signal_states",
        "wearers",
        "episodes",
    }
    assert set(first["injected"]) == {"flush", "anaphylaxis", "wearers"}
    assert set(first["injected"]["anaphylaxis"]) == {
        "episodes",
        "sensitivity",
        "median_delay_min",
        "p90_delay_min",
    }
    assert set(first["real"]["anaphylaxis"]) == {
        *first["injected"]["anaphylaxis"],
        "detected",
        "other_kind",
        "sensitivity_ci95",
    }
    assert first["real"]["anaphylaxis"]["episodes"] == 0  # no labels: nothing real to find
    # one per 8 h of the Fitbit day at rest after warm-up; the 55-min E4 session is too short
    assert first["injected"]["anaphylaxis"]["episodes"] >= 2
    assert wearer(first, "injected", "e4")["anaphylaxis"]["episodes"] == 0
    assert first["injected"]["flush"]["episodes"] == 0  # the Fitbit band has no skin temperature
    assert {r["subject"]: r["file"] for r in first["recordings"]} == {
        "e4": "e4.csv",
        "fitbit": "fitbit.csv",
    }
    images = {p.name for p in (tmp_path / "a" / "img").iterdir()}
    assert {"evaluation-own-examples.png", "evaluation-own-delays.png"} <= images
    text = (tmp_path / "a" / "evaluation-own.md").read_text()
    assert "### Injected episodes (into copies of your recordings)" in text


def test_flushes_are_planned_only_with_skin_temperature_and_never_in_a_labelled_window() -> None:
    first, second = session("S02"), session("S04")
    # two sessions back to back: 2 h of E4 wear, long enough for an onset after warm-up
    second["time_s"] += float(first["time_s"].iloc[-1]) + 1.0 - float(second["time_s"].iloc[0])
    joined = pd.concat([first, second], ignore_index=True)
    plans = [plan_injections(joined, [], seed, "w") for seed in range(8)]
    assert any(p.episodes[AlarmKind.FLUSH] for p in plans)
    for p in plans:
        assert p.episodes.keys() == {AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS}
    no_skin = joined.drop(columns="skin_temp_c")
    assert all(
        AlarmKind.FLUSH not in plan_injections(no_skin, [], s, "w").episodes for s in range(8)
    )
    everywhere = [(float(joined["time_s"].iloc[0]), float(joined["time_s"].iloc[-1]))]
    assert all(not plan_injections(joined, everywhere, s, "w").all() for s in range(8))


BAD_EPISODES = [
    ("nobody,{t},,flush", "line 2: wearer 'nobody' has no recording"),
    ("w1,{t},,hives", "line 2: kind 'hives' is not one of anaphylaxis, flush"),
    ("w1,{early},,flush", "line 2: onset_s"),
    ("w1,{ms},,flush", "looks like milliseconds"),
    ("w1,{t},{before},flush", "line 2: end_s"),
    ("w1,soon,,flush", "line 2: onset_s 'soon' is neither epoch seconds nor an ISO 8601"),
    ("w1,{t},,flush\nw1,{t},,anaphylaxis", "line 3: duplicates line 2"),
    ("w1,{t},{t10},flush\nw1,{t12},,anaphylaxis", "line 3: overlaps line 2"),
]


@pytest.mark.parametrize(("lines", "message"), BAD_EPISODES)
def test_each_mistake_in_the_episodes_file_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: str, message: str
) -> None:
    frame = session("S04")
    write(tmp_path / "recordings", "w1.csv", frame)
    t = at(frame, 20)
    text = lines.format(
        t=t,
        early=at(frame, -60),
        ms=t * 1000,
        before=t - 60,
        t10=t + 600,
        t12=t + 720,
    )
    labels = episodes_file(tmp_path / "episodes.csv", text)
    code = main(
        ["evaluate", "--recordings", str(tmp_path / "recordings"), "--episodes", str(labels)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "episodes.csv" in err and message in err and "Traceback" not in err


def test_an_episodes_file_without_the_columns_or_missing_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "recordings", "w1.csv", session("S04"))
    folder = str(tmp_path / "recordings")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("who,when\nw1,1\n")
    assert main(["evaluate", "--recordings", folder, "--episodes", str(wrong)]) == 1
    assert "line 1: the header lacks subject, onset_s, kind" in capsys.readouterr().err
    missing = tmp_path / "missing.csv"
    assert main(["evaluate", "--recordings", folder, "--episodes", str(missing)]) == 1
    assert "missing.csv: cannot read the episodes" in capsys.readouterr().err


def test_folder_mistakes_are_clear_errors_naming_the_folder_or_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(folder: Path) -> str:
        code = main(["evaluate", "--recordings", str(folder), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err
        return err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty: holds no recording" in run(empty)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.txt").write_text("recordings to come\n")
    assert "notes: holds no recording" in run(notes)
    assert "absent: no such folder" in run(tmp_path / "absent")
    assert "README.txt: is not a folder" in run(notes / "README.txt")
    bad = tmp_path / "bad"
    write(bad, "good.csv", session("S04"))
    (bad / "broken.csv").write_text("when,heart\n1,2\n")
    assert "broken.csv: no 'time_s' column" in run(bad)
    twice = tmp_path / "twice"
    write(twice, "p1.csv", session("S04"))
    write(twice, "p1.csv.gz", session("S04"))
    assert "is wearer 'p1' again" in run(twice)


def test_flags_of_the_bundled_evaluation_are_refused_with_recordings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    write(folder, "w1.csv", session("S04"))
    assert main(["evaluate", "--recordings", str(folder), "--split", "tuning"]) == 2
    assert "--split: for the bundled recordings" in capsys.readouterr().err
    assert main(["evaluate", "--no-inject"]) == 2
    assert "go with --recordings" in capsys.readouterr().err


def test_the_episodes_file_may_sit_in_the_recordings_folder(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "w1.csv", frame)
    labels = episodes_file(folder / "episodes.csv", f"w1,{at(frame, 20)},,flush")
    report = evaluate(folder, tmp_path / "out", "--episodes", str(labels), "--no-inject")
    assert [r["subject"] for r in report["recordings"]] == ["w1"]
    assert report["episodes_file"] == "episodes.csv"


def test_a_recording_without_heart_rate_or_data_around_a_label_still_gets_its_report(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "skin.csv", frame[["time_s", "skin_temp_c"]])
    # two hours without a reading between two halves of the session
    gap = frame.copy()
    gap.loc[gap.index >= len(gap) // 2, "time_s"] += 7200.0
    write(folder, "gap.csv", gap)
    in_gap = float(gap["time_s"].iloc[len(gap) // 2 - 1]) + 3600.0
    labels = episodes_file(
        tmp_path / "episodes.csv",
        f"skin,{at(frame, 20)},,flush",
        f"gap,{in_gap},,anaphylaxis",
    )
    report = evaluate(folder, tmp_path / "out", "--episodes", str(labels))
    assert wearer(report, "real", "skin")["flush"] == {
        "episodes": 1,
        "detected": 0,
        "median_delay_min": None,
    }
    assert wearer(report, "real", "gap")["anaphylaxis"]["detected"] == 0
    assert (tmp_path / "out" / "img" / "evaluation-own-real-examples.png").stat().st_size > 0
