"""Heart Rate Service 0x180D: Heart Rate Measurement 0x2A37 and Body Sensor Location 0x2A38.

Formats from the Bluetooth SIG *Heart Rate Service* 1.0 §3.1 (measurement, notify) and §3.2
(body sensor location, read), and the *GATT Specification Supplement* §3.113/§3.26.
"""

from __future__ import annotations

import dataclasses
import enum
from fractions import Fraction

from collector.gatt.reader import PayloadReader
from collector.gatt.uuids import BODY_SENSOR_LOCATION, HEART_RATE_MEASUREMENT
from collector.gatt.values import GattValue

# Flags octet of the measurement (HRS §3.1.1.1). Bits 5-7 are reserved for future use and,
# as the Core spec requires of receivers, ignored.
FLAG_VALUE_UINT16 = 0x01
FLAG_CONTACT_DETECTED = 0x02  # meaningful only when FLAG_CONTACT_SUPPORTED is set
FLAG_CONTACT_SUPPORTED = 0x04
FLAG_ENERGY_EXPENDED = 0x08
FLAG_RR_INTERVALS = 0x10

RR_INTERVAL_RESOLUTION_S = Fraction(1, 1024)
"""RR-interval unit (HRS §3.1.1.5): 1/1024 s; exact in binary floating point."""


@dataclasses.dataclass(frozen=True, slots=True)
class HeartRateMeasurement(GattValue):
    """One 0x2A37 notification: beats per minute, skin contact, energy and beat-to-beat intervals.

    ``contact_detected`` is ``None`` when the sensor cannot tell (``contact_supported`` false);
    ``rr_intervals_s`` is ``None`` when the field is absent and may hold any number of values.
    """

    heart_rate_bpm: int
    contact_supported: bool
    contact_detected: bool | None
    energy_expended_kj: int | None
    rr_intervals_s: tuple[float, ...] | None


def parse_heart_rate_measurement(data: bytes | bytearray | memoryview) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement value; raises ``GattParseError`` if it is malformed."""
    reader = PayloadReader(HEART_RATE_MEASUREMENT, data)
    flags = reader.uint(1, "flags")
    value_size = 2 if flags & FLAG_VALUE_UINT16 else 1
    heart_rate = reader.uint(value_size, "heart rate value")
    contact_supported = bool(flags & FLAG_CONTACT_SUPPORTED)
    contact_detected = bool(flags & FLAG_CONTACT_DETECTED) if contact_supported else None
    energy = reader.uint(2, "energy expended") if flags & FLAG_ENERGY_EXPENDED else None
    rr_intervals: tuple[float, ...] | None = None
    if flags & FLAG_RR_INTERVALS:
        # The RR field runs to the end of the value; an odd byte count is a cut-off interval.
        # An empty field is tolerated (the heart rate in the same value is still good data).
        if reader.remaining % 2:
            raise reader.error("truncated", "RR-interval field has an odd number of bytes")
        rr_intervals = tuple(
            float(reader.uint(2, "RR interval") * RR_INTERVAL_RESOLUTION_S)
            for _ in range(reader.remaining // 2)
        )
    reader.finish()
    return HeartRateMeasurement(
        heart_rate_bpm=heart_rate,
        contact_supported=contact_supported,
        contact_detected=contact_detected,
        energy_expended_kj=energy,
        rr_intervals_s=rr_intervals,
    )


class SensorLocation(enum.StrEnum):
    """Where a heart-rate sensor sits (HRS §3.2.1); values 7-255 are reserved."""

    OTHER = "other"
    CHEST = "chest"
    WRIST = "wrist"
    FINGER = "finger"
    HAND = "hand"
    EAR_LOBE = "ear_lobe"
    FOOT = "foot"


_SENSOR_LOCATIONS = tuple(SensorLocation)  # index = assigned value


@dataclasses.dataclass(frozen=True, slots=True)
class BodySensorLocation(GattValue):
    """The 0x2A38 value: where the wearer has the sensor (metadata, not a sample field)."""

    body_sensor_location: SensorLocation


def parse_body_sensor_location(data: bytes | bytearray | memoryview) -> BodySensorLocation:
    """Decode a Body Sensor Location value; reserved codes raise ``GattParseError``."""
    reader = PayloadReader(BODY_SENSOR_LOCATION, data)
    code = reader.uint(1, "body sensor location")
    reader.finish()
    if code >= len(_SENSOR_LOCATIONS):
        raise reader.error("reserved_value", f"body sensor location {code} is reserved")
    return BodySensorLocation(_SENSOR_LOCATIONS[code])
