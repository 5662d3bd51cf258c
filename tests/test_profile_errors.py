"""A bug in a device profile (a vendor plug-in) is a counted rejection of one value, never more.

The profile's parser or mapper raising something other than ``GattParseError`` must neither escape
into the BLE stack's notification callback nor reach the logs with its message (which may quote a
vital value); the device keeps streaming its good values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pytest

from collector.ble.backend import select_backend
from collector.ble.devices import ConfiguredDevice
from collector.ble.manager import ConnectionManager, DeviceState
from collector.errors import GattParseError
from collector.gatt import HeartRateMeasurement, parse_heart_rate_measurement
from collector.gatt import uuids as u
from collector.profiles import default_registry
from collector.profiles.base import (
    VENDOR_PRIORITY,
    DeviceMatch,
    DeviceProfile,
    Measurement,
    SampleFieldValue,
    Subscription,
)
from collector.profiles.plan import MeasurementPlan
from collector.virtual.world import VirtualWorld
from tests.test_ble_manager import RecordingSink, running, until

SECRET = "heart rate 171"  # stands for a vital value a buggy plug-in puts in its message


def buggy_fields(value: HeartRateMeasurement) -> Mapping[str, SampleFieldValue]:
    """Maps like the standard profile, but fails on every fourth energy counter."""
    if (value.energy_expended_kj or 0) % 4 == 0:
        raise ZeroDivisionError(SECRET)
    return {
        "heart_rate_bpm": float(value.heart_rate_bpm),
        "energy_expended_kj": value.energy_expended_kj or 0,
    }


def buggy_parse(data: bytes | bytearray | memoryview) -> HeartRateMeasurement:
    """Indexes the payload without ``PayloadReader``: an empty value raises IndexError."""
    if data[0] == 0xFF:
        raise ValueError(SECRET)
    return parse_heart_rate_measurement(data)


BUGGY = DeviceProfile(
    name="buggy_heart_rate",
    description="a vendor plug-in with bugs",
    matches=(DeviceMatch(service_uuids=frozenset({u.HEART_RATE_SERVICE})),),
    measurements=(
        Measurement(
            u.HEART_RATE_MEASUREMENT,
            "buggy_heart_rate_measurement",
            buggy_parse,
            buggy_fields,
            subscribe=Subscription.NOTIFY,
            required=True,
        ),
    ),
    priority=VENDOR_PRIORITY,
)


@pytest.mark.parametrize(
    ("payload", "part"),
    [
        (b"", "parser raised IndexError"),
        (b"\xff\x48", "parser raised ValueError"),
        (bytes([0x08, 72, 4, 0]), "mapper raised ZeroDivisionError"),  # energy counter 4
    ],
)
def test_a_profile_bug_is_a_gatt_parse_error_without_its_message(payload: bytes, part: str) -> None:
    plan = MeasurementPlan.of((BUGGY,))
    with pytest.raises(GattParseError) as caught:
        plan.to_sample_fields(u.HEART_RATE_MEASUREMENT, payload, device_id="band-1", received_s=1.0)
    error = caught.value
    assert error.reason == "profile_error" and error.device_id == "band-1"
    assert part in str(error) and SECRET not in str(error)
    # the good values of the same plan still decode
    good = plan.to_sample_fields(u.HEART_RATE_MEASUREMENT, bytes([0x08, 72, 5, 0]))
    assert good.fields == {"heart_rate_bpm": 72.0, "energy_expended_kj": 5}


async def test_a_profile_bug_is_counted_and_the_device_keeps_streaming(
    world: VirtualWorld, caplog: pytest.LogCaptureFixture
) -> None:
    await world.add_wearable("band-1", heart_rate_interval_s=0.05)
    registry = default_registry()
    registry.register(BUGGY)
    sink = RecordingSink()
    manager = ConnectionManager(
        [ConfiguredDevice("band-1", "patient-1", world.wearables["band-1"].address)],
        sink,
        registry,
        backend=select_backend("bumble:" + world.hci_transport),
        watchdog_tick_s=0.05,
        sleep=lambda _s: asyncio.sleep(0),
    )
    link = manager.links["band-1"]
    with caplog.at_level(logging.WARNING):
        async with running(manager):
            await until(lambda: link.parse_errors["profile_error"] >= 2)
            before = len(sink.counters("band-1"))
            await until(lambda: len(sink.counters("band-1")) >= before + 3)
            assert link.state is DeviceState.STREAMING and link.connects == 1
    counters = sink.counters("band-1")
    assert counters and all(c % 4 for c in counters)  # every good value stored, the bad ones not
    assert "Exception in on_packet" not in caplog.text
    assert "profile_error" in caplog.text and SECRET not in caplog.text
