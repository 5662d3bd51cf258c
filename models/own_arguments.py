"""The ``evaluate`` flags for your own recordings, registered by :mod:`models.cli`.

A module of its own with nothing but argparse: every ``flarewatch`` command builds the parser,
and the evaluation's modules (pandas, matplotlib) would slow them all down.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_own_recordings_arguments(evaluate: argparse.ArgumentParser) -> None:
    """The ``evaluate`` flags that measure the detectors on a folder of your own recordings."""
    own = evaluate.add_argument_group(
        "your own recordings (docs/evaluation.md#your-own-recordings)"
    )
    own.add_argument(
        "--recordings",
        type=Path,
        default=None,
        metavar="DIR",
        help="evaluate on this folder instead: one recording per wearer in the format of "
        "'detect --input' (*.csv, *.csv.gz...; the wearer is the file name)",
    )
    own.add_argument(
        "--episodes",
        type=Path,
        default=None,
        metavar="EPISODES.csv",
        help="with --recordings: real labelled episodes (subject,onset_s,end_s,kind)",
    )
    own.add_argument(
        "--no-inject",
        action="store_true",
        help="with --recordings: only the real labelled episodes, no injected ones",
    )
