"""Running Speed and Cadence Service 0x1814: RSC Measurement 0x2A53 and RSC Feature 0x2A54.

Formats from the Bluetooth SIG *Running Speed and Cadence Service* 1.0 (RSCS) §3.1 (measurement,
notify) and §3.2 (feature, read), and the *GATT Specification Supplement* (RSC Measurement and RSC
Feature). Foot pods and sports watches use it; it is the standard profile that carries cadence,
the activity signal the detectors need to tell walking from a heart-rate surge.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

from collector.gatt.reader import PayloadReader
from collector.gatt.uuids import RSC_FEATURE, RSC_MEASUREMENT
from collector.gatt.values import GattValue

# Flags octet of the measurement (RSCS §3.1.1.1). Bits 3-7 are reserved for future use and, as the
# Core spec requires of receivers, ignored.
FLAG_STRIDE_LENGTH = 0x01
FLAG_TOTAL_DISTANCE = 0x02
FLAG_RUNNING = 0x04  # walking (0) or running (1) status

SPEED_RESOLUTION_M_S = Fraction(1, 256)
"""Instantaneous Speed unit (RSCS §3.1.1.2): 1/256 m/s, exact in binary floating point."""

STRIDE_LENGTH_RESOLUTION_M = Fraction(1, 100)
"""Instantaneous Stride Length unit (RSCS §3.1.1.4): 1/100 m."""

TOTAL_DISTANCE_RESOLUTION_M = Fraction(1, 10)
"""Total Distance unit (RSCS §3.1.1.5): 1/10 m."""

# RSC Feature bits (RSCS §3.2.1); bits 5-15 are reserved and ignored.
FEATURE_STRIDE_LENGTH = 0x0001
FEATURE_TOTAL_DISTANCE = 0x0002
FEATURE_RUNNING_STATUS = 0x0004
FEATURE_CALIBRATION = 0x0008
FEATURE_MULTIPLE_SENSOR_LOCATIONS = 0x0010


@dataclasses.dataclass(frozen=True, slots=True)
class RscMeasurement(GattValue):
    """One 0x2A53 notification: speed, cadence and, when sent, stride length and distance.

    ``cadence_per_min`` is what the device sends (RSCS: 1/minute); most devices count steps,
    some count strides (one foot), so it is only ever read as "moving or not" and a step rate.
    ``running`` is the walking/running status bit, meaningful when the feature says so.
    """

    speed_m_s: float
    cadence_per_min: int
    stride_length_m: float | None
    total_distance_m: float | None
    running: bool


def parse_rsc_measurement(data: bytes | bytearray | memoryview) -> RscMeasurement:
    """Decode an RSC Measurement value; raises ``GattParseError`` if it is malformed."""
    reader = PayloadReader(RSC_MEASUREMENT, data)
    flags = reader.uint(1, "flags")
    speed = reader.uint(2, "instantaneous speed")
    cadence = reader.uint(1, "instantaneous cadence")
    stride = reader.uint(2, "instantaneous stride length") if flags & FLAG_STRIDE_LENGTH else None
    distance = reader.uint(4, "total distance") if flags & FLAG_TOTAL_DISTANCE else None
    reader.finish()
    return RscMeasurement(
        speed_m_s=float(speed * SPEED_RESOLUTION_M_S),
        cadence_per_min=cadence,
        stride_length_m=None if stride is None else float(stride * STRIDE_LENGTH_RESOLUTION_M),
        total_distance_m=(
            None if distance is None else float(distance * TOTAL_DISTANCE_RESOLUTION_M)
        ),
        running=bool(flags & FLAG_RUNNING),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class RscFeature(GattValue):
    """The 0x2A54 value: which optional RSC measurement fields and procedures a sensor supports."""

    stride_length_supported: bool
    total_distance_supported: bool
    running_status_supported: bool
    calibration_supported: bool
    multiple_sensor_locations_supported: bool


def parse_rsc_feature(data: bytes | bytearray | memoryview) -> RscFeature:
    """Decode an RSC Feature value (uint16 bit field); raises ``GattParseError`` on a bad length."""
    reader = PayloadReader(RSC_FEATURE, data)
    bits = reader.uint(2, "RSC feature")
    reader.finish()
    return RscFeature(
        stride_length_supported=bool(bits & FEATURE_STRIDE_LENGTH),
        total_distance_supported=bool(bits & FEATURE_TOTAL_DISTANCE),
        running_status_supported=bool(bits & FEATURE_RUNNING_STATUS),
        calibration_supported=bool(bits & FEATURE_CALIBRATION),
        multiple_sensor_locations_supported=bool(bits & FEATURE_MULTIPLE_SENSOR_LOCATIONS),
    )
