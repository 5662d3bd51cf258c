"""Battery Service 0x180F: Battery Level 0x2A19, a uint8 percentage 0-100.

*Battery Service* 1.0 §3.1 and *GATT Specification Supplement* §3.27; values 101-255 are
prohibited, so they are rejected rather than clamped.
"""

from __future__ import annotations

import dataclasses

from collector.gatt.reader import PayloadReader
from collector.gatt.uuids import BATTERY_LEVEL
from collector.gatt.values import GattValue

MAX_BATTERY_PERCENT = 100


@dataclasses.dataclass(frozen=True, slots=True)
class BatteryLevel(GattValue):
    """Charge left in the wearable, reported in the device status and in samples."""

    battery_percent: int


def parse_battery_level(data: bytes | bytearray | memoryview) -> BatteryLevel:
    """Decode a Battery Level value; raises ``GattParseError`` for >100 % or a wrong length."""
    reader = PayloadReader(BATTERY_LEVEL, data)
    level = reader.uint(1, "battery level")
    reader.finish()
    if level > MAX_BATTERY_PERCENT:
        raise reader.error("out_of_range", f"battery level {level} % is above 100 %")
    return BatteryLevel(level)
