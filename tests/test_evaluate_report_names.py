"""Every ``flarewatch evaluate`` variant writes reports of its own name: an ablation run into the
default folder (docs/) must not replace the released detector's report."""

from __future__ import annotations

import json
from pathlib import Path

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
