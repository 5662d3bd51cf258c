"""Every ``flarewatch evaluate`` variant writes reports of its own name: an ablation run into the
published folder (--out docs) must not replace the released detector's report, and a run without
--out writes nothing where it is run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from flarewatch.cli import main

QUICK = ["evaluate", "--split", "holdout", "--max-sessions", "1", "--max-fitbit-days", "1"]


def test_rules_only_run_keeps_the_report_of_the_released_detector(tmp_path: Path) -> None:
    assert main([*QUICK, "--out", str(tmp_path)]) == 0
    released = json.loads((tmp_path / "evaluation-holdout.json").read_text())
    assert "confirm" in released["model_version"]

    assert main([*QUICK, "--rules-only", "--out", str(tmp_path)]) == 0
    rules = json.loads((tmp_path / "evaluation-holdout-rules-only.json").read_text())
    assert "confirm" not in rules["model_version"]
    assert (tmp_path / "evaluation-holdout-rules-only.md").exists()
    assert json.loads((tmp_path / "evaluation-holdout.json").read_text()) == released


def test_a_run_without_out_leaves_the_working_folder_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Run from a checkout, a quick run (or another seed, or a new model) used to replace the
    # committed docs/evaluation-holdout.* with its own figures.
    work, temp = tmp_path / "checkout", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(QUICK) == 0
    assert list(work.iterdir()) == []
    (folder,) = temp.glob("flarewatch-evaluate-*")
    assert (folder / "evaluation-holdout.md").exists()
    assert str(folder / "evaluation-holdout.md") in capsys.readouterr().err.replace("\n", "")


@pytest.mark.parametrize("out", ["a-file", "a-file/reports"])
def test_an_out_that_is_not_a_folder_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    (tmp_path / "a-file").write_text("")
    assert main([*QUICK, "--out", str(tmp_path / out)]) == 1
    err = capsys.readouterr().err
    assert f"--out {tmp_path / out}: cannot write" in err
    assert "evaluating split" not in err  # refused before the evaluation, not after it
