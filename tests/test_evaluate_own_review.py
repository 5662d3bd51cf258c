"""``flarewatch evaluate --recordings``: what a researcher with a list of real reactions meets.

A small case counted by hand (two wearers, known episodes, the exposure summed from the file's
own times, the intervals from tables), the report's line per episode and picture of each, times
as ISO 8601, every mistake of a file named at once, and a report that cannot be written.
"""

from __future__ import annotations

import dataclasses
import gc
import gzip
import itertools
import json
import stat
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flarewatch.cli import main
from models import own_recordings
from models.alarm import is_onset
from models.artifacts import default_bank
from models.datasets import load_fitbit
from models.injection import inject
from models.recording import RecordingQuality, iter_samples
from models.replay import replay
from tests.test_evaluate_own_recordings import (
    SURGE,
    at,
    episodes_file,
    evaluate,
    session,
    wearer,
    write,
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The command's exit code and what it printed on stderr."""
    code = main(["evaluate", *argv])
    return code, capsys.readouterr().err


def _exposure_days(times: list[float], windows: list[tuple[float, float]]) -> float:
    """Seconds each reading closes (gaps of an hour or more are not wear), outside the windows."""
    total = 0.0
    for before, now in itertools.pairwise(times):
        inside = any(start <= now <= stop for start, stop in windows)
        if now - before < 3600 and not inside:
            total += now - before
    return total / 86_400


def test_a_small_case_counted_by_hand(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    quiet = session("S04")
    onset = at(quiet, 30)
    surge = dataclasses.replace(SURGE, onset_s=onset)
    surged = inject(quiet, [surge], np.random.default_rng(0))
    write(folder, "a.csv", surged)
    flushing = session("S02")  # one real warming 48 min in raises a flush alarm
    write(folder, "b.csv.gz", flushing)
    (flush_alarm,) = [a for a in replay(default_bank(), "b", iter_samples(flushing)) if is_onset(a)]
    b_onset = at(flushing, 5)  # labelled on quiet minutes: 5 to 35 min, matched until 40 min
    assert flush_alarm.time_s > b_onset + 40 * 60
    labels = episodes_file(
        tmp_path / "episodes.csv",
        f"a,{onset},{surge.end_s},anaphylaxis",
        f"b,{b_onset},,anaphylaxis",
    )
    report = evaluate(folder, tmp_path / "out", "--episodes", str(labels), "--no-inject")
    real = report["real"]

    # 2 anaphylaxis-like episodes, the surge found: 1/2; Wilson's 95 % interval of 1/2
    assert real["anaphylaxis"]["episodes"] == 2 and real["anaphylaxis"]["detected"] == 1
    assert real["anaphylaxis"]["sensitivity"] == 0.5
    assert real["anaphylaxis"]["sensitivity_ci95"] == [0.095, 0.905]
    assert real["flush"]["episodes"] == 0 and real["flush"]["sensitivity_ci95"] is None

    # the one false alarm is b's flush; exposure from the files' own times, outside the windows
    days = _exposure_days(surged["time_s"].tolist(), [(onset, surge.end_s + 300)]) + _exposure_days(
        flushing["time_s"].tolist(), [(b_onset, b_onset + 35 * 60)]
    )
    alarms = real["false_alarms"]
    assert alarms["false_alarms"] == 1 and alarms["by_kind"]["flush"]["false_alarms"] == 1
    assert alarms["by_kind"]["anaphylaxis"]["false_alarms"] == 0
    assert alarms["patient_days"] == pytest.approx(days, abs=1e-3)
    assert alarms["per_patient_day"] == pytest.approx(1 / days, rel=1e-2)
    # exact Poisson 95 % bounds of a count of 1: 0.0253 and 5.5716 (chi-square tables)
    low, high = alarms["per_patient_day_ci95"]
    assert low == pytest.approx(0.0253 / days, rel=1e-2)
    assert high == pytest.approx(5.5716 / days, rel=1e-2)
    assert alarms["by_kind"]["anaphylaxis"]["per_patient_day_ci95"][1] == pytest.approx(
        3.6889 / days, rel=1e-2
    )  # none seen: -ln(0.025)

    # per wearer and per episode, by the line of the episodes file
    assert wearer(report, "real", "a")["anaphylaxis"]["detected"] == 1
    assert wearer(report, "real", "b")["false_alarms"] == 1
    first, second = real["episodes"]
    assert (first["line"], first["subject"], first["detected"]) == (2, "a", True)
    assert 0 < first["delay_min"] <= 10 and first["hr_readings"] > 0
    assert (second["line"], second["subject"], second["detected"]) == (3, "b", False)
    assert second["delay_min"] is None
    text = (tmp_path / "out" / "evaluation-own.md").read_text()
    assert "| anaphylaxis sensitivity | 1/2 | 0.500 | 0.095 to 0.905 |" in text
    assert "| 3 | b | anaphylaxis |" in text and "| no | - |" in text


def test_every_labelled_episode_gets_its_line_and_its_picture(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "w1.csv", frame)
    gap = frame.copy()
    gap.loc[gap.index >= len(gap) // 2, "time_s"] += 7200.0
    write(folder, "w2.csv", gap)
    in_gap = float(gap["time_s"].iloc[len(gap) // 2 - 1]) + 3600.0
    lines = [
        f"w1,{at(frame, minutes)},{at(frame, minutes + 1)},flush" for minutes in range(5, 50, 8)
    ]
    labels = episodes_file(tmp_path / "episodes.csv", *lines, f"w2,{in_gap},,anaphylaxis")
    out = tmp_path / "out"
    stale = out / "img" / "evaluation-own-real-episodes" / "line-99.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier run's picture")
    report = evaluate(folder, out, "--episodes", str(labels), "--no-inject")
    records = report["real"]["episodes"]
    assert [r["line"] for r in records] == list(range(2, 2 + len(lines) + 1))
    for record in records[:-1]:
        assert (out / record["image"]).stat().st_size > 0  # more than the overview's four
    assert records[-1]["hr_readings"] == 0 and records[-1]["image"] is None
    assert not stale.exists()
    text = (out / "evaluation-own.md").read_text()
    assert "no heart rate" in text and "(img/evaluation-own-real-episodes/line-7.png)" in text


def test_times_may_be_iso_8601_with_their_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    frame = session("S02")
    write(folder, "w1.csv", frame)
    onset = at(frame, 45)
    utc = pd.Timestamp(onset, unit="s", tz="UTC")
    paris = utc.tz_convert("Europe/Paris").isoformat()
    labels = episodes_file(
        tmp_path / "iso.csv", f"w1,{paris},{(utc + pd.Timedelta(minutes=20)).isoformat()},flush"
    )
    iso = evaluate(folder, tmp_path / "iso", "--episodes", str(labels), "--no-inject")
    labels = episodes_file(tmp_path / "epoch.csv", f"w1,{onset},{onset + 1200},flush")
    epoch = evaluate(folder, tmp_path / "epoch", "--episodes", str(labels), "--no-inject")
    assert iso["real"]["episodes"][0]["onset_s"] == pytest.approx(onset, abs=1e-3)
    assert iso["real"]["flush"] == epoch["real"]["flush"]

    naive = utc.tz_localize(None).isoformat()
    labels = episodes_file(tmp_path / "naive.csv", f"w1,{naive},,flush")
    code, err = run(capsys, "--recordings", str(folder), "--episodes", str(labels))
    assert code == 1 and "Traceback" not in err
    assert f"line 2: onset_s '{naive}' has no time zone" in err
    labels = episodes_file(tmp_path / "words.csv", "w1,yesterday noon,,flush")
    assert (
        "neither epoch seconds nor an ISO 8601 time"
        in run(capsys, "--recordings", str(folder), "--episodes", str(labels))[1]
    )


def test_every_mistake_of_the_episodes_file_is_named_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "w1.csv", frame)
    t = at(frame, 20)
    labels = episodes_file(
        tmp_path / "episodes.csv",
        f"nobody,{t},,flush",
        f"w1,{t},,hives",
        f"w1,{t},,flush",
        f"w1,{t + 60},,flush",
    )
    code, err = run(capsys, "--recordings", str(folder), "--episodes", str(labels))
    assert code == 1 and "Traceback" not in err
    assert "episodes.csv: 3 lines refused" in err
    assert "line 2: wearer 'nobody'" in err and "line 3: kind 'hives'" in err
    assert "line 5: overlaps line 4" in err

    upper = tmp_path / "upper.csv"
    upper.write_text(f"Subject,Onset_s,End_s,Kind,Note\nw1,{t},,Flush,itchy\n")
    assert (
        evaluate(folder, tmp_path / "out", "--episodes", str(upper), "--no-inject")["real"][
            "flush"
        ]["episodes"]
        == 1
    )
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text(f"subject;onset_s;end_s;kind\nw1;{t};;flush\n")
    code, err = run(capsys, "--recordings", str(folder), "--episodes", str(semicolons))
    assert code == 1 and "semicolons and tabs are not read" in err


def test_every_file_the_reader_refuses_is_named_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "good.csv", frame)
    (folder / "empty.csv.gz").write_bytes(b"")
    whole = gzip.compress(frame.to_csv(index=False).encode())
    (folder / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])  # a copy interrupted
    (folder / "other.csv").write_text("when,heart\n1,2\n")
    code, err = run(capsys, "--recordings", str(folder), "--out", str(tmp_path / "out"))
    assert code == 1 and "Traceback" not in err
    assert "3 of 4 files refused" in err
    assert "empty.csv.gz: is empty (0 bytes)" in err
    assert "cut.csv.gz: not a readable CSV file" in err
    assert "other.csv: no 'time_s' column" in err


def test_a_report_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "w1.csv", frame)
    labels = episodes_file(tmp_path / "episodes.csv", f"w1,{at(frame, 20)},,flush")
    out = tmp_path / "out"
    (out / "img" / "evaluation-own-real-examples.png").mkdir(parents=True)  # in the way
    code, err = run(
        capsys,
        "--recordings",
        str(folder),
        "--episodes",
        str(labels),
        "--no-inject",
        "--out",
        str(out),
    )
    assert code == 1 and "Traceback" not in err
    assert f"--out {out}: cannot write" in err
    assert json.loads((out / "evaluation-own.json").read_text())["real"]["flush"]["episodes"] == 1

    # the report itself is tried before the evaluation, not after it
    blocked = tmp_path / "blocked"
    (blocked / "evaluation-own.md").mkdir(parents=True)
    code, err = run(capsys, "--recordings", str(folder), "--out", str(blocked))
    assert code == 1 and "Traceback" not in err
    assert f"--out {blocked / 'evaluation-own.md'}: cannot write" in err
    assert "reading recordings" not in err and "evaluating" not in err


def test_one_wearer_at_a_time_is_in_memory_and_the_figures_do_not_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "recordings"
    frame = session("S04")
    for i in range(6):
        write(folder, f"w{i}.csv", frame.assign(time_s=frame["time_s"] + i * 86_400.0))
    with (folder / "w2.csv").open("a") as w2:
        w2.write("soon,70\n")  # a row without a time: counted, dropped and told
    # labelled episodes keep the rows their pictures show, not their wearer's recording
    labels = episodes_file(
        tmp_path / "episodes.csv",
        *(f"w{i},{at(frame, 20) + i * 86_400.0},,flush" for i in (0, 3)),
    )
    args = ("--episodes", str(labels), "--no-inject")
    kept = evaluate(folder, tmp_path / "kept", *args)

    # a folder too large to keep: each file is read for the check, then again for its replay
    monkeypatch.setattr("models.own_evaluation.OWN_KEPT_ROWS", 0, raising=False)
    caplog.clear()
    real_read = own_recordings.read_recording
    alive: list[weakref.ref[pd.DataFrame]] = []
    most = 0

    def read(path: Path) -> tuple[pd.DataFrame, RecordingQuality]:
        nonlocal most
        gc.collect()
        most = max(most, sum(ref() is not None for ref in alive))
        frame, quality = real_read(path)
        alive.append(weakref.ref(frame))
        return frame, quality

    monkeypatch.setattr(own_recordings, "read_recording", read)
    streamed = evaluate(folder, tmp_path / "streamed", *args)
    assert most <= 1  # the wearer before, still named by a local variable; never the folder
    assert len(alive) == 12  # each of the 6 files read twice
    assert streamed == kept
    # what reading a file dropped is told once, not at each reading
    assert sum("w2.csv: dropped rows" in r.getMessage() for r in caplog.records) == 1


def test_the_top_folder_of_a_research_export_is_pointed_to_its_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study"
    write(study / "recordings", "3f9c0a1be27d5c40.csv.gz", session("S04"))
    (study / "episodes.csv").write_text("subject,onset_s,end_s,kind\n")
    (study / "alarms.csv").write_text("subject,onset_s,end_s,kind,severity,label\n")
    code, err = run(capsys, "--recordings", str(study))
    assert code == 1 and "Traceback" not in err
    assert f"is a research export, not its folder of recordings: use --recordings {study}" in err


def test_a_rerun_into_the_same_folder_leaves_no_picture_of_the_run_before(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    write(folder, "fitbit.csv", load_fitbit(split="holdout", limit=1, max_days=1)[0].frame)
    out = tmp_path / "out"
    evaluate(folder, out)
    images = out / "img"
    assert (images / "evaluation-own-examples.png").exists()  # an injected episode drawn
    evaluate(folder, out, "--no-inject")
    assert not (images / "evaluation-own-examples.png").exists()
    assert not (images / "evaluation-own-delays.png").exists()


def test_a_wearer_named_with_a_bar_keeps_the_tables_in_their_columns(tmp_path: Path) -> None:
    """``|`` is legal in a file name, so in a wearer's name: unescaped, it ended a Markdown cell
    and shifted every column after it."""
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "ward 3|bed 2.csv", frame)
    onset = at(frame, 30)
    labels = episodes_file(tmp_path / "episodes.csv", f"ward 3|bed 2,{onset},,anaphylaxis")
    evaluate(folder, tmp_path / "out", "--episodes", str(labels), "--no-inject")
    text = (tmp_path / "out" / "evaluation-own.md").read_text()
    assert "ward 3\\|bed 2" in text
    table: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            cells = [len(row.replace("\\|", "").split("|")) for row in table]
            assert len(set(cells)) == 1, table
            table = []


def test_a_report_on_real_recordings_is_its_owners_only(tmp_path: Path) -> None:
    """The report holds real people's signals (a picture of each episode): a folder it creates
    was readable by everyone on the machine, unlike the research export it came from."""
    folder = tmp_path / "recordings"
    frame = session("S04")
    write(folder, "w1.csv", frame)
    labels = episodes_file(tmp_path / "episodes.csv", f"w1,{at(frame, 30)},,anaphylaxis")
    out = tmp_path / "reports" / "study"
    evaluate(folder, out, "--episodes", str(labels), "--no-inject")
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_an_onset_that_is_only_the_alarm_counts_for_sensitivity_not_for_delay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A research export dates a reaction without a recorded first sign from the alarm that
    opened it: a delay measured from there is the alarm's own, near zero, and pulled the median
    down. Its ``onset_from`` says so; such an episode is found or missed, with no delay."""
    folder = tmp_path / "recordings"
    frame = session("S04")
    onset = at(frame, 30)
    surge = dataclasses.replace(SURGE, onset_s=onset)
    surged = inject(frame, [surge], np.random.default_rng(0))
    write(folder, "a.csv", surged)
    write(folder, "b.csv", surged)
    path = tmp_path / "episodes.csv"
    path.write_text(
        "subject,onset_s,end_s,kind,onset_from\n"
        f"a,{onset},{surge.end_s},anaphylaxis,alarm\n"
        f"b,{onset},{surge.end_s},anaphylaxis,first_sign\n"
    )
    report = evaluate(folder, tmp_path / "out", "--episodes", str(path), "--no-inject")
    by_subject = {e["subject"]: e for e in report["real"]["episodes"]}
    assert by_subject["a"]["detected"] and by_subject["a"]["delay_min"] is None
    assert by_subject["b"]["detected"] and by_subject["b"]["delay_min"] > 0
    kind = report["real"]["anaphylaxis"]
    assert kind["detected"] == 2 and kind["median_delay_min"] == by_subject["b"]["delay_min"]
    text = (tmp_path / "out" / "evaluation-own.md").read_text()
    assert "onset is the alarm's: no delay" in text
    assert "| anaphylaxis: real labelled, onset = alarm | 1 | 1.000 | - |" in text
    assert "| anaphylaxis: real labelled, onset = first sign | 1 | 1.000 |" in text

    path.write_text(f"subject,onset_s,end_s,kind,onset_from\na,{onset},,anaphylaxis,guess\n")
    code, err = run(capsys, "--recordings", str(folder), "--episodes", str(path))
    assert code == 1 and "line 2: onset_from 'guess' is not one of" in err
