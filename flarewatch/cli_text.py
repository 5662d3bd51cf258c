"""Plain-text output of the command line: tables (``admin`` listings, ``scan``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


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
