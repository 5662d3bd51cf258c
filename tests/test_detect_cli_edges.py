"""The replay CLI on odd inputs: a pipe, an output onto the input, a contact flag of 0.5."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flarewatch.cli import main
from models.recording import iter_samples, read_recording

RECORDING = "time_s,hr_bpm\n" + "".join(f"{1_700_000_000 + i * 5},70\n" for i in range(50))


def test_a_piped_recording_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """``--input /dev/stdin`` or ``<(zcat rec.csv.gz)``: the reader needs a file it can reopen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAREWATCH_")}
    command = [sys.executable, "-m", "flarewatch.cli", "detect", "--rules-only"]
    piped = subprocess.run(
        [*command, "--input", "/dev/stdin"],
        input=RECORDING,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert piped.returncode == 1
    assert "is a pipe or device, not a file" in piped.stderr
    assert "no 'time_s' column" not in piped.stderr  # the header does name it
    # a file redirected to stdin is a file: it is read
    rec = tmp_path / "rec.csv"
    rec.write_text(RECORDING)
    with rec.open() as stdin:
        redirected = subprocess.run(
            [*command, "--input", "/dev/stdin"],
            stdin=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
    assert redirected.returncode == 0, redirected.stderr[-500:]


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_an_output_onto_the_input_recording_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    rec = tmp_path / "rec.csv"
    rec.write_text(RECORDING)
    link = tmp_path / "events.jsonl"
    link.symlink_to(rec)
    extra = ["--compare-profiles"] if option == "--plot" else []
    assert main(["detect", "--input", str(rec), option, str(link), "--rules-only", *extra]) == 1
    assert "is the input recording" in capsys.readouterr().err
    assert rec.read_text() == RECORDING  # the recording is intact


def test_a_contact_flag_other_than_0_or_1_is_a_blanked_cell(tmp_path: Path) -> None:
    rec = tmp_path / "rec.csv"
    rec.write_text("time_s,hr_bpm,contact\n1700000000,70,0.5\n1700000005,70,1\n1700000010,70,0\n")
    frame, quality = read_recording(rec)
    assert quality.dropped_cells == {"contact": 1}
    assert [s.contact_detected for s in iter_samples(frame)] == [None, True, False]
