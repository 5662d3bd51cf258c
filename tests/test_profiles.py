"""Device profiles: recognising devices, measurement plans, mapping to contract sample fields."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from bumble.profiles.heart_rate_service import HeartRateService

from collector.errors import GattParseError
from collector.gatt import normalize_uuid
from collector.gatt.health_thermometer import TemperatureType, encode_temperature_measurement
from collector.profiles import (
    BATTERY,
    HEALTH_THERMOMETER,
    HEART_RATE,
    DeviceDescription,
    DeviceMatch,
    DeviceProfile,
    Measurement,
    ProfileRegistry,
    Subscription,
    default_registry,
)
from collector.profiles.plugins import example_skin_motion as example
from flarewatch.const import MIN_VALID_TIME_MS
from flarewatch.errors import ConfigError
from flarewatch.payloads import Sample

PLUGIN = "collector.profiles.plugins.example_skin_motion"


def sample_of(fields: object) -> Sample:
    """The contract accepts the fields as they are."""
    return Sample(seq=1, time_ms=MIN_VALID_TIME_MS, **dict(fields))  # type: ignore[call-overload]


def test_standard_devices_are_recognised_by_their_services() -> None:
    registry = default_registry()
    band = DeviceDescription(name="Polar H10 1234", service_uuids=frozenset({"180d", "180f"}))
    assert {p.name for p in registry.match(band)} == {"heart_rate", "battery"}
    plan = registry.plan_for(band)
    assert [m.name for m in plan.subscriptions] == ["battery_level", "heart_rate_measurement"]
    assert {m.name for m in plan.reads_on_connect} == {"battery_level", "body_sensor_location"}
    assert registry.match(DeviceDescription(name="a kettle")) == ()
    assert registry.plan_for(DeviceDescription(name="a kettle")).measurements == {}


def test_services_found_after_connecting_extend_the_plan() -> None:
    registry = default_registry()
    advertised = DeviceDescription(name="band", service_uuids=frozenset({"180d"}))
    connected = advertised.with_services([normalize_uuid("1809"), normalize_uuid("180a")])
    plan = registry.plan_for(connected)
    assert {p.name for p in plan.profiles} == {
        "heart_rate", "health_thermometer", "device_information"
    }  # fmt: skip
    indicated = [m for m in plan.subscriptions if m.subscribe is Subscription.INDICATE]
    assert [m.name for m in indicated] == ["temperature_measurement"]  # HTS §3.1: indicate


def test_heart_rate_notification_to_sample_fields() -> None:
    plan = default_registry().plan_for(DeviceDescription(service_uuids=frozenset({"180d"})))
    reading = plan.to_sample_fields("2a37", bytes.fromhex("1e48100000040002"), device_id="b")
    assert reading.fields == {
        "heart_rate_bpm": 72.0,
        "rr_intervals_s": (1.0, 0.5),
        "energy_expended_kj": 16,
        "contact_detected": True,
    }
    assert reading.rejected == ()
    assert sample_of(reading.fields).heart_rate_bpm == 72.0


def test_bumble_encoded_notification_becomes_a_valid_sample() -> None:
    plan = default_registry().plan_for(DeviceDescription(service_uuids=frozenset({"180d"})))
    payload = bytes(HeartRateService.HeartRateMeasurement(64, False, None, [0.9375, 0.875]))
    sample = sample_of(plan.to_sample_fields("2a37", payload).fields)
    assert sample.rr_intervals_s == (0.9375, 0.875)
    assert sample.contact_detected is False


def test_values_outside_the_contract_are_dropped_one_by_one() -> None:
    """A strap off the skin sends 0 bpm: keep the contact state, count the rejected field."""
    plan = default_registry().plan_for(DeviceDescription(service_uuids=frozenset({"180d"})))
    off_skin = plan.to_sample_fields("2a37", bytes.fromhex("0400"))
    assert off_skin.fields == {"contact_detected": False}
    assert off_skin.rejected == ("heart_rate_bpm",)
    # 0x0066 = 0.0996 s is an artefact (< 0.15 s): that interval goes, the good one stays.
    artefact = plan.to_sample_fields("2a37", bytes.fromhex("104866000004"))
    assert artefact.fields == {"heart_rate_bpm": 72.0, "rr_intervals_s": (1.0,)}
    assert artefact.rejected == ("rr_intervals_s",)
    sample_of(artefact.fields)


def test_more_rr_intervals_than_the_contract_holds_are_trimmed() -> None:
    plan = default_registry().plan_for(DeviceDescription(service_uuids=frozenset({"180d"})))
    payload = bytes([0x10, 60]) + (1024).to_bytes(2, "little") * 70
    reading = plan.to_sample_fields("2a37", payload)
    assert reading.fields["rr_intervals_s"] == (1.0,) * 64
    assert reading.rejected == ("rr_intervals_s",)
    sample_of(reading.fields)


@pytest.mark.parametrize(
    ("kind", "mapped"),
    [
        (None, True),
        (TemperatureType.FINGER, True),
        (TemperatureType.ARMPIT, True),
        (TemperatureType.BODY, True),
        (TemperatureType.RECTUM, False),
        (TemperatureType.TYMPANUM, False),
        (TemperatureType.MOUTH, False),
    ],
)
def test_thermometer_sites(kind: TemperatureType | None, mapped: bool) -> None:
    """Core-body sites are not skin temperature (the contract's only temperature field)."""
    plan = default_registry().plan_for(DeviceDescription(service_uuids=frozenset({"1809"})))
    payload = encode_temperature_measurement(3412, -2, temperature_type=kind)
    reading = plan.to_sample_fields("2a1c", payload)
    assert reading.fields == ({"skin_temperature_c": 34.12} if mapped else {})


def test_metadata_and_battery() -> None:
    registry = default_registry()
    plan = registry.plan_for(DeviceDescription(service_uuids=frozenset({"180f", "180a"})))
    assert plan.to_sample_fields("2a19", b"\x2a").fields == {"battery_percent": 42}
    model = plan.to_sample_fields("2a24", b"Band 3")
    assert model.fields == {} and model.value.to_json_dict() == {"model_number": "Band 3"}


def test_parse_errors_carry_device_and_uuid() -> None:
    plan = default_registry().plan_for(DeviceDescription(service_uuids=frozenset({"180d"})))
    with pytest.raises(GattParseError) as info:
        plan.to_sample_fields("2a37", b"\x01\x48", device_id="band-3")
    assert info.value.counter_key == ("band-3", normalize_uuid("2a37"), "truncated")
    with pytest.raises(GattParseError) as info:
        plan.to_sample_fields("2a19", b"\x10", device_id="band-3")  # not in this plan
    assert info.value.counter_key == ("band-3", normalize_uuid("2a19"), "unsupported_uuid")
    with pytest.raises(GattParseError) as info:
        plan.to_sample_fields("not-a-uuid", b"", device_id="band-3")
    assert info.value.reason == "bad_uuid" and info.value.device_id == "band-3"


@pytest.mark.parametrize(
    "device",
    [
        DeviceDescription(name="FW-EXAMPLE 01"),
        DeviceDescription(name="x", manufacturer_data={0xFFFF: b"FW\x01\x02"}),
        DeviceDescription(service_uuids=frozenset({example.SERVICE_UUID})),
    ],
)
def test_plug_in_recognises_its_devices(device: DeviceDescription) -> None:
    registry = default_registry([PLUGIN])
    assert registry.match(device)[0].name == "example_skin_motion"


@pytest.mark.parametrize(
    "device",
    [
        DeviceDescription(name="my FW-EXAMPLE"),  # the pattern is anchored
        DeviceDescription(name="x", manufacturer_data={0xFFFF: b"XX"}),  # wrong prefix
        DeviceDescription(name="x", manufacturer_data={0x006B: b"FW"}),  # another company
        DeviceDescription(),
    ],
)
def test_plug_in_ignores_other_devices(device: DeviceDescription) -> None:
    assert default_registry([PLUGIN]).match(device) == ()


def test_plug_in_notification_to_sample_fields() -> None:
    registry = default_registry([PLUGIN])
    plan = registry.plan_for(DeviceDescription(name="FW-EXAMPLE 7"))
    payload = example.encode_skin_motion(skin_centi_c=3391, mean_mg=1012, sd_mg=85)
    reading = plan.to_sample_fields(example.SKIN_MOTION_UUID, payload, device_id="fw7")
    assert reading.fields == {
        "skin_temperature_c": 33.91,
        "acceleration_g": 1.012,
        "acceleration_sd_g": 0.085,
    }
    sample_of(reading.fields)
    only_motion = plan.to_sample_fields(example.SKIN_MOTION_UUID, example.encode_skin_motion(
        mean_mg=980, sd_mg=3))  # fmt: skip
    assert set(only_motion.fields) == {"acceleration_g", "acceleration_sd_g"}
    unknown = plan.to_sample_fields(example.SKIN_MOTION_UUID, bytes.fromhex("010080"))
    assert unknown.fields == {}


def test_higher_priority_profile_owns_a_shared_characteristic() -> None:
    """A vendor profile may re-declare a SIG characteristic (e.g. a quirky heart-rate value)."""
    quirky = DeviceProfile(
        name="quirky_hr",
        description="reads 0x2A37 as a bare uint8",
        matches=(DeviceMatch(name_pattern="^QUIRK"),),
        measurements=(
            Measurement(
                "2a37",
                "bare_heart_rate",
                BATTERY.measurements[0].parse,
                subscribe=Subscription.NOTIFY,
            ),
        ),
        priority=100,
    )
    registry = default_registry()
    unregister = registry.register(quirky)
    device = DeviceDescription(name="QUIRK 1", service_uuids=frozenset({"180d"}))
    plan = registry.plan_for(device)
    assert [p.name for p in plan.profiles] == ["quirky_hr", "heart_rate"]
    assert plan.measurements[normalize_uuid("2a37")].name == "bare_heart_rate"
    unregister()
    assert [p.name for p in registry.plan_for(device).profiles] == ["heart_rate"]


def test_registry_errors_say_what_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ProfileRegistry([HEART_RATE])
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register(HEART_RATE)
    with pytest.raises(ConfigError, match="known: heart_rate"):
        registry.get("nope")
    with pytest.raises(ConfigError, match="cannot import"):
        registry.load_plugin("no_such_plugin_module")
    (tmp_path / "bad_plugin.py").write_text("PROFILES = ['not a profile']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="must define PROFILES"):
        registry.load_plugin("bad_plugin")


def test_a_plug_in_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What docs/device-profiles.md promises: a module with PROFILES is all it takes."""
    (tmp_path / "acme_profile.py").write_text(
        textwrap.dedent(
            """
            from collector.gatt import GattValue, PayloadReader
            from collector.profiles import DeviceMatch, DeviceProfile, Measurement, Subscription
            import dataclasses

            UUID = "0000fff1-0000-1000-8000-00805f9b34fb"

            @dataclasses.dataclass(frozen=True)
            class Steps(GattValue):
                steps: int

            def parse(data):
                reader = PayloadReader(UUID, data)
                steps = reader.uint(2, "steps")
                reader.finish()
                return Steps(steps)

            PROFILES = (
                DeviceProfile(
                    name="acme_steps",
                    description="steps",
                    matches=(DeviceMatch(name_pattern="^ACME"),),
                    measurements=(
                        Measurement(UUID, "steps", parse, lambda v: {"steps": v.steps},
                                    subscribe=Subscription.NOTIFY),
                    ),
                    priority=100,
                ),
            )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = default_registry(["acme_profile"])
    plan = registry.plan_for(DeviceDescription(name="ACME band"))
    assert plan.to_sample_fields("fff1", b"\x0c\x00").fields == {"steps": 12}
    with pytest.raises(GattParseError, match="truncated"):
        plan.to_sample_fields("fff1", b"\x0c")


def test_declarations_are_checked_when_written() -> None:
    with pytest.raises(ValueError, match="at least one criterion"):
        DeviceMatch()
    with pytest.raises(ValueError, match="twice"):
        DeviceProfile("x", "x", HEART_RATE.matches, HEART_RATE.measurements * 2)
    with pytest.raises(GattParseError):
        DeviceMatch(service_uuids=frozenset({"not a uuid"}))
    with pytest.raises(re.error):
        DeviceMatch(name_pattern="(")


def test_named_profiles_override_matching() -> None:
    """A device configured with explicit profiles gets exactly those."""
    registry = default_registry()
    plan = registry.plan_for(
        DeviceDescription(name="anything"), profile_names=["health_thermometer"]
    )
    assert plan.profiles == (HEALTH_THERMOMETER,)
