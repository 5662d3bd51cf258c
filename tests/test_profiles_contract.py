"""One contract every shipped device profile passes (standard ones and every bundled plug-in).

Plug-ins under ``collector/profiles/plugins`` are discovered automatically, so a new one is
checked without touching this file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import collector.profiles.plugins
from collector.errors import GattParseError
from collector.gatt import GattValue, normalize_uuid
from collector.profiles import STANDARD_PROFILES, DeviceProfile, Measurement, default_registry
from collector.profiles.sample_fields import conform_to_contract
from flarewatch.const import MIN_VALID_TIME_MS
from flarewatch.payloads import Sample

PLUGIN_MODULES = [
    info.name
    for info in pkgutil.iter_modules(
        collector.profiles.plugins.__path__, collector.profiles.plugins.__name__ + "."
    )
]
ALL_PROFILES: list[DeviceProfile] = [
    *STANDARD_PROFILES,
    *(p for m in PLUGIN_MODULES for p in importlib.import_module(m).PROFILES),
]
MEASUREMENTS = [(p, m) for p in ALL_PROFILES for m in p.measurements]
SAMPLE_FIELDS = set(Sample.model_fields) - {"seq", "time_ms"}


def test_plugins_are_discovered() -> None:
    assert PLUGIN_MODULES, "the example plug-in must be shipped"
    registry = default_registry(PLUGIN_MODULES)
    assert {p.name for p in registry.profiles} == {p.name for p in ALL_PROFILES}


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_profile_declaration(profile: DeviceProfile) -> None:
    assert profile.name.isidentifier()
    assert profile.description
    assert profile.matches, "a profile must say how to recognise its devices"
    assert profile.measurements
    for measurement in profile.measurements:
        assert measurement.uuid == normalize_uuid(measurement.uuid)
        assert measurement.subscribe is not None or measurement.read_on_connect


@pytest.mark.parametrize(
    ("profile", "measurement"), MEASUREMENTS, ids=[f"{p.name}-{m.name}" for p, m in MEASUREMENTS]
)
@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=24))
def test_measurement_is_total_and_maps_into_the_contract(
    profile: DeviceProfile, measurement: Measurement[Any], payload: bytes
) -> None:
    try:
        value = measurement.parse(payload)
    except GattParseError as exc:
        assert exc.uuid == measurement.uuid
        return
    assert isinstance(value, GattValue)
    fields = measurement.to_fields(value)
    assert set(fields) <= SAMPLE_FIELDS, f"{profile.name} emits fields outside the contract"
    kept, _rejected = conform_to_contract(fields)
    Sample(seq=0, time_ms=MIN_VALID_TIME_MS, **kept)
