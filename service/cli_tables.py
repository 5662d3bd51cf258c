"""What the ``flarewatch admin`` listings share: plain-text tables, UTC times, row numbers."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from typing import Any

from service.const import MAX_ROW_NUMBER


def row_number(text: str) -> int:
    """An argparse type for ids and ``--limit``: a whole number from 1 to MAX_ROW_NUMBER."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_ROW_NUMBER:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_ROW_NUMBER}, got {value}")
    return value


def when(time_s: float | None) -> str:
    """A UTC epoch time as ``YYYY-MM-DD HH:MM:SSZ`` (``-`` for none)."""
    if time_s is None:
        return "-"
    return dt.datetime.fromtimestamp(time_s, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print ``rows`` under ``headers`` in left-aligned columns.

    A reader that stops early (``| head``, a pager quit) ends the listing quietly.
    """
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    try:
        for row in cells:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        sys.stdout.flush()
    except BrokenPipeError:
        # what is left in the buffer would fail again when Python flushes it at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
