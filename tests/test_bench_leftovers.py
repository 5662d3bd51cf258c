"""Benchmarks clean up after themselves and end with one strict JSON line (run small, for real)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _no_nan(token: str) -> float:
    raise AssertionError(f"{token} is not JSON")


def test_benchmarks_leave_no_temporary_files(tmp_path: Path) -> None:
    """bench/outbox.py, bench/alert_latency.py (its 500-patient run left ~70 MB) and
    bench/ingest.py --profile (py-spy's raw stacks) remove every temporary directory they make;
    the last line parses as JSON without NaN."""
    runs = {
        "outbox.py": shlex.split("--samples 1000"),
        "alert_latency.py": shlex.split("--patients 1 --episodes 0"),
        "ingest.py": shlex.split(
            "--patients 5 --duration 2 --warmup 0.5 --publishers 1 --ceiling-seconds 1 "
            "--influx-ceiling-points 5000 --profile"
        ),
    }
    procs = {}
    for script, args in runs.items():
        scratch = tmp_path / script / "tmp"
        scratch.mkdir(parents=True)
        procs[script] = subprocess.Popen(
            [sys.executable, str(BENCH / script), *args],
            cwd=tmp_path / script,
            env={**os.environ, "TMPDIR": str(scratch)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for script, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert "Traceback" not in err, err[-2000:]
        figures = json.loads(out.strip().splitlines()[-1], parse_constant=_no_nan)
        assert isinstance(figures, dict) and figures, script
        left = sorted(p.name for p in (tmp_path / script / "tmp").iterdir())
        assert left == [], f"{script} left {left} behind"
