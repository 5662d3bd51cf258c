"""Recordings as CSV (``time_s`` plus any of the vital columns) turned into wire-contract samples.

The replay contract (docs/models.md): a header with ``time_s`` (epoch seconds, irregular spacing
allowed) and any of ``hr_bpm``, ``skin_temp_c``, ``steps``, ``acc_g``, ``acc_sd_g`` (``contact``,
0/1, optional); other columns are ignored and empty cells are missing values. Bad cells and rows
are counted and dropped, never fatal: one unreadable value must not lose the rest of the file.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flarewatch.const import MIN_VALID_TIME_MS
from flarewatch.payloads import Sample
from models.const import WORN_GAP_S
from models.errors import RecordingError

log = logging.getLogger(__name__)

# CSV column -> (Sample field, lowest, highest accepted value): the ranges of the wire contract
VITAL_COLUMNS: dict[str, tuple[str, float, float]] = {
    "hr_bpm": ("heart_rate_bpm", 20.0, 300.0),
    "skin_temp_c": ("skin_temperature_c", 10.0, 45.0),
    "steps": ("steps", 0.0, 10_000.0),
    "acc_g": ("acceleration_g", 0.0, 32.0),
    "acc_sd_g": ("acceleration_sd_g", 0.0, 32.0),
    "contact": ("contact_detected", 0.0, 1.0),
}


@dataclass(slots=True)
class RecordingQuality:
    """What loading a recording had to drop, per reason (counted rejections)."""

    rows: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    dropped_cells: dict[str, int] = field(default_factory=dict)

    def count_rows(self, reason: str, n: int) -> None:
        """Count ``n`` rows dropped for ``reason``."""
        if n:
            self.dropped_rows[reason] = self.dropped_rows.get(reason, 0) + n

    def count_cells(self, column: str, n: int) -> None:
        """Count ``n`` values of ``column`` turned into missing values."""
        if n:
            self.dropped_cells[column] = self.dropped_cells.get(column, 0) + n


def read_recording(path: Path) -> tuple[pd.DataFrame, RecordingQuality]:
    """Read and clean a recording CSV (gzip allowed); raises RecordingError if unusable."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, compression="infer")
    except FileNotFoundError as exc:
        raise RecordingError(path, "file not found") from exc
    except (OSError, EOFError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RecordingError(path, f"not a readable CSV file ({exc.__class__.__name__})") from exc
    return clean_recording(raw, path)


def clean_recording(
    raw: pd.DataFrame, origin: Path | str = "<frame>"
) -> tuple[pd.DataFrame, RecordingQuality]:
    """Coerce a raw table to the recording columns, sorted by time, bad values counted, blanked."""
    if "time_s" not in raw.columns:
        raise RecordingError(origin, "no 'time_s' column: the header must name it (epoch seconds)")
    present = [c for c in VITAL_COLUMNS if c in raw.columns]
    if not present:
        wanted = ", ".join(VITAL_COLUMNS)
        raise RecordingError(origin, f"no vital column: expected any of {wanted}")
    quality = RecordingQuality(rows=len(raw))
    frame = pd.DataFrame({"time_s": _numeric(raw["time_s"])})
    bad_time = frame["time_s"].isna() | (frame["time_s"] * 1000 < MIN_VALID_TIME_MS)
    quality.count_rows("bad_time", int(bad_time.sum()))
    for column in present:
        _, low, high = VITAL_COLUMNS[column]
        text = raw[column].astype(str).str.strip()
        values = _numeric(raw[column])
        invalid = (values.isna() & (text != "") & (text.str.lower() != "nan")) | (
            (values < low) | (values > high)
        )
        quality.count_cells(column, int(invalid.sum()))
        frame[column] = values.where(~invalid)
    frame = frame[~bad_time]
    frame = frame.sort_values("time_s", kind="stable")
    duplicated = frame["time_s"].duplicated(keep="first")
    quality.count_rows("duplicate_time", int(duplicated.sum()))
    frame = frame[~duplicated].reset_index(drop=True)
    if frame.empty:
        raise RecordingError(origin, "no row with a valid time_s")
    return frame, quality


def worn_intervals_s(time_s: np.ndarray, before_s: float | None = None) -> np.ndarray:
    """Seconds of wear each reading closes: the time since the reading before it.

    ``before_s`` is the time of the reading before the first (None: nothing came before). Across
    a gap of WORN_GAP_S or more, or with nothing before, a reading closes no wear.
    """
    times = np.asarray(time_s, dtype="float64")
    previous = np.concatenate(([np.nan if before_s is None else before_s], times[:-1]))
    dt = times - previous
    return np.where(dt < WORN_GAP_S, dt, 0.0)  # NaN compares false: no wear before the first


def _numeric(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce").astype("float64")


def iter_samples(frame: pd.DataFrame, without: Collection[str] = ()) -> Iterator[Sample]:
    """Samples of a cleaned recording frame, in time order (values already range-checked).

    Columns named in ``without`` are left out, as from a band that lacks those sensors.
    """
    times_ms = np.round(frame["time_s"].to_numpy(dtype="float64") * 1000.0).astype("int64")
    columns: dict[str, list[Any]] = {}
    for column, (name, _, _) in VITAL_COLUMNS.items():
        if column not in frame.columns or column in without:
            continue
        values = frame[column].to_numpy(dtype="float64")
        present = ~np.isnan(values)
        if name == "steps":
            cast: list[object] = [
                int(v) if ok else None for v, ok in zip(values, present, strict=True)
            ]
        elif name == "contact_detected":
            cast = [bool(v) if ok else None for v, ok in zip(values, present, strict=True)]
        else:
            cast = [float(v) if ok else None for v, ok in zip(values, present, strict=True)]
        columns[name] = cast
    names = list(columns)
    for seq, time_ms in enumerate(times_ms.tolist()):
        fields: dict[str, Any] = {name: columns[name][seq] for name in names}
        # already range-checked column by column above: skip per-sample validation for speed
        yield Sample.model_construct(seq=seq, time_ms=time_ms, **fields)
