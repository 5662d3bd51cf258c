"""Recordings as CSV (``time_s`` plus any of the vital columns) turned into wire-contract samples.

The replay contract (docs/models.md): a header with ``time_s`` (epoch seconds, irregular spacing
allowed) and any of ``hr_bpm``, ``skin_temp_c``, ``steps``, ``acc_g``, ``acc_sd_g`` (``contact``,
0/1, optional), named in any case; other columns are ignored; empty cells and the usual markers
(``NA``, ``null``…) are missing values. Bad cells and rows are counted and dropped, never fatal:
one unreadable value must not lose the rest of the file. What would silently put values in the
wrong place (a column named twice, a repeated header in another order) is refused instead.

Lines are split on every comma (quotes do not span lines, so one stray ``"`` cannot swallow the
rest of the file); a line with more fields than the header is re-read honouring its quotes (a
quoted note with a comma in it) and counted and dropped if it still does not fit. Text is UTF-8,
undecodable bytes replaced; gzip, bzip2 and xz files are recognised by their first bytes. The
file is parsed in chunks and only the contract columns are kept, as numbers.
"""

from __future__ import annotations

import csv
import gzip
import logging
import lzma
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flarewatch.const import MIN_VALID_TIME_MS
from flarewatch.payloads import Sample
from models.const import LATEST_VALID_TIME_S, READ_CHUNK_ROWS, SAMPLE_BLOCK_ROWS, WORN_GAP_S
from models.errors import RecordingError
from models.recording_columns import VITAL_COLUMNS
from models.recording_layout import (
    Layout,
    compression,
    drop_repeated_headers,
    open_text,
    read_layout,
    refit,
    refit_overflowing,
)

log = logging.getLogger(__name__)

_CONTRACT = frozenset({"time_s", *VITAL_COLUMNS})
_FLAGS = frozenset({"contact"})  # columns whose only values are 0 and 1
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, csv.Error)
_CORRUPT = "not a readable CSV file: its compressed data is corrupt (check the copy)"
# how spreadsheets, R, pandas and databases write a missing value (compared in lower case)
_MISSING = frozenset({"nan", "na", "n/a", "#n/a", "null", "none", "-"})
# the start of a date written as text, where time_s wants epoch seconds (2025-11-24T16:00Z)
_DATE_TEXT = r"^\d{4}-\d{2}-\d{2}|^\d{1,2}[./]\d{1,2}[./]\d{2,4}"


@dataclass(slots=True)
class RecordingQuality:
    """What loading a recording had to drop, per reason (counted rejections).

    ``dropped_cells`` counts values of a column turned into missing values (unreadable, out of
    range) or discarded because another row of the same millisecond had a different one;
    ``merged_rows`` counts rows folded into an earlier row of the same millisecond.
    """

    rows: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    dropped_cells: dict[str, int] = field(default_factory=dict)
    merged_rows: int = 0
    date_times: int = 0
    """Rows whose ``time_s`` was a date written as text (counted among ``bad_time``)."""

    def count_rows(self, reason: str, n: int) -> None:
        """Count ``n`` rows dropped for ``reason``."""
        if n:
            self.dropped_rows[reason] = self.dropped_rows.get(reason, 0) + n

    def log_losses(self, origin: Path | str) -> None:
        """Warn once about what reading ``origin`` dropped, blanked or merged (if anything)."""
        if self.dropped_rows or self.dropped_cells or self.merged_rows:
            log.warning(
                "%s: dropped rows %s, blanked cells %s, %d rows merged into another of the same "
                "millisecond",
                origin,
                self.dropped_rows,
                self.dropped_cells,
                self.merged_rows,
            )

    def count_cells(self, column: str, n: int) -> None:
        """Count ``n`` values of ``column`` turned into missing values."""
        if n:
            self.dropped_cells[column] = self.dropped_cells.get(column, 0) + n


def read_recording(path: Path) -> tuple[pd.DataFrame, RecordingQuality]:
    """Read and clean a recording CSV (gzip allowed); raises RecordingError if unusable."""
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            # a pipe (``<(zcat ...)``, /dev/stdin) gives its data once; the reader takes three
            # passes, and the later ones found a header cut short ("no 'time_s' column")
            raise RecordingError(
                path,
                "is a pipe or device, not a file: the recording is read more than once; "
                "save it to a file (gzip allowed) and pass that",
            )
        layout = read_layout(path, _CONTRACT)
        _check_columns(layout.names, path)
        try:
            frame, quality = _parse(path, layout, "c")
        except pd.errors.ParserError:
            # a line with more fields than the parser made room for: only the python parser
            # hands such lines over, to be re-read or counted
            frame, quality = _parse(path, layout, "python")
    except FileNotFoundError as exc:
        if str(path) == "-":
            raise RecordingError(
                path,
                "standard input is not read: the recording is read more than once; save it "
                "to a file (gzip allowed) and pass that",
            ) from exc
        raise RecordingError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise RecordingError(path, "is a directory, not a CSV file") from exc
    except EOFError as exc:  # only a compressed stream ends before its end
        raise RecordingError(
            path,
            "not a readable CSV file: its compressed data ends early (cut short by a "
            "download or a copy?); rows before the cut are not replayed on their own",
        ) from exc
    except (zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise RecordingError(path, _CORRUPT) from exc
    except OSError as exc:
        if exc.errno is None and compression(path) is not None:  # bz2: "Invalid data stream"
            raise RecordingError(path, _CORRUPT) from exc
        raise RecordingError(path, f"not a readable CSV file ({exc.__class__.__name__})") from exc
    except _READ_ERRORS as exc:
        raise RecordingError(path, f"not a readable CSV file ({exc.__class__.__name__})") from exc
    return _finish(frame, quality, path)


def clean_recording(
    raw: pd.DataFrame, origin: Path | str = "<frame>"
) -> tuple[pd.DataFrame, RecordingQuality]:
    """Coerce a raw table to the recording columns, sorted by time, bad values counted, blanked."""
    _check_columns(list(raw.columns), origin)
    quality = RecordingQuality(rows=len(raw))
    return _finish(_numbers(raw, quality), quality, origin)


def _check_columns(columns: list[str], origin: Path | str) -> None:
    if "time_s" not in columns:
        raise RecordingError(origin, "no 'time_s' column: the header must name it (epoch seconds)")
    if not any(c in columns for c in VITAL_COLUMNS):
        wanted = ", ".join(VITAL_COLUMNS)
        raise RecordingError(origin, f"no vital column: expected any of {wanted}")


def _parse(path: Path, layout: Layout, engine: str) -> tuple[pd.DataFrame, RecordingQuality]:
    """Every data line as numbers in the contract columns (``time_s`` not yet checked)."""
    quality = RecordingQuality()

    def overlong(fields: list[str]) -> list[str] | None:
        fitted = refit(fields, layout.width)
        if fitted is None:
            quality.rows += 1  # never reaches a chunk
            quality.count_rows("bad_line", 1)
            return None
        return fitted + [""] * (len(layout.names) - layout.width)

    options: dict[str, Any] = {"on_bad_lines": overlong} if engine == "python" else {}
    parts: list[pd.DataFrame] = []
    with (
        open_text(path) as stream,
        pd.read_csv(
            stream,
            header=None,
            names=layout.names,
            skiprows=layout.skip,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            engine=engine,
            chunksize=READ_CHUNK_ROWS,
            **options,
        ) as chunks,
    ):
        for chunk in chunks:
            quality.rows += len(chunk)
            fitted = refit_overflowing(chunk, layout, quality)
            parts.append(_numbers(drop_repeated_headers(fitted, layout, quality, path), quality))
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return frame, quality


def _numbers(raw: pd.DataFrame, quality: RecordingQuality) -> pd.DataFrame:
    """``time_s`` and the vital columns of ``raw`` as float64, bad vital cells counted, blanked."""
    times, unreadable = _cells(raw["time_s"])
    if unreadable.any():
        dates = raw["time_s"][unreadable].astype(str).str.strip().str.strip('"')
        quality.date_times += int(dates.str.contains(_DATE_TEXT).sum())
    out = {"time_s": times}
    for column, (_, low, high) in VITAL_COLUMNS.items():
        if column not in raw.columns:
            continue
        values, unreadable = _cells(raw[column])
        invalid = unreadable | (values < low) | (values > high)
        if column in _FLAGS:  # 0 or 1: a 0.5 is no answer, not "contact" (bool(0.5) is True)
            invalid |= values.notna() & (values != low) & (values != high)
        quality.count_cells(column, int(invalid.sum()))
        out[column] = values.where(~invalid)
    return pd.DataFrame(out)


def _cells(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A column as float64 and which of its cells held text that is not a number."""
    if pd.api.types.is_numeric_dtype(column):  # a frame built in code (bool, int or float)
        return column.astype("float64"), pd.Series(False, index=column.index)
    text = column.fillna("").astype(str).str.strip()
    quoted = text.str.startswith('"') & text.str.endswith('"') & (text.str.len() >= 2)
    if quoted.any():  # "61": a quoted number
        text = text.where(~quoted, text.str.slice(1, -1).str.strip())
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    unreadable = values.isna() & (text != "") & ~text.str.lower().isin(_MISSING)
    return values, unreadable


def _finish(
    frame: pd.DataFrame, quality: RecordingQuality, origin: Path | str
) -> tuple[pd.DataFrame, RecordingQuality]:
    """Drop rows with no plausible time, sort by time, merge rows of the same millisecond."""
    if quality.rows == 0:
        raise RecordingError(origin, "has a header but no rows")
    if frame.empty and quality.dropped_rows.get("bad_line", 0) == quality.rows > 0:
        raise RecordingError(
            origin,
            "every row has more fields than the header names: is a column name missing from "
            "the header?",
        )
    times = frame["time_s"].to_numpy(dtype="float64")
    plausible = _plausible_s(times)
    if not plausible.any():
        _refuse_milliseconds(times, origin)
        if quality.date_times * 2 >= len(times) > 0:
            raise RecordingError(
                origin,
                "time_s holds dates and times as text: it must be epoch seconds (convert it, "
                "e.g. with pandas: pd.to_datetime(t, utc=True).astype('int64') / 1e9)",
            )
    quality.count_rows("bad_time", int((~plausible).sum()))
    frame = frame[plausible].sort_values("time_s", kind="stable")
    if frame.empty:
        raise RecordingError(origin, "no row with a valid time_s")
    return _merge_same_millisecond(frame, quality).reset_index(drop=True), quality


def _plausible_s(times: np.ndarray) -> np.ndarray:
    """Finite epoch seconds between 2010 (MIN_VALID_TIME_MS) and 2100 (NaN compares false)."""
    return (times >= MIN_VALID_TIME_MS / 1000.0) & (times <= LATEST_VALID_TIME_S)


def _refuse_milliseconds(times: np.ndarray, origin: Path | str) -> None:
    """No time is plausible in seconds: say so if most would be in milliseconds."""
    finite = times[np.isfinite(times)]
    if finite.size and _plausible_s(finite / 1000.0).mean() >= 0.5:
        raise RecordingError(
            origin,
            "time_s looks like milliseconds since the epoch: it must be seconds "
            "(divide the column by 1000)",
        )


def _merge_same_millisecond(frame: pd.DataFrame, quality: RecordingQuality) -> pd.DataFrame:
    """One row per millisecond (the samples' resolution): each column's first present value.

    A value that differs from the one kept is counted as a dropped cell of its column.
    """
    time_ms = np.round(frame["time_s"].to_numpy(dtype="float64") * 1000.0).astype("int64")
    if not (time_ms[1:] == time_ms[:-1]).any():
        return frame
    groups = frame.groupby(pd.Series(time_ms, index=frame.index), sort=False)
    merged = groups.first()
    for column in frame.columns.drop("time_s"):
        kept = groups[column].transform("first")
        quality.count_cells(column, int((frame[column].notna() & (frame[column] != kept)).sum()))
    quality.merged_rows += len(frame) - len(merged)
    return merged


def worn_intervals_s(time_s: np.ndarray, before_s: float | None = None) -> np.ndarray:
    """Seconds of wear each reading closes: the time since the reading before it.

    ``before_s`` is the time of the reading before the first (None: nothing came before). Across
    a gap of WORN_GAP_S or more, or with nothing before, a reading closes no wear.
    """
    times = np.asarray(time_s, dtype="float64")
    previous = np.concatenate(([np.nan if before_s is None else before_s], times[:-1]))
    dt = times - previous
    return np.where(dt < WORN_GAP_S, dt, 0.0)  # NaN compares false: no wear before the first


def iter_samples(frame: pd.DataFrame, without: Collection[str] = ()) -> Iterator[Sample]:
    """Samples of a cleaned recording frame, in time order (values already range-checked).

    Columns named in ``without`` are left out, as from a band that lacks those sensors. Values
    become Python objects one block of rows at a time, not the whole recording at once.
    """
    times_ms = np.round(frame["time_s"].to_numpy(dtype="float64") * 1000.0).astype("int64")
    arrays = {
        name: frame[column].to_numpy(dtype="float64")
        for column, (name, _, _) in VITAL_COLUMNS.items()
        if column in frame.columns and column not in without
    }
    for start in range(0, len(times_ms), SAMPLE_BLOCK_ROWS):
        stop = start + SAMPLE_BLOCK_ROWS
        block = {name: _python_values(name, values[start:stop]) for name, values in arrays.items()}
        for offset, time_ms in enumerate(times_ms[start:stop].tolist()):
            fields = {name: values[offset] for name, values in block.items()}
            # already range-checked column by column above: skip per-sample validation for speed
            yield Sample.model_construct(seq=start + offset, time_ms=time_ms, **fields)


def _python_values(name: str, values: np.ndarray) -> list[Any]:
    """A block of one column as the Sample field's Python type (None where missing)."""
    cast: Callable[[float], Any] = (
        int if name == "steps" else bool if name == "contact_detected" else float
    )
    return [None if v != v else cast(v) for v in values.tolist()]  # v != v: NaN
