"""Temperature Measurement 0x2A1C / Intermediate Temperature 0x2A1E and the IEEE-11073 FLOAT.

Vectors from the Bluetooth SIG *Health Thermometer Service* 1.0 (HTS) §3.1.1 (flags: bit 0
Fahrenheit, bit 1 time stamp, bit 2 temperature type), §3.2.1 (temperature type codes), the
*GATT Specification Supplement* §3.70 (Date Time, 7 bytes) and IEEE 11073-20601 §F.8 / the SIG
*Personal Health Devices Transcoding* white paper §2.2 (FLOAT: int8 exponent, int24 mantissa,
special values with exponent 0).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import GattParseError
from collector.gatt import (
    DeviceDateTime,
    FloatSpecial,
    TemperatureType,
    TemperatureUnit,
    decode,
    parse_temperature_measurement,
)
from collector.gatt.health_thermometer import encode_temperature_measurement
from collector.gatt.uuids import INTERMEDIATE_TEMPERATURE


@pytest.mark.parametrize(
    ("float_hex", "celsius"),
    [
        ("6e0100ff", 36.6),  # mantissa 366, exponent -1
        ("4c0e00fe", 36.6),  # 3660e-2: same value, finer resolution
        ("25000000", 37.0),  # exponent 0
        ("fbffffff", -0.5),  # mantissa -5 (0xFFFFFB), exponent -1: a negative mantissa
        ("04000001", 40.0),  # positive exponent: 4e1
        ("fdff7f00", 8388605.0),  # largest mantissa below the special values, exponent 0
        ("ffff7fff", 838860.7),  # 0x7FFFFF with exponent -1 is an ordinary number
        ("03008080", 3e-128),  # extreme exponent -128
    ],
)
def test_ieee11073_float_values(float_hex: str, celsius: float) -> None:
    value = parse_temperature_measurement(bytes.fromhex("00" + float_hex))
    assert value.temperature_c == pytest.approx(celsius, rel=1e-12)
    assert value.temperature_special is None
    assert value.reported_unit is TemperatureUnit.CELSIUS


@pytest.mark.parametrize(
    ("raw", "special"),
    [
        (0x007FFFFF, FloatSpecial.NAN),
        (0x00800000, FloatSpecial.NRES),
        (0x007FFFFE, FloatSpecial.POSITIVE_INFINITY),
        (0x00800002, FloatSpecial.NEGATIVE_INFINITY),
    ],
)
@pytest.mark.parametrize("flags", [0x00, 0x01])
def test_special_values_carry_no_number(raw: int, special: FloatSpecial, flags: int) -> None:
    value = parse_temperature_measurement(bytes([flags]) + raw.to_bytes(4, "little"))
    assert value.temperature_c is None
    assert value.temperature_special is special


def test_reserved_float_value_is_refused() -> None:
    """0x00800001 is reserved for future use: no conforming sender transmits it."""
    with pytest.raises(GattParseError) as info:
        parse_temperature_measurement(b"\x00" + (0x00800001).to_bytes(4, "little"))
    assert info.value.reason == "reserved_value"


@pytest.mark.parametrize(
    ("float_hex", "celsius"),
    [("da0300ff", 37.0), ("20000000", 0.0), ("70feffff", -40.0)],
)
def test_fahrenheit_is_converted(float_hex: str, celsius: float) -> None:
    """HTS §3.1.1.1 bit 0: the value is in °F (98.6 °F, 32 °F, -40 °F)."""
    value = parse_temperature_measurement(bytes.fromhex("01" + float_hex))
    assert value.temperature_c == celsius  # exact: Decimal arithmetic before the float
    assert value.reported_unit is TemperatureUnit.FAHRENHEIT


def test_timestamp_and_type() -> None:
    """Flags 0x06: FLOAT, Date Time 2018-11-25 14:30:00 (year LE 0x07E2), type 2 = body."""
    value = parse_temperature_measurement(bytes.fromhex("066e0100ffe2070b190e1e0002"))
    assert value.timestamp == DeviceDateTime(2018, 11, 25, 14, 30, 0)
    assert value.temperature_type is TemperatureType.BODY
    assert value.to_json_dict() == {
        "temperature_c": 36.6,
        "temperature_special": None,
        "reported_unit": "celsius",
        "timestamp": "2018-11-25T14:30:00",
        "temperature_type": "body",
    }


@pytest.mark.parametrize(("code", "kind"), [(i + 1, t) for i, t in enumerate(TemperatureType)])
def test_every_temperature_type(code: int, kind: TemperatureType) -> None:
    value = parse_temperature_measurement(bytes.fromhex("046e0100ff") + bytes([code]))
    assert value.temperature_type is kind


@pytest.mark.parametrize("code", [0, 10, 255])
def test_reserved_temperature_types_are_refused(code: int) -> None:
    with pytest.raises(GattParseError, match="reserved_value"):
        parse_temperature_measurement(bytes.fromhex("046e0100ff") + bytes([code]))


@pytest.mark.parametrize(
    "date_time",
    [
        "00000b190e1e00",  # year 0: "not known" (Supplement §3.70)
        "e207000e0e1e00",  # month 0
        "e2070b000e1e00",  # day 0
    ],
)
def test_unknown_dates_mean_no_timestamp(date_time: str) -> None:
    value = parse_temperature_measurement(bytes.fromhex("026e0100ff" + date_time))
    assert value.timestamp is None
    assert value.temperature_c == 36.6


@pytest.mark.parametrize(
    "date_time",
    [
        "e2070d190e1e00",  # month 13
        "e2070b1f0e1e00",  # 31 November
        "e507021d000000",  # 29 February 2021
        "e2070b19181e00",  # hour 24
        "e2070b190e3c00",  # minute 60
        "e2070b190e1e3c",  # second 60
        "2d060101000000",  # year 1581
    ],
)
def test_impossible_dates_are_refused(date_time: str) -> None:
    with pytest.raises(GattParseError, match="out_of_range"):
        parse_temperature_measurement(bytes.fromhex("026e0100ff" + date_time))


@pytest.mark.parametrize("flags", range(8))
def test_every_flag_combination_and_every_cut(flags: int) -> None:
    payload = bytes([flags]) + bytes.fromhex("6e0100ff")
    payload += bytes.fromhex("e2070b190e1e00") if flags & 0x02 else b""
    payload += b"\x03" if flags & 0x04 else b""
    value = parse_temperature_measurement(payload)
    assert (value.timestamp is not None) is bool(flags & 0x02)
    assert (value.temperature_type is TemperatureType.EAR) is bool(flags & 0x04)
    for cut in range(len(payload)):
        with pytest.raises(GattParseError, match="truncated"):
            parse_temperature_measurement(payload[:cut])
    with pytest.raises(GattParseError, match="trailing_bytes"):
        parse_temperature_measurement(payload + b"\x00")


def test_intermediate_temperature_errors_name_their_own_uuid() -> None:
    with pytest.raises(GattParseError) as info:
        decode("2a1e", b"\x00\x01", device_id="patch-1")
    assert info.value.counter_key == ("patch-1", INTERMEDIATE_TEMPERATURE, "truncated")
    assert decode("2a1c", bytes.fromhex("006e0100ff")) == decode(
        "2a1e", bytes.fromhex("006e0100ff")
    )


@settings(deadline=None)  # shared CI cores: timing noise is not a failure
@given(
    mantissa=st.integers(-0x800000, 0x7FFFFF),
    exponent=st.integers(-128, 127),
    fahrenheit=st.booleans(),
    timestamp=st.none()
    | st.datetimes().map(
        lambda d: DeviceDateTime(d.year, d.month, d.day, d.hour, d.minute, d.second)
    ),
    kind=st.none() | st.sampled_from(TemperatureType),
)
def test_round_trip(
    mantissa: int,
    exponent: int,
    fahrenheit: bool,
    timestamp: DeviceDateTime | None,
    kind: TemperatureType | None,
) -> None:
    """Every encodable value decodes to the number it stands for, or to its special value."""
    if timestamp is not None and timestamp.year < 1582:
        timestamp = None
    payload = encode_temperature_measurement(
        mantissa, exponent, fahrenheit=fahrenheit, timestamp=timestamp, temperature_type=kind
    )
    raw = int.from_bytes(payload[1:5], "little")
    if raw == 0x00800001:
        with pytest.raises(GattParseError):
            parse_temperature_measurement(payload)
        return
    value = parse_temperature_measurement(payload)
    assert value.timestamp == timestamp
    assert value.temperature_type is kind
    if exponent == 0 and raw in (0x007FFFFF, 0x00800000, 0x007FFFFE, 0x00800002):
        assert value.temperature_c is None and value.temperature_special is not None
        return
    number = mantissa * 10.0**exponent
    expected = (number - 32) * 5 / 9 if fahrenheit else number
    assert value.temperature_c == pytest.approx(expected, rel=1e-9, abs=1e-300)
