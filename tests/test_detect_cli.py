"""The replay contract: ``flarewatch detect --input REC.csv [--out EVENTS.jsonl]``."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flarewatch.cli import main
from models.alarm import AlarmKind
from models.datasets import DATA_DIR
from models.injection import Episode, inject

STRESS_SESSION = DATA_DIR / "stress_predict" / "S02.csv.gz"


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_of_a_real_session_with_an_injected_surge(tmp_path: Path) -> None:
    frame = pd.read_csv(STRESS_SESSION)
    onset = float(frame["time_s"].iloc[0] + 25 * 60)
    episode = Episode(AlarmKind.ANAPHYLAXIS, onset, 90.0, 20 * 60.0, 300.0, 0.5, 0.0, 120.0)
    injected = inject(frame, [episode], np.random.default_rng(0))
    rec = write_csv(tmp_path / "rec.csv", injected)
    out = tmp_path / "out" / "events.jsonl"
    assert main(["detect", "--input", str(rec), "--out", str(out)]) == 0
    events = read_events(out)
    assert events, "a +50 % surge at rest must raise an alarm"
    assert [e["time_s"] for e in events] == sorted(e["time_s"] for e in events)
    for event in events:
        assert {"time_s", "kind", "severity"} <= event.keys()
        assert event["severity"] in {"warning", "critical"}
        assert event["kind"] in {"flush", "anaphylaxis", "no_contact", "no_data"}
    surge = [e for e in events if e["kind"] == "anaphylaxis" and not e["resolved"]]
    assert surge and onset <= surge[0]["time_s"] <= onset + 5 * 60
    # the continuing episode raises no new onset alarm
    assert sum(1 for e in surge if e["evidence"].get("onset") == 1.0) == 1


def test_replay_accepts_gzip_extra_columns_and_any_subset(tmp_path: Path) -> None:
    rec = tmp_path / "rec.csv.gz"
    shutil.copy(STRESS_SESSION, rec)  # has an extra 'phase' column
    out = tmp_path / "events.jsonl"
    assert main(["detect", "--input", str(rec), "--out", str(out)]) == 0
    hr_only = pd.read_csv(STRESS_SESSION)[["time_s", "hr_bpm"]]
    hr_rec = write_csv(tmp_path / "hr.csv", hr_only)
    assert main(["detect", "--input", str(hr_rec), "--out", str(out), "--rules-only"]) == 0


def test_replay_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        assert main(["detect", "--input", str(STRESS_SESSION), "--out", str(out)]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]


def test_bad_cells_and_rows_are_counted_not_fatal(tmp_path: Path, caplog) -> None:
    lines = ["time_s,hr_bpm,skin_temp_c,steps,note"]
    t0 = 1_700_000_000
    for i in range(400):
        lines.append(f"{t0 + i * 5},{70 + (i % 3)},{31.0},,x")
    lines += [f"{t0 + 5},999,31.0,,dup", "garbage,70,31,,", f"{t0 + 2005},abc,,-3,", ""]
    rec = tmp_path / "bad.csv"
    rec.write_text("\n".join(lines))
    out = tmp_path / "events.jsonl"
    assert main(["detect", "--input", str(rec), "--out", str(out)]) == 0
    assert "dropped rows" in caplog.text
    assert "70" not in caplog.text.split("dropped rows")[1].split("\n")[0].replace("hr_bpm", "")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hr_bpm\n70\n", "no 'time_s' column"),
        ("time_s;hr_bpm\n1700000000;70\n", "is the file not comma-separated"),
        ("time_s\thr_bpm\n1700000000\t70\n", "is the file not comma-separated"),
        ("time_s,foo\n1700000000,1\n", "no vital column"),
        ("time_s,hr_bpm\nnope,70\n", "no row with a valid time_s"),
    ],
)
def test_unusable_recordings_fail_with_a_clear_message(
    tmp_path: Path, capsys, content: str, message: str
) -> None:
    rec = tmp_path / "rec.csv"
    rec.write_text(content)
    assert main(["detect", "--input", str(rec)]) == 1
    assert message in capsys.readouterr().err


def test_missing_and_corrupt_files(tmp_path: Path, capsys) -> None:
    assert main(["detect", "--input", str(tmp_path / "absent.csv")]) == 1
    assert "file not found" in capsys.readouterr().err
    corrupt = tmp_path / "rec.csv.gz"
    corrupt.write_bytes(gzip.compress(b"time_s,hr_bpm\n")[:10])
    assert main(["detect", "--input", str(corrupt)]) == 1
    assert "not a readable CSV" in capsys.readouterr().err


def test_events_go_to_stdout_without_out(tmp_path: Path, capsys) -> None:
    lines = ["time_s,hr_bpm"] + [f"{1_700_000_000 + i * 5},70" for i in range(100)]
    lines.append(f"{1_700_000_000 + 5000},70")  # a silence: no_data then resolved
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    assert main(["detect", "--input", str(rec)]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(e["kind"], e["resolved"]) for e in events] == [("no_data", False), ("no_data", True)]


def test_replay_with_a_profile_alarms_sooner_and_says_so(tmp_path: Path) -> None:
    frame = pd.read_csv(STRESS_SESSION)
    onset = float(frame["time_s"].iloc[0] + 25 * 60)
    episode = Episode(AlarmKind.ANAPHYLAXIS, onset, 180.0, 20 * 60.0, 300.0, 0.45, 0.0, None)
    rec = write_csv(tmp_path / "rec.csv", inject(frame, [episode], np.random.default_rng(0)))
    first: dict[str, dict[str, Any] | None] = {}
    for profile in ("balanced", "sensitive"):
        out = tmp_path / f"{profile}.jsonl"
        assert main(["detect", "--input", str(rec), "--out", str(out), "--profile", profile]) == 0
        onsets = [
            e
            for e in read_events(out)
            if e["evidence"].get("onset") == 1.0 and e["kind"] == "anaphylaxis"
        ]
        first[profile] = onsets[0] if onsets else None
    sensitive, balanced = first["sensitive"], first["balanced"]
    # on this subject's restless session the balanced evidence is never reached
    assert sensitive is not None and onset <= sensitive["time_s"] <= onset + 5 * 60
    assert balanced is None or balanced["time_s"] > sensitive["time_s"]
    assert sensitive["model_version"].endswith("@sensitive")
    with pytest.raises(SystemExit):
        main(["detect", "--input", str(rec), "--profile", "loud"])


def test_replay_of_a_band_taken_off_reports_no_contact(tmp_path: Path, caplog) -> None:
    """S28 ends with the band on the table: its skin cools, its heart rate climbs 82 -> 114."""
    caplog.set_level("INFO", logger="models.cli")
    rec = tmp_path / "S28.csv.gz"
    shutil.copy(DATA_DIR / "stress_predict" / "S28.csv.gz", rec)
    out = tmp_path / "events.jsonl"
    assert main(["detect", "--input", str(rec), "--out", str(out)]) == 0
    assert [(e["kind"], e["resolved"]) for e in read_events(out)] == [("no_contact", False)]
    assert (
        "1 alarm events written (onsets: 0 anaphylaxis-like (0 critical), 0 flush; " in caplog.text
    )
    assert "escalations of an open episode: 0; signal states: 1 no_contact;" in caplog.text


def test_detect_counts_what_compare_profiles_counts(tmp_path: Path, caplog) -> None:
    """Both count episode onsets; an alarm of an episode already open is named an escalation."""
    frame = pd.read_csv(STRESS_SESSION)
    onset = float(frame["time_s"].iloc[0] + 25 * 60)
    episode = Episode(AlarmKind.ANAPHYLAXIS, onset, 90.0, 20 * 60.0, 300.0, 0.5, 0.0, 120.0)
    rec = write_csv(tmp_path / "rec.csv", inject(frame, [episode], np.random.default_rng(0)))
    caplog.set_level("INFO", logger="models.cli")
    out = tmp_path / "events.jsonl"
    assert main(["detect", "--input", str(rec), "--out", str(out)]) == 0  # balanced
    raised = [e for e in read_events(out) if e["kind"] == "anaphylaxis" and not e["resolved"]]
    escalations = [e for e in raised if e["evidence"].get("onset") != 1.0]
    assert escalations, "no escalation in this recording: the test would prove nothing"
    table = tmp_path / "profiles.json"
    assert main(["detect", "--input", str(rec), "--compare-profiles", "--out", str(table)]) == 0
    rows = json.loads(table.read_text())["profiles"]
    balanced = next(r for r in rows if r["profile"] == "balanced")
    assert balanced["anaphylaxis"] == len(raised) - len(escalations)
    assert (
        f"onsets: {balanced['anaphylaxis']} anaphylaxis-like ({balanced['critical']} critical), "
        f"{balanced['flush']} flush; escalations of an open episode: {len(escalations)};"
    ) in caplog.text


def test_an_output_that_cannot_be_written_fails_before_the_replay(tmp_path: Path, capsys) -> None:
    rec = tmp_path / "rec.csv"
    rec.write_text("time_s,hr_bpm\n" + "".join(f"{1_700_000_000 + i * 5},70\n" for i in range(50)))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (tmp_path, blocker / "events.jsonl"):
        assert main(["detect", "--input", str(rec), "--out", str(out)]) == 1
        assert f"--out {out}: cannot write" in capsys.readouterr().err
    args = ["detect", "--input", str(rec), "--compare-profiles", "--plot", str(tmp_path)]
    assert main(args) == 1
    assert "--plot" in capsys.readouterr().err
    # checked before the recording is read, let alone replayed
    absent = tmp_path / "absent.csv"
    assert main(["detect", "--input", str(absent), "--out", str(tmp_path)]) == 1
    assert "cannot write" in capsys.readouterr().err
    # a writable new file is created with its folders, and only once the replay is done
    out = tmp_path / "new" / "events.jsonl"
    assert main(["detect", "--input", str(rec), "--out", str(out)]) == 0
    assert out.is_file()
