"""Reading a replay recording: bad lines, bytes and times are counted and dropped, never fatal,
and never take good rows with them (the contract in docs/models.md)."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flarewatch.cli import main
from models.errors import RecordingError
from models.recording import iter_samples, read_recording

T0 = 1_764_000_000


def good_rows(start: int, n: int) -> list[str]:
    return [f"{T0 + 5 * i},{60 + i % 7},33.0,ok" for i in range(start, start + n)]


@pytest.mark.parametrize("many_fields", [False, True], ids=["one-extra", "four-extra"])
def test_bad_lines_are_counted_and_dropped_and_quoted_ones_re_read(
    tmp_path: Path, many_fields: bool
) -> None:
    surplus = ",a,b,c,d" if many_fields else ",surplus"  # four extra: the python parser's path
    lines = ["time_s,hr_bpm,skin_temp_c,note", f"{T0 - 5},61,33.0,ok{surplus}"]
    lines += good_rows(0, 100)
    lines.append(f"{T0 + 501},61,33.0,ok{surplus}")
    lines += good_rows(101, 100)
    lines.append(f'{T0 + 1006},"61,33.2,ok')  # a stray quote: the heart rate is unreadable
    lines.append(f'{T0 + 1007},62,33.3,"a note, with a comma"')  # a quoted comma is fine
    lines.append(f'"{T0 + 1008}","63","33.4","quoted"')  # so are quoted numbers
    lines += good_rows(202, 100)
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    frame, quality = read_recording(rec)
    assert quality.dropped_rows == {"bad_line": 2}
    assert quality.dropped_cells == {"hr_bpm": 1}
    assert quality.rows == len(lines) - 1
    assert len(frame) == 300 + 3
    by_time = frame.set_index("time_s")
    assert (
        math.isnan(by_time.loc[T0 + 1006, "hr_bpm"])
        and by_time.loc[T0 + 1006, "skin_temp_c"] == 33.2
    )
    assert list(by_time.loc[T0 + 1007]) == [62.0, 33.3]
    assert list(by_time.loc[T0 + 1008]) == [63.0, 33.4]


def test_undecodable_bytes_are_replaced_not_fatal(tmp_path: Path) -> None:
    lines = ["time_s,hr_bpm,note"] + [f"{T0 + 5 * i},{60 + i % 7},ok" for i in range(50)]
    data = ("\n".join(lines) + "\n").encode()
    data = data.replace(b",ok\n", b",caf\xe9\n", 3)  # cp1252 in an ignored column
    data = data.replace(b",66,ok", b",6\xe96,ok", 1)  # and in a heart rate
    rec = tmp_path / "rec.csv"
    rec.write_bytes(data)
    frame, quality = read_recording(rec)
    assert len(frame) == 50
    assert quality.dropped_rows == {} and quality.dropped_cells == {"hr_bpm": 1}


def test_gzip_is_recognised_by_its_content_not_its_name(tmp_path: Path) -> None:
    text = "\n".join(["time_s,hr_bpm"] + [f"{T0 + 5 * i},70" for i in range(20)]) + "\n"
    packed = tmp_path / "rec.csv"
    packed.write_bytes(gzip.compress(text.encode()))
    misnamed = tmp_path / "plain.csv.gz"
    misnamed.write_text(text)
    for path in (packed, misnamed):
        frame, _ = read_recording(path)
        assert frame["hr_bpm"].tolist() == [70.0] * 20


def test_times_that_are_not_finite_or_not_plausible_are_counted_bad(tmp_path: Path) -> None:
    lines = ["time_s,hr_bpm"] + [f"{T0 + 5 * i},70" for i in range(20)]
    lines += ["inf,70", "-inf,70", "nan,70", "1e300,70", "4102444801,70", "1000,70", ",70"]
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    frame, quality = read_recording(rec)
    assert quality.dropped_rows == {"bad_time": 7}
    times_ms = [s.time_ms for s in iter_samples(frame)]
    assert times_ms == [(T0 + 5 * i) * 1000 for i in range(20)]


def test_times_written_in_milliseconds_fail_with_a_hint(tmp_path: Path, capsys) -> None:
    lines = ["time_s,hr_bpm"] + [f"{(T0 + 5 * i) * 1000},70" for i in range(3600)]
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match="milliseconds"):
        read_recording(rec)
    assert main(["detect", "--input", str(rec), "--rules-only"]) == 1
    assert "divide the column by 1000" in capsys.readouterr().err


def test_rows_of_the_same_millisecond_are_merged_column_by_column(tmp_path: Path) -> None:
    lines = ["time_s,hr_bpm,skin_temp_c"]
    lines += [f"{T0},,33.1", f"{T0},70,"]  # a thermometer row, then a heart-rate row
    lines += [f"{T0 + 5 + i},{60 + i},33.0" for i in range(10)]
    lines += [f"{T0 + 100}.0001,80,33.2", f"{T0 + 100}.0003,81,"]  # under 1 ms apart
    rec = tmp_path / "rec.csv"
    rec.write_text("\n".join(lines) + "\n")
    frame, quality = read_recording(rec)
    samples = list(iter_samples(frame))
    assert (samples[0].heart_rate_bpm, samples[0].skin_temperature_c) == (70.0, 33.1)
    assert (samples[-1].heart_rate_bpm, samples[-1].skin_temperature_c) == (80.0, 33.2)
    assert len({s.time_ms for s in samples}) == len(samples) == 12
    assert quality.merged_rows == 2
    assert quality.dropped_cells == {"hr_bpm": 1}  # the second heart rate of that millisecond


def test_samples_are_the_frame_across_conversion_blocks() -> None:
    n = 25_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "time_s": T0 + np.arange(n) * 1.0,
            "hr_bpm": np.where(rng.random(n) < 0.1, np.nan, 60 + rng.normal(0, 3, n)),
            "steps": np.where(rng.random(n) < 0.5, np.nan, rng.integers(0, 9, n)),
        }
    )
    samples = list(iter_samples(frame, without=("skin_temp_c",)))
    assert [s.seq for s in samples] == list(range(n))
    hr = [s.heart_rate_bpm for s in samples]
    assert hr == [None if math.isnan(v) else v for v in frame["hr_bpm"]]
    steps = [s.steps for s in samples]
    assert steps == [None if math.isnan(v) else int(v) for v in frame["steps"]]
    assert all(type(v) is int for v in steps if v is not None)
