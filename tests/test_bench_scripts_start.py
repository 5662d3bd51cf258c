"""Every benchmark starts the way README.md and the docs run it: ``python bench/NAME.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(path.name for path in BENCH.glob("*.py") if "__main__" in path.read_text())


def test_the_benchmark_scripts_are_found() -> None:
    assert {"collector.py", "outbox.py", "simulator.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_starts_when_run_as_a_file(script: str, tmp_path: Path) -> None:
    """A script's folder comes first on sys.path: bench/collector.py must not hide ``collector``."""
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
