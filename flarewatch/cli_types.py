"""Argparse types shared by the commands: numbers checked where they are typed, not deep inside.

A NaN speed or an infinite duration otherwise reaches ``int()`` or numpy far from the flag and
ends in a traceback; a negative seed is refused by numpy the same way.
"""

from __future__ import annotations

import argparse
import math
from typing import Final

from flarewatch.const import MIN_VALID_TIME_MS

MAX_SEED: Final = 2**32 - 1
"""Largest seed taken (numpy accepts any non-negative integer; 32 bits is plenty to name a run)."""

MAX_PORT: Final = 65535


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive(text: str) -> float:
    """A finite number above 0 (durations, rates)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def non_negative(text: str) -> float:
    """A finite number of at least 0 (a speed where 0 means as fast as possible, an offset)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (counts)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to ``MAX_SEED``."""
    value = _whole(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_SEED}, got {value}")
    return value


def epoch_ms(text: str) -> int:
    """A UTC time in epoch milliseconds the wire contract accepts (from 2010 on)."""
    value = _whole(text)
    if value < MIN_VALID_TIME_MS:
        raise argparse.ArgumentTypeError(
            f"must be UTC epoch milliseconds from {MIN_VALID_TIME_MS} (2010) on, got {value}"
        )
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    value = _whole(text)
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_PORT}, got {value}")
    return value


def add_speed_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Add ``--speed``: simulated seconds per real second (default 1), for every simulation."""
    parser.add_argument("--speed", type=non_negative, default=1.0, help=help_text)
