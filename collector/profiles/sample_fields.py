"""Keep only the sample fields the wire contract accepts, value by value, so nothing good is lost.

A heart-rate strap off the skin sends 0 bpm next to a valid "no contact" flag; rejecting the whole
notification would lose the contact state. Each field (and each element of a tuple field such as
``rr_intervals_s``) is checked against ``flarewatch.payloads.Sample``, the one home of the limits.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from collector.profiles.base import SampleFieldValue
from flarewatch.payloads import Sample

# The first fields of every sample are set by the collector, not by a profile.
_COLLECTOR_FIELDS = frozenset({"seq", "time_ms"})


@functools.cache
def _adapter(name: str) -> TypeAdapter[Any] | None:
    field = Sample.model_fields.get(name)
    if field is None or name in _COLLECTOR_FIELDS:
        return None
    return TypeAdapter(field.rebuild_annotation(), config={"strict": True})


def _valid(adapter: TypeAdapter[Any], value: object) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def conform_to_contract(
    fields: Mapping[str, SampleFieldValue],
) -> tuple[dict[str, SampleFieldValue], tuple[str, ...]]:
    """``(kept, rejected)``: fields valid for a ``Sample``, and the names of those cut or dropped.

    A tuple field keeps its valid elements (up to the contract's length limit); any element lost
    puts its name in ``rejected``. Names that are not sample fields are always rejected.
    """
    kept: dict[str, SampleFieldValue] = {}
    rejected: list[str] = []
    for name, value in fields.items():
        adapter = _adapter(name)
        if value is None:
            continue  # not measured
        if adapter is None:
            rejected.append(name)
        elif _valid(adapter, value):
            kept[name] = value
        elif isinstance(value, tuple):
            survivors = _largest_valid_prefix(adapter, [v for v in value if _valid(adapter, (v,))])
            rejected.append(name)
            if survivors:
                kept[name] = survivors
        else:
            rejected.append(name)
    return kept, tuple(rejected)


def _largest_valid_prefix(adapter: TypeAdapter[Any], items: list[Any]) -> tuple[Any, ...]:
    """Valid elements only: trim the tail when the contract limits the length."""
    while items and not _valid(adapter, tuple(items)):
        items.pop()
    return tuple(items)
