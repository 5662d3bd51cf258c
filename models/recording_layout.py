"""The text layer of recording files: decompression, the header's layout, lines that do not fit.

:mod:`models.recording` reads a recording through these: the file is opened as UTF-8 text
(gzip, bzip2 and xz recognised by their first bytes), the header is mapped to the columns the
reader keeps (in any case; a kept column named twice is refused), a line with more fields than the
header is re-read honouring its quotes, and a header met again (files joined with ``cat``) is
dropped, or refused if it orders the kept columns otherwise.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import pandas as pd

from models.errors import RecordingError

if TYPE_CHECKING:
    from models.recording import RecordingQuality

IGNORED = "\x00column"
"""Name given to ignored and overflow columns (never a real header name), with their index."""

_COMPRESSED: tuple[tuple[bytes, type[gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile]], ...] = (
    (b"\x1f\x8b", gzip.GzipFile),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)


def compression(path: Path) -> type[gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile] | None:
    """The decompressing file class the file's first bytes call for (None: plain text)."""
    with path.open("rb") as probe:
        magic = probe.read(6)
    return next((kind for prefix, kind in _COMPRESSED if magic.startswith(prefix)), None)


def open_text(path: Path) -> io.TextIOWrapper:
    """The file as UTF-8 text (undecodable bytes replaced), decompressed if its magic says so."""
    kind = compression(path)
    opened = kind(path, "rb") if kind is not None else path.open("rb")
    binary = cast(BinaryIO, opened)  # the compressed-file classes are binary files too
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")


@dataclass(frozen=True, slots=True)
class Layout:
    """Parser column names, how many of them the header has, and the lines before the data."""

    names: list[str]
    width: int
    skip: int
    contract: frozenset[str]
    """The column names the reader keeps (the others get IGNORED names)."""


def read_layout(path: Path, contract: frozenset[str]) -> Layout:
    """Read the header: contract columns keep their name (in lower case), others a placeholder.

    A contract column named twice is an error, not a guess at which of the two holds the data.

    Overflow columns after the header's make room for the first data line's fields, so the
    parser never takes an extra field there for an index column.
    """
    with open_text(path) as stream:
        skip = 0
        header = ""
        for line in stream:
            skip += 1
            if line.strip():
                header = line
                break
        first = next((line for line in stream if line.strip()), "")
    if not header:
        raise RecordingError(path, "is empty: expected a header line naming time_s, then rows")
    # names as written by hand or by other tools: " HR_BPM " is hr_bpm
    raw = [n.strip().lower() for n in next(csv.reader([header]), [])]
    if "time_s" not in raw and any("time_s" in n for n in raw):  # "time_s;hr_bpm" as one name
        raise RecordingError(
            path,
            "the header names no 'time_s' column: is the file not "
            "comma-separated? (semicolons and tabs are not read)",
        )
    names: list[str] = []
    for i, name in enumerate(raw):
        if name in names:  # which of the two holds the data is anyone's guess
            raise RecordingError(
                path, f"column {name} is named twice in the header: keep one of them"
            )
        names.append(name if name in contract else f"{IGNORED}{i}")
    width = len(names)
    overflow = max(first.rstrip("\r\n").count(",") + 1 - width, 0) + 1
    names += [f"{IGNORED}{width + i}" for i in range(overflow)]
    return Layout(names, width, skip, contract)


def refit_overflowing(
    chunk: pd.DataFrame, layout: Layout, quality: RecordingQuality
) -> pd.DataFrame:
    """Re-read the lines with more fields than the header honouring quotes; drop the misfits."""
    overflow = chunk.iloc[:, layout.width :]
    spilled = (overflow.notna() & (overflow != "")).any(axis=1)
    if not spilled.any():
        return chunk
    chunk = chunk.copy()
    misfits = []
    header = layout.names[: layout.width]
    for index, row in chunk[spilled].iterrows():
        fitted = refit(["" if pd.isna(v) else str(v) for v in row.tolist()], layout.width)
        if fitted is None:
            misfits.append(index)
        else:
            chunk.loc[index, header] = fitted
    quality.count_rows("bad_line", len(misfits))
    return chunk.drop(index=misfits)


def drop_repeated_headers(
    chunk: pd.DataFrame, layout: Layout, quality: RecordingQuality, path: Path
) -> pd.DataFrame:
    """Drop header lines met again (files joined with ``cat``), counted as ``header_line``.

    One that puts a contract column elsewhere is refused: the rows after it would be read into
    the wrong columns (heart rates as skin temperatures), mostly without a value out of range.
    """
    repeated = header_text(chunk["time_s"]) == "time_s"
    if not repeated.any():
        return chunk
    header = layout.names[: layout.width]
    for _, row in chunk.loc[repeated, header].iterrows():
        for name, cell in zip(header, header_text(row).tolist(), strict=True):
            if (cell != name) if name in layout.contract else (cell in layout.contract):
                raise RecordingError(
                    path,
                    "a second header names the columns in another order (files joined?): "
                    "split the file there, or give every part the same header",
                )
    quality.count_rows("header_line", int(repeated.sum()))
    return chunk[~repeated]


def header_text(cells: pd.Series) -> pd.Series:
    """Cells as header names are compared: no quotes, no surrounding spaces, lower case."""
    return cells.fillna("").astype(str).str.strip().str.strip('"').str.strip().str.lower()


def refit(fields: list[str], width: int) -> list[str] | None:
    """A line split on every comma, re-read honouring its quotes; None if it still does not fit."""
    while fields and fields[-1] == "":
        fields = fields[:-1]
    try:
        parsed = next(csv.reader([",".join(fields)]), [])
    except csv.Error:
        return None
    if len(parsed) > width:
        return None
    return parsed + [""] * (width - len(parsed))
