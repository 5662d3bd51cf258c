"""Environmental Sensing temperature, Battery Level, Device Information and UUID handling.

Vectors from the *GATT Specification Supplement* §3.204 (Temperature 0x2A6E: sint16, 0.01 °C,
0x8000 "not known"), *Battery Service* 1.0 §3.1 (uint8, 0-100 %), *Device Information Service*
1.1 §3.1-3.9; cross-checked against Bumble's Battery and Device Information services.
"""

from __future__ import annotations

import uuid

import pytest
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import GattParseError
from collector.gatt import (
    STANDARD_CHARACTERISTICS,
    BatteryLevel,
    DeviceInformationString,
    EnvironmentalTemperature,
    PnpId,
    SystemId,
    decode,
    normalize_uuid,
    parse_battery_level,
    parse_environmental_temperature,
    short_form,
)
from collector.gatt.environmental_sensing import encode_environmental_temperature


@pytest.mark.parametrize(
    ("payload", "celsius"),
    [
        ("4c0e", 36.6),  # 3660 x 0.01 °C
        ("0000", 0.0),
        ("9cff", -1.0),  # -100: sint16 two's complement
        ("ff7f", 327.67),  # largest
        ("0180", -327.67),  # smallest number; 0x8000 is reserved for "not known"
        ("0080", None),
    ],
)
def test_environmental_temperature(payload: str, celsius: float | None) -> None:
    assert parse_environmental_temperature(bytes.fromhex(payload)) == EnvironmentalTemperature(
        celsius
    )


@pytest.mark.parametrize("payload", ["", "4c", "4c0e00"])
def test_environmental_temperature_is_exactly_two_bytes(payload: str) -> None:
    with pytest.raises(GattParseError):
        parse_environmental_temperature(bytes.fromhex(payload))


@settings(deadline=None)  # shared CI cores: timing noise is not a failure
@given(st.none() | st.integers(-0x7FFF, 0x7FFF))
def test_environmental_temperature_round_trip(centi: int | None) -> None:
    value = parse_environmental_temperature(encode_environmental_temperature(centi))
    assert value.temperature_c == (None if centi is None else pytest.approx(centi / 100))


@pytest.mark.parametrize("level", [0, 1, 57, 100])
def test_battery_level_encoded_by_bumble(level: int) -> None:
    """Bumble's BatteryService packs the level with struct format 'B'."""
    payload = BatteryService(lambda _: level).battery_level_characteristic.encode_value(level)
    assert parse_battery_level(payload) == BatteryLevel(level)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [("65", "out_of_range"), ("ff", "out_of_range"), ("", "truncated"), ("6400", "trailing_bytes")],
)
def test_battery_level_rejects(payload: str, reason: str) -> None:
    with pytest.raises(GattParseError) as info:
        parse_battery_level(bytes.fromhex(payload))
    assert info.value.reason == reason


def test_device_information_encoded_by_bumble() -> None:
    service = DeviceInformationService(
        manufacturer_name="Acme Wearables",
        model_number="Band 3",
        serial_number="SN-0042",
        hardware_revision="rev B",
        firmware_revision="2.1.0",
        software_revision="é-1",
        system_id=(0x001122, 0x0102030405),
    )
    decoded = {
        short_form(normalize_uuid(str(c.uuid.to_hex_str()))): decode(
            str(c.uuid.to_hex_str()), c.value
        )
        for c in service.characteristics
    }
    assert decoded["2a29"] == DeviceInformationString("manufacturer_name", "Acme Wearables")
    assert decoded["2a24"].to_json_dict() == {"model_number": "Band 3"}
    assert decoded["2a28"] == DeviceInformationString("software_revision", "é-1")
    assert decoded["2a23"] == SystemId(0x0102030405, 0x001122)


def test_device_information_strings_and_pnp_id() -> None:
    # Trailing NULs (sent by many devices although DIS strings have no terminator) are dropped.
    assert decode("2a26", b"1.2.3\x00\x00") == DeviceInformationString("firmware_revision", "1.2.3")
    with pytest.raises(GattParseError, match="bad_text"):
        decode("2a29", b"\xff\xfe")
    # PnP ID (DIS §3.9): source 1 = Bluetooth SIG, vendor 0x00E0, product 0x0001, version 0x0110.
    assert decode("2a50", bytes.fromhex("01e00001001001")) == PnpId("bluetooth_sig", 0xE0, 1, 0x110)
    with pytest.raises(GattParseError, match="reserved_value"):
        decode("2a50", bytes.fromhex("03e00001001001"))
    with pytest.raises(GattParseError, match="truncated"):
        decode("2a23", bytes(7))


@pytest.mark.parametrize(
    "form",
    [
        "2a37",
        "2A37",
        "0x2A37",
        " 2a37 ",
        "00002a37",
        0x2A37,
        "00002a37-0000-1000-8000-00805f9b34fb",
        "00002A3700001000800000805F9B34FB",
        uuid.UUID("00002a37-0000-1000-8000-00805f9b34fb"),
    ],
)
def test_uuid_forms(form: str | int | uuid.UUID) -> None:
    assert normalize_uuid(form) == "00002a37-0000-1000-8000-00805f9b34fb"


@pytest.mark.parametrize("form", ["", "2a3", "zz37", "2a37-", -1, 2**32, "heart rate"])
def test_bad_uuids(form: str | int) -> None:
    with pytest.raises(GattParseError) as info:
        normalize_uuid(form)
    assert info.value.reason == "bad_uuid"


def test_unsupported_uuid_is_a_parse_error() -> None:
    with pytest.raises(GattParseError) as info:
        decode("2a00", b"name", device_id="x")
    assert info.value.counter_key == ("x", normalize_uuid("2a00"), "unsupported_uuid")


def test_error_messages_never_repeat_the_payload() -> None:
    """Values may be health data: the error says where and why, not what was sent."""
    with pytest.raises(GattParseError) as info:
        decode("2a37", bytes.fromhex("11abcdef"))
    assert "abcdef" not in str(info.value).lower()
    assert "171" not in str(info.value)


def test_every_supported_characteristic_has_a_json_form() -> None:
    samples = {
        "2a37": "16480301", "2a38": "02", "2a1c": "066e0100ffe2070b190e1e0002",
        "2a1e": "00ffff7f00", "2a6e": "0080", "2a19": "64", "2a23": "0102030405112200",
        "2a50": "02010002000300", "2a24": "4231", "2a25": "", "2a26": "31", "2a27": "41",
        "2a28": "32", "2a29": "41636d65", "2a53": "0700035a480010270000", "2a54": "1f00",
    }  # fmt: skip
    assert {normalize_uuid(u) for u in samples} == set(STANDARD_CHARACTERISTICS)
    for short, payload in samples.items():
        json_form = decode(short, bytes.fromhex(payload)).to_json_dict()
        assert json_form and all(isinstance(k, str) for k in json_form)
