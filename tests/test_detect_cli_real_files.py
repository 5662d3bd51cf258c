"""``flarewatch detect`` fed files as researchers write them (the replay contract, docs/models.md).

Header spellings, duplicate columns, missing-value markers, date-time text where epoch seconds
belong, ``-`` for the standard streams and a reader that stops early (``| head``): each ends with
the alarms of the data, a counted rejection or a clear error, never a traceback or lost data.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flarewatch.cli import main

T0 = 1_764_000_000


def rows_then_silence(header: str, cells: str = "70,33.0") -> str:
    """500 s of readings, then a silence: "no data" and its end, if a heart rate is read."""
    lines = [header] + [f"{T0 + i * 5},{cells}" for i in range(100)]
    lines.append(f"{T0 + 5000},{cells}")
    return "\n".join(lines) + "\n"


def events_of(text: str) -> list[tuple[str, bool]]:
    return [(e["kind"], e["resolved"]) for e in map(json.loads, text.splitlines())]


@pytest.mark.parametrize(
    "header",
    ["TIME_S,HR_BPM,SKIN_TEMP_C", "time_s,HR_BPM,skin_temp_c", " Time_S , Hr_Bpm ,skin_temp_c"],
)
def test_header_names_are_read_whatever_their_case(tmp_path: Path, capsys, header: str) -> None:
    """An upper-case ``HR_BPM`` beside ``time_s`` was ignored, its heart rates silently lost."""
    rec = tmp_path / "rec.csv"
    rec.write_text(rows_then_silence(header))
    assert main(["detect", "--input", str(rec), "--rules-only"]) == 0
    assert events_of(capsys.readouterr().out) == [("no_data", False), ("no_data", True)]


@pytest.mark.parametrize(
    ("header", "twice"),
    [
        ("time_s,hr_bpm,hr_bpm", "hr_bpm"),
        ("time_s,hr_bpm,HR_BPM", "hr_bpm"),
        ("time_s,hr_bpm,Time_s", "time_s"),
    ],
)
def test_a_column_named_twice_is_a_clear_error(
    tmp_path: Path, capsys, header: str, twice: str
) -> None:
    """The first of two ``hr_bpm`` columns was read, the other silently dropped: if the first
    was the empty one, every heart rate was lost without a word."""
    rec = tmp_path / "rec.csv"
    rec.write_text(rows_then_silence(header, ",70"))  # the first column empty, the second not
    assert main(["detect", "--input", str(rec), "--rules-only"]) == 1
    err = capsys.readouterr().err
    assert f"column {twice} is named twice" in err and "Traceback" not in err


def test_missing_value_markers_are_missing_values_not_rejections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``NA``, ``null``, ``-``… are how many tools write a missing value: not unreadable cells."""
    markers = ["", "NaN", "nan", "NA", "N/A", "null", "NULL", "None", "-", "#N/A", " na "]
    lines = ["time_s,hr_bpm,skin_temp_c"]
    lines += [f"{T0 + i * 5},{markers[i % len(markers)]},33.0" for i in range(200)]
    lines.append(f"{T0 + 1000},abc,33.0")  # still an unreadable value, counted
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    assert main(["detect", "--input", str(rec), "--rules-only", "--out", str(tmp_path / "e")]) == 0
    assert "blanked cells {'hr_bpm': 1}" in caplog.text


def test_date_time_text_in_time_s_fails_with_a_hint(tmp_path: Path, capsys) -> None:
    """ISO-8601 times were reported as "no row with a valid time_s", with no word of why."""
    lines = ["time_s,hr_bpm"] + [
        f"2025-11-24T16:{i // 12:02d}:{i % 12 * 5:02d}Z,70" for i in range(99)
    ]
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    assert main(["detect", "--input", str(rec), "--rules-only"]) == 1
    err = capsys.readouterr().err
    assert "time_s holds dates and times as text" in err and "epoch seconds" in err


def test_an_empty_or_header_only_file_says_so(tmp_path: Path, capsys) -> None:
    rec = tmp_path / "rec.csv"
    for content in ("", "\n\n  \n"):
        rec.write_text(content)
        assert main(["detect", "--input", str(rec)]) == 1
        assert f"{rec}: is empty" in capsys.readouterr().err
    rec.write_text("time_s,hr_bpm\r\n\r\n")  # said "no row with a valid time_s"
    assert main(["detect", "--input", str(rec)]) == 1
    assert f"{rec}: has a header but no rows" in capsys.readouterr().err


def test_out_dash_is_standard_output_and_input_dash_is_explained(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out -`` wrote a file named ``-``; ``--input -`` said "file not found"."""
    monkeypatch.chdir(tmp_path)
    rec = tmp_path / "rec.csv"
    rec.write_text(rows_then_silence("time_s,hr_bpm,skin_temp_c"))
    assert main(["detect", "--input", str(rec), "--rules-only", "--out", "-"]) == 0
    assert events_of(capsys.readouterr().out) == [("no_data", False), ("no_data", True)]
    assert not (tmp_path / "-").exists()
    args = ["detect", "--input", str(rec), "--rules-only", "--compare-profiles", "--out", "-"]
    assert main(args) == 0  # the comparison as JSON, as --out writes it, not the table
    assert {p["profile"] for p in json.loads(capsys.readouterr().out)["profiles"]} >= {"balanced"}
    assert not (tmp_path / "-").exists()
    assert main(["detect", "--input", "-", "--rules-only"]) == 1
    assert "standard input is not read" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """``flarewatch detect ... | head -1``: a BrokenPipeError traceback, on every such run."""
    lines = ["time_s,hr_bpm"]
    t = T0
    for i in range(12_000):  # a silence every 20 readings: about 1200 alarms, far beyond a pipe
        t += 600 if i % 20 == 0 else 5
        lines.append(f"{t},70")
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "flarewatch.cli", "detect", "--input", str(rec)]
    with subprocess.Popen(
        [*command, "--rules-only"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # as head does once it has its line
        err = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert json.loads(first)["kind"] == "no_data"
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert code == 141  # as a process stopped by SIGPIPE: the events were not all read


def test_a_replay_logged_to_a_file_says_how_far_it_got(
    tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With stderr no terminal (a log file, a job), the bar printed only a blank line: a long
    replay (5 million rows take minutes) said nothing until it ended."""
    # as if every batch took long (raising=False: the test fails on what it checks, not here)
    monkeypatch.setattr("models.cli.PROGRESS_LOG_INTERVAL_S", 0.0, raising=False)
    caplog.set_level("INFO", logger="models.cli")
    rec = tmp_path / "rec.csv"
    rec.write_text(rows_then_silence("time_s,hr_bpm", "70"))
    assert main(["detect", "--input", str(rec), "--rules-only", "--out", str(tmp_path / "e")]) == 0
    assert "\n\n" not in "\n" + capsys.readouterr().err, "a blank line"
    assert "replaying: 100 of 101 samples (99 %)" in caplog.text


def test_rows_that_all_outgrow_the_header_are_explained(tmp_path: Path, capsys) -> None:
    """A header missing a column name: every row was dropped as a bad line, then the error
    said "no row with a valid time_s", of a file full of valid times."""
    rec = tmp_path / "rec.csv"
    rec.write_text(rows_then_silence("time_s,hr_bpm"))  # rows of three fields
    assert main(["detect", "--input", str(rec), "--rules-only"]) == 1
    assert "every row has more fields than the header names" in capsys.readouterr().err


def flipped_in_the_middle(data: bytes) -> bytes:
    """``data`` with its middle byte inverted: a copy damaged on the way."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def test_a_compressed_file_cut_short_or_corrupt_says_so(tmp_path: Path, capsys) -> None:
    """Said "not a readable CSV file (EOFError)", "(error)" or "(OSError)": nothing a researcher
    can act on."""
    text = "time_s,hr_bpm\n" + "".join(f"{T0 + i},{60 + i % 30}\n" for i in range(20_000))
    packed = gzip.compress(text.encode(), mtime=0)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])  # a download or a copy cut short
    assert main(["detect", "--input", str(cut)]) == 1
    assert "compressed data ends early" in capsys.readouterr().err
    for name, data in (
        ("corrupt.csv.gz", packed),
        ("corrupt.csv.bz2", bz2.compress(text.encode())),
    ):
        corrupt = tmp_path / name
        corrupt.write_bytes(flipped_in_the_middle(data))
        assert main(["detect", "--input", str(corrupt)]) == 1
        assert "compressed data is corrupt" in capsys.readouterr().err, name


def test_a_terminal_is_told_the_recording_is_being_read(tmp_path: Path) -> None:
    """Reading 5 million rows takes 20 s, with nothing on the terminal until the replay's bar."""
    rec = tmp_path / "rec.csv"
    rec.write_text(rows_then_silence("time_s,hr_bpm", "70"))
    terminal, stderr = os.openpty()
    command = [sys.executable, "-m", "flarewatch.cli", "detect", "--input", str(rec)]
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    with subprocess.Popen(
        [*command, "--rules-only"], stdout=subprocess.DEVNULL, stderr=stderr, env=env
    ) as process:
        os.close(stderr)
        shown = b""
        while chunk := _read_terminal(terminal):
            shown += chunk
        assert process.wait(timeout=120) == 0
    os.close(terminal)
    assert b"reading rec.csv" in shown


def _read_terminal(fd: int) -> bytes:
    """What the terminal shows next; empty once the program closed it (EIO on Linux)."""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def test_files_joined_with_their_headers(tmp_path: Path, capsys, caplog) -> None:
    """``cat a.csv b.csv``: b's header line is a line of the file. Read as data, the same header
    blanked "cells"; with the columns in another order, b's heart rates were read as skin
    temperatures (70 °C, blanked) and its skin temperatures as heart rates (33 bpm), silently."""
    first = "\n".join(f"{T0 + i * 5},70,33.0" for i in range(100))
    later = "\n".join(f"{T0 + 500 + i * 5},70,33.0" for i in range(100))
    second = "\n".join(f"{T0 + 500 + i * 5},33.0,70" for i in range(100))
    rec = tmp_path / "rec.csv"
    rec.write_text(f"time_s,hr_bpm,skin_temp_c\n{first}\nTIME_S,hr_bpm,skin_temp_c\n{later}\n")
    assert main(["detect", "--input", str(rec), "--rules-only", "--out", str(tmp_path / "e")]) == 0
    assert "dropped rows {'header_line': 1}, blanked cells {}" in caplog.text
    rec.write_text(f"time_s,hr_bpm,skin_temp_c\n{first}\ntime_s,skin_temp_c,hr_bpm\n{second}\n")
    assert main(["detect", "--input", str(rec), "--rules-only"]) == 1
    assert "a second header names the columns in another order" in capsys.readouterr().err


def test_standard_output_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``> /dev/full`` (a full disk) and ``>&-`` (closed) ended in tracebacks."""
    rec = tmp_path / "rec.csv"
    rec.write_text(rows_then_silence("time_s,hr_bpm", "70"))
    many = tmp_path / "many.csv"
    lines, t = ["time_s,hr_bpm"], T0
    for i in range(2_000):  # a silence every 20 readings: more alarms than a write buffer holds
        t += 600 if i % 20 == 0 else 5
        lines.append(f"{t},70")
    many.write_text("\n".join(lines) + "\n")
    with Path("/dev/full").open("w", encoding="utf-8") as full:
        monkeypatch.setattr(sys, "stdout", full)
        assert main(["detect", "--input", str(many), "--rules-only"]) == 1
    assert "standard output: cannot write (No space left on device)" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdout", None)  # what Python makes of a closed descriptor 1
    assert main(["detect", "--input", str(rec), "--rules-only"]) == 1
    assert "standard output is closed: name a file with --out" in capsys.readouterr().err
