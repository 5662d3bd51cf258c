"""Checks on a restored detector snapshot: every entry of the right type and finite.

A snapshot damaged on disk must fail when it is loaded, not later in live use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_STATE_CHECKS: dict[str, Callable[[object], bool]] = {
    "float": _finite,
    "float | None": lambda v: v is None or _finite(v),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list[float]": lambda v: isinstance(v, list) and all(_finite(x) for x in v),
    "list[float | None]": lambda v: isinstance(v, list) and all(x is None or _finite(x) for x in v),
}


def check_state_value(name: str, value: object, kind: str) -> None:
    """Raise ValueError unless a restored state value is of ``kind`` (an annotation) and finite.

    A snapshot damaged on disk must fail when it is loaded, not later in live use: a NaN
    reference would stay NaN for good and blind the detector, a null score break the next sample.
    """
    check = _STATE_CHECKS.get(kind)
    if check is not None and not check(value):
        raise ValueError(f"{name} is not a finite {kind}")  # never the value: health data


def check_state_fields(state: DataclassInstance) -> None:
    """:func:`check_state_value` on every field of a state dataclass, by its annotation."""
    for f in fields(state):
        check_state_value(f"{type(state).__name__}.{f.name}", getattr(state, f.name), str(f.type))


def check_times_not_after(newest_s: float | None, times: dict[str, float | None]) -> None:
    """Raise ValueError if a restored time lies after the newest sample (or there is none).

    Every time in a detector's state is that of a sample it folded in. One after the newest
    makes the next time step negative: the averages extrapolate, or overflow and raise on every
    sample of that patient from then on.
    """
    for name, time_s in times.items():
        if time_s is not None and (newest_s is None or time_s > newest_s):
            raise ValueError(f"{name} lies after the newest sample")
