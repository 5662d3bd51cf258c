"""Heart Rate Measurement 0x2A37 and Body Sensor Location 0x2A38.

Vectors are written from the Bluetooth SIG *Heart Rate Service* 1.0 (HRS): §3.1.1.1 flags,
§3.1.1.2/3 8- and 16-bit value, §3.1.1.1 bits 1-2 sensor contact status, §3.1.1.4 energy
expended (uint16 kJ), §3.1.1.5 RR-intervals (uint16, 1/1024 s, as many as fit), §3.2 body sensor
location. The cross-check encodes with Bumble's Heart Rate profile (an independent implementation).
"""

from __future__ import annotations

import struct

import pytest
from bumble.profiles.heart_rate_service import HeartRateService
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import GattParseError
from collector.gatt import (
    HeartRateMeasurement,
    SensorLocation,
    decode,
    parse_body_sensor_location,
    parse_heart_rate_measurement,
)
from collector.gatt.uuids import HEART_RATE_MEASUREMENT

BumbleHRM = HeartRateService.HeartRateMeasurement


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # HRS §3.1.1.1: flags 0x00 = uint8 value, no contact support, nothing else.
        ("0048", HeartRateMeasurement(72, False, None, None, None)),
        # bit 0 set: uint16 value (HRS §3.1.1.3), little-endian 0x012C = 300 bpm.
        ("012c01", HeartRateMeasurement(300, False, None, None, None)),
        # bits 1-2 = 0b10 (0x04): contact supported but not detected.
        ("0450", HeartRateMeasurement(80, True, False, None, None)),
        # bits 1-2 = 0b11 (0x06): supported and detected.
        ("0650", HeartRateMeasurement(80, True, True, None, None)),
        # bits 1-2 = 0b01 (0x02): "not supported" -- bit 1 alone means nothing (HRS Table 3.2).
        ("0250", HeartRateMeasurement(80, False, None, None, None)),
        # bit 3: energy expended uint16 kJ follows the value (HRS §3.1.1.4): 0x0102 = 258 kJ.
        ("085a0201", HeartRateMeasurement(90, False, None, 258, None)),
        # bit 4: RR-intervals in 1/1024 s (HRS §3.1.1.5): 0x0400 = 1.0 s, 0x0200 = 0.5 s.
        ("10480004", HeartRateMeasurement(72, False, None, None, (1.0,))),
        ("104800040002", HeartRateMeasurement(72, False, None, None, (1.0, 0.5))),
        # The example of issue 3: flags 0x16 (contact supported+detected, RR), 72 bpm, 259/1024 s.
        ("16480301", HeartRateMeasurement(72, True, True, None, (259 / 1024,))),
        # Everything: uint16 value, contact detected, energy 0xFFFF, three RR intervals.
        (
            "1f4800ffff000400020001",
            HeartRateMeasurement(72, True, True, 65535, (1.0, 0.5, 0.25)),
        ),
        # Bits 5-7 are reserved for future use and ignored by receivers (Core spec Vol 1 Part E
        # §2.9 / HRS Table 3.2).
        ("e048", HeartRateMeasurement(72, False, None, None, None)),
        # RR flag with an empty field: the heart rate is still good data, the list is empty.
        ("1048", HeartRateMeasurement(72, False, None, None, ())),
    ],
)
def test_spec_vectors(payload: str, expected: HeartRateMeasurement) -> None:
    assert parse_heart_rate_measurement(bytes.fromhex(payload)) == expected


def test_rr_intervals_fill_a_large_mtu() -> None:
    """ "Any number" of RR intervals: 250 of them in one value (an MTU of 512)."""
    raw = list(range(300, 550))
    payload = bytes([0x10, 60]) + struct.pack(f"<{len(raw)}H", *raw)
    assert parse_heart_rate_measurement(payload).rr_intervals_s == tuple(r / 1024 for r in raw)


@pytest.mark.parametrize("flags", range(32))
def test_every_flag_combination_and_every_cut(flags: int) -> None:
    """All 32 combinations of the defined flag bits: full value parses, every prefix is refused."""
    body = (b"\x34\x01" if flags & 0x01 else b"\x48") + (b"\x10\x00" if flags & 0x08 else b"")
    rr = b"\x00\x04\x33\x03" if flags & 0x10 else b""
    payload = bytes([flags]) + body + rr
    value = parse_heart_rate_measurement(payload)
    assert value.heart_rate_bpm == (0x0134 if flags & 0x01 else 0x48)
    assert value.contact_supported is bool(flags & 0x04)
    assert value.contact_detected is (bool(flags & 0x02) if flags & 0x04 else None)
    assert value.energy_expended_kj == (16 if flags & 0x08 else None)
    assert value.rr_intervals_s == ((1.0, 0x333 / 1024) if flags & 0x10 else None)
    # Cutting anywhere inside the mandatory fields, or in the middle of an RR interval, fails.
    fixed = 1 + len(body)
    for cut in [*range(fixed), *range(fixed + 1, len(payload), 2)]:
        with pytest.raises(GattParseError) as info:
            parse_heart_rate_measurement(payload[:cut])
        assert info.value.reason == "truncated"
        assert info.value.uuid == HEART_RATE_MEASUREMENT
    if not flags & 0x10:  # without RR intervals, anything after the last field is garbage
        with pytest.raises(GattParseError, match="trailing_bytes"):
            parse_heart_rate_measurement(payload + b"\x00")


def test_errors_carry_the_device_through_the_dispatcher() -> None:
    with pytest.raises(GattParseError) as info:
        decode("2a37", b"\x01\x48", device_id="band-7")
    assert info.value.counter_key == ("band-7", HEART_RATE_MEASUREMENT, "truncated")
    assert "band-7" in str(info.value)


def test_values_are_frozen() -> None:
    value = parse_heart_rate_measurement(bytes.fromhex("0048"))
    with pytest.raises(AttributeError):
        value.heart_rate_bpm = 1  # type: ignore[misc]


rr_lists = st.none() | st.lists(st.integers(0, 0xFFFF).map(lambda k: k / 1024), max_size=12)


@settings(deadline=None)  # shared CI cores: timing noise is not a failure
@given(
    heart_rate=st.integers(0, 0xFFFF),
    contact=st.none() | st.booleans(),
    energy=st.none() | st.integers(0, 0xFFFF),
    rr=rr_lists,
)
def test_bumble_encodes_we_decode(
    heart_rate: int, contact: bool | None, energy: int | None, rr: list[float] | None
) -> None:
    """Independent encoder: Bumble's HeartRateMeasurement.__bytes__ (bumble 0.0.236)."""
    payload = bytes(BumbleHRM(heart_rate, contact, energy, rr))
    assert parse_heart_rate_measurement(payload) == HeartRateMeasurement(
        heart_rate_bpm=heart_rate,
        contact_supported=contact is not None,
        contact_detected=contact,
        energy_expended_kj=energy,
        rr_intervals_s=None if rr is None else tuple(rr),
    )


@settings(deadline=None)  # shared CI cores: timing noise is not a failure
@given(st.binary(max_size=24))
def test_agrees_with_bumble_decoder_whenever_we_accept(payload: bytes) -> None:
    """Differential check on random bytes: what we accept, Bumble's from_bytes reads the same."""
    try:
        ours = parse_heart_rate_measurement(payload)
    except GattParseError:
        return
    theirs = BumbleHRM.from_bytes(payload)
    assert theirs.heart_rate == ours.heart_rate_bpm
    assert theirs.sensor_contact_detected == ours.contact_detected
    assert theirs.energy_expended == ours.energy_expended_kj
    assert (None if theirs.rr_intervals is None else tuple(theirs.rr_intervals)) == (
        ours.rr_intervals_s
    )


@pytest.mark.parametrize(("code", "location"), list(enumerate(SensorLocation)))
def test_body_sensor_location_from_bumble(code: int, location: SensorLocation) -> None:
    """HRS §3.2.1 values 0-6, encoded by Bumble's enum adapter."""
    service = HeartRateService(
        lambda _: BumbleHRM(60), body_sensor_location=HeartRateService.BodySensorLocation.WRIST
    )
    payload = service.body_sensor_location_characteristic.encode_value(
        HeartRateService.BodySensorLocation(code)
    )
    assert parse_body_sensor_location(payload).body_sensor_location is location


@pytest.mark.parametrize("payload", ["07", "ff", "", "0200"])
def test_body_sensor_location_rejects_reserved_and_bad_lengths(payload: str) -> None:
    with pytest.raises(GattParseError):
        parse_body_sensor_location(bytes.fromhex(payload))
