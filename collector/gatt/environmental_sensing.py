"""Environmental Sensing Service 0x181A: Temperature 0x2A6E.

The value is a sint16 in units of 0.01 °C, and 0x8000 (-32768) means "value is not known"
(*GATT Specification Supplement* §3.204 Temperature, §2.3 special values).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from collector.gatt.reader import PayloadReader
from collector.gatt.uuids import ENVIRONMENTAL_TEMPERATURE
from collector.gatt.values import GattValue

UNKNOWN_RAW = -0x8000
RESOLUTION_C = Decimal("0.01")


@dataclasses.dataclass(frozen=True, slots=True)
class EnvironmentalTemperature(GattValue):
    """One 0x2A6E value; ``temperature_c`` is ``None`` when the sensor reports "not known"."""

    temperature_c: float | None


def parse_environmental_temperature(
    data: bytes | bytearray | memoryview,
) -> EnvironmentalTemperature:
    """Decode an Environmental Sensing Temperature value; raises ``GattParseError``."""
    reader = PayloadReader(ENVIRONMENTAL_TEMPERATURE, data)
    raw = reader.sint(2, "temperature")
    reader.finish()
    return EnvironmentalTemperature(None if raw == UNKNOWN_RAW else float(raw * RESOLUTION_C))


def encode_environmental_temperature(centi_celsius: int | None) -> bytes:
    """Encode a value in 0.01 °C, ``None`` as "not known" (for virtual devices and tests)."""
    raw = UNKNOWN_RAW if centi_celsius is None else centi_celsius
    return raw.to_bytes(2, "little", signed=True)
