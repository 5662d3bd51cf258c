"""The common base of decoded GATT values: frozen dataclasses with a stable JSON form."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from collector.gatt.date_time import DeviceDateTime

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


def _to_json(value: Any) -> JsonValue:
    if isinstance(value, GattValue):
        return value.to_json_dict()
    if isinstance(value, DeviceDateTime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _to_json(value.value)
    if isinstance(value, tuple | list):
        return [_to_json(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")  # a bug in a value class


@dataclasses.dataclass(frozen=True, slots=True)
class GattValue:
    """Base of every decoded characteristic value; field names are the contract's names."""

    def to_json_dict(self) -> dict[str, JsonValue]:
        """The value as a JSON object: every field, absent ones as ``null``, enums as strings."""
        return {
            field.name: _to_json(getattr(self, field.name)) for field in dataclasses.fields(self)
        }
