"""``flarewatch demo`` refuses option combinations it cannot honour instead of ignoring them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flarewatch.cli import main


@pytest.mark.parametrize("option", [["--speed", "20"], ["--flush-at", "30"]])
def test_ble_sim_refuses_accelerated_time_and_a_scripted_flush(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Virtual bands run in real time with no scripted episode: the option would do nothing."""
    code = main(["demo", "--ble-sim", "--patients", "1", "--duration", "1", *option])
    err = capsys.readouterr().err
    assert code == 1
    assert "--ble-sim" in err and option[0] in err


def test_ble_sim_summary_counts_no_flush_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With virtual bands there is no scripted flush: the summary must not count samples of one."""
    code = main(
        ["demo", "--ble-sim", "--patients", "1", "--duration", "6", "--data-dir", str(tmp_path)]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["stored_by_patient"]["p1"] > 0
    assert report["flush_patient"] is None
    assert report["flush_samples_in_store"] == 0  # was p1's samples after half the run
