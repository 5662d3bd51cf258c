"""Health Thermometer Service 0x1809: Temperature Measurement 0x2A1C and Intermediate 0x2A1E.

Both characteristics share one format (*Health Thermometer Service* 1.0 §3.1 and §3.3; *GATT
Specification Supplement* §3.216): a flags octet (bit 0 Fahrenheit, bit 1 time stamp present,
bit 2 temperature type present, bits 3-7 reserved and ignored), an IEEE-11073 FLOAT, an optional
7-byte Date Time (Supplement §3.70) and an optional Temperature Type octet (HTS §3.2).
0x2A1C is indicate-only, 0x2A1E notifies.
"""

from __future__ import annotations

import dataclasses
import enum
from decimal import Decimal

from collector.gatt.date_time import DeviceDateTime, read_date_time
from collector.gatt.ieee11073 import FloatSpecial, encode_float, read_float
from collector.gatt.reader import PayloadReader
from collector.gatt.uuids import TEMPERATURE_MEASUREMENT
from collector.gatt.values import GattValue

FLAG_FAHRENHEIT = 0x01
FLAG_TIMESTAMP = 0x02
FLAG_TEMPERATURE_TYPE = 0x04

_FAHRENHEIT_OFFSET = Decimal(32)
_FAHRENHEIT_SCALE = Decimal(5) / Decimal(9)


class TemperatureType(enum.StrEnum):
    """Where the temperature was taken (HTS §3.2.1); 0 and 10-255 are reserved."""

    ARMPIT = "armpit"
    BODY = "body"
    EAR = "ear"
    FINGER = "finger"
    GASTROINTESTINAL_TRACT = "gastrointestinal_tract"
    MOUTH = "mouth"
    RECTUM = "rectum"
    TOE = "toe"
    TYMPANUM = "tympanum"


_TEMPERATURE_TYPES = tuple(TemperatureType)  # index = assigned value - 1


class TemperatureUnit(enum.StrEnum):
    """The unit the device sent; ``temperature_c`` is always converted to Celsius."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@dataclasses.dataclass(frozen=True, slots=True)
class TemperatureMeasurement(GattValue):
    """One 0x2A1C/0x2A1E value, always in Celsius.

    ``temperature_c`` is ``None`` exactly when ``temperature_special`` names a FLOAT special value
    (NaN, NRes, ±infinity): the thermometer had no number to give. ``timestamp`` is ``None`` when
    absent or when the device left its date unset (year, month or day 0).
    """

    temperature_c: float | None
    temperature_special: FloatSpecial | None
    reported_unit: TemperatureUnit
    timestamp: DeviceDateTime | None
    temperature_type: TemperatureType | None


def parse_temperature_measurement(
    data: bytes | bytearray | memoryview, uuid: str = TEMPERATURE_MEASUREMENT
) -> TemperatureMeasurement:
    """Decode a Temperature Measurement or Intermediate Temperature value (``uuid`` says which)."""
    reader = PayloadReader(uuid, data)
    flags = reader.uint(1, "flags")
    value = read_float(reader, "temperature")
    timestamp = read_date_time(reader) if flags & FLAG_TIMESTAMP else None
    temperature_type = None
    if flags & FLAG_TEMPERATURE_TYPE:
        code = reader.uint(1, "temperature type")
        if not 1 <= code <= len(_TEMPERATURE_TYPES):
            raise reader.error("reserved_value", f"temperature type {code} is reserved")
        temperature_type = _TEMPERATURE_TYPES[code - 1]
    reader.finish()
    fahrenheit = bool(flags & FLAG_FAHRENHEIT)
    celsius: float | None = None
    special: FloatSpecial | None = None
    if isinstance(value, FloatSpecial):
        special = value
    else:
        celsius = float((value - _FAHRENHEIT_OFFSET) * _FAHRENHEIT_SCALE if fahrenheit else value)
    return TemperatureMeasurement(
        temperature_c=celsius,
        temperature_special=special,
        reported_unit=TemperatureUnit.FAHRENHEIT if fahrenheit else TemperatureUnit.CELSIUS,
        timestamp=timestamp,
        temperature_type=temperature_type,
    )


def encode_temperature_measurement(
    mantissa: int,
    exponent: int,
    *,
    fahrenheit: bool = False,
    timestamp: DeviceDateTime | None = None,
    temperature_type: TemperatureType | None = None,
) -> bytes:
    """Encode a value of this format (for virtual thermometers and round-trip tests)."""
    flags = (
        (FLAG_FAHRENHEIT if fahrenheit else 0)
        | (FLAG_TIMESTAMP if timestamp else 0)
        | (FLAG_TEMPERATURE_TYPE if temperature_type else 0)
    )
    payload = bytes([flags]) + encode_float(mantissa, exponent)
    if timestamp:
        payload += timestamp.to_bytes()
    if temperature_type:
        payload += bytes([_TEMPERATURE_TYPES.index(temperature_type) + 1])
    return payload
