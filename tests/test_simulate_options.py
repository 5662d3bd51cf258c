"""`flarewatch simulate --start-ms` before 2010 is a usage error, not a traceback from numpy.

No sample before ``MIN_VALID_TIME_MS`` passes the wire contract, and a start before 1970 made the
day plan seed numpy with a negative number.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flarewatch.cli import main


@pytest.mark.parametrize("start_ms", ["0", "-86400000", "1000000000000"])
def test_a_start_before_2010_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], start_ms: str
) -> None:
    argv = ["simulate", "--mqtt-url", "mqtt://127.0.0.1:1", "--outbox", str(tmp_path / "o.db")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--duration", "3", "--flush-timeout", "0.5", "--start-ms", start_ms])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --start-ms: must be UTC epoch milliseconds from 1262304000000" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.db").exists()


START_MS = 1_764_028_800_000  # 2025-11-25T00:00Z


def simulate(tmp_path: Path, *options: str) -> int:
    """``flarewatch simulate`` of 2 patients for 10 simulated minutes, as fast as possible, to a
    broker that is not there: the samples stay in the outbox ``o.db`` (exit code 3)."""
    argv = ["simulate", "--mqtt-url", "mqtt://127.0.0.1:1", "--outbox", str(tmp_path / "o.db")]
    argv += ["--patients", "2", "--duration", "600", "--speed", "0", "--flush-timeout", "0.5"]
    return main([*argv, "--start-ms", str(START_MS), *options])


def test_a_truth_file_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    truth = tmp_path / "a-file" / "truth.json"
    assert simulate(tmp_path, "--episode", "p1:flush:60", "--truth-file", str(truth)) == 1
    err = capsys.readouterr().err
    assert f"--truth-file {truth}: cannot write" in err and "Traceback" not in err
    assert not (tmp_path / "o.db").exists(), "refused before the outbox was made"


def test_a_truth_file_in_a_new_folder_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tmp_path / "runs" / "day1" / "truth.json"
    assert simulate(tmp_path, "--episode", "p1:flush:60", "--truth-file", str(truth)) == 3
    [episode] = json.loads(truth.read_text())
    assert (episode["patient_id"], episode["onset_ms"]) == ("p1", START_MS + 60_000)


def test_a_resumed_run_never_writes_a_truth_file_of_episodes_it_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The outbox has both patients up to the end already: the second run would resume after
    that and generate nothing, so its truth file would list a flush nobody published."""
    assert simulate(tmp_path) == 3
    capsys.readouterr()
    truth = tmp_path / "truth.json"
    assert simulate(tmp_path, "--episode", "p1:flush:60", "--truth-file", str(truth)) == 1
    err = capsys.readouterr().err
    assert "flush of p1 at 2025-11-25 00:01:00Z" in err and "an outbox of its own" in err
    assert not truth.exists()
    # without --truth-file it runs, and says what it skips
    assert simulate(tmp_path, "--episode", "p1:flush:60") == 3
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "flush of p1 at 2025-11-25 00:01:00Z is not simulated" in warned
    assert "p1-band" in warned and "p2-band" in warned


def test_an_episode_after_the_end_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tmp_path / "truth.json"
    assert simulate(tmp_path, "--episode", "p2:flush:600", "--truth-file", str(truth)) == 1
    err = capsys.readouterr().err
    assert "episode 'p2:flush:600' begins at or after the end of --duration 600" in err
    assert not truth.exists() and not (tmp_path / "o.db").exists()
