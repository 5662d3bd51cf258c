"""Connection manager, backoff and device registry: state machine driven against virtual wearables.

The manager runs unchanged on bleak with the Bumble backend; time-dependent logic (watchdog,
advertisement freshness, backoff) reads an injected clock, so no test waits for a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bleak_retry_connector import (
    BleakAbortedError,
    BleakConnectionError,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
)

from collector.ble.backend import select_backend
from collector.ble.backoff import (
    FailureKind,
    LinkLost,
    StallDetected,
    backoff_s,
    classify_failure,
)
from collector.ble.const import BACKOFF_MAX_S
from collector.ble.devices import ConfiguredDevice, load_devices, parse_devices
from collector.ble.manager import ConnectionManager, DeviceState
from collector.errors import PairingError
from collector.profiles import default_registry
from collector.sources.base import Reading
from collector.virtual.world import VirtualWorld
from flarewatch.errors import ConfigError
from flarewatch.payloads import LinkState

# --- backoff: a pure function, tested by a table -------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (StallDetected("x"), FailureKind.WATCHDOG),
        (LinkLost("x"), FailureKind.LINK_LOST),
        (BleakOutOfConnectionSlotsError("x"), FailureKind.OUT_OF_SLOTS),
        (BleakNotFoundError("x"), FailureKind.NOT_FOUND),
        (BleakDeviceNotFoundError("AA:BB"), FailureKind.NOT_FOUND),
        (TimeoutError(), FailureKind.NOT_FOUND),
        (BleakAbortedError("x"), FailureKind.ABORTED),
        (BleakConnectionError("x"), FailureKind.ABORTED),
        (BleakError("link lost during read"), FailureKind.GATT),
        (LookupError("nothing to stream"), FailureKind.NO_MEASUREMENTS),
        (PairingError("band-1", "pairing refused"), FailureKind.PAIRING),
        (BleakGATTProtocolError(0x0F), FailureKind.PAIRING),  # insufficient encryption
        (BleakGATTProtocolError(0x05), FailureKind.PAIRING),  # insufficient authentication
        (BleakGATTProtocolError(0x0A), FailureKind.GATT),  # attribute not found
        (RuntimeError("bug"), FailureKind.OTHER),
    ],
)
def test_failures_are_classified_by_type(error: Exception, kind: FailureKind) -> None:
    assert classify_failure(error) is kind


@pytest.mark.parametrize(
    ("kind", "streak", "wait_s"),
    [
        (FailureKind.WATCHDOG, 1, 0.5),
        (FailureKind.LINK_LOST, 1, 0.5),
        (FailureKind.LINK_LOST, 3, 2.0),
        (FailureKind.NOT_FOUND, 1, 2.0),
        (FailureKind.OUT_OF_SLOTS, 1, 4.0),
        (FailureKind.OUT_OF_SLOTS, 2, 8.0),
        (FailureKind.GATT, 1, 1.0),
        (FailureKind.OTHER, 4, 8.0),
        (FailureKind.OTHER, 50, BACKOFF_MAX_S),
        (FailureKind.NO_MEASUREMENTS, 1, BACKOFF_MAX_S),
        (FailureKind.PAIRING, 1, 30.0),
        (FailureKind.PAIRING, 2, BACKOFF_MAX_S),
        (FailureKind.GATT, 0, 1.0),
    ],
)
def test_backoff_table(kind: FailureKind, streak: int, wait_s: float) -> None:
    assert backoff_s(kind, streak) == wait_s


# --- device registry file ------------------------------------------------------------------------


def test_devices_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(
        '[[devices]]\nid = "band-anna"\npatient = "anna"\naddress = "c0:5e:00:00:00:01"\n'
        '[[devices]]\nid = "strap-bob"\npatient = "bob"\nname = "Polar H10"\n'
        'profiles = ["heart_rate"]\nbond = true\n'
    )
    anna, bob = load_devices(path)
    assert anna == ConfiguredDevice("band-anna", "anna", "C0:5E:00:00:00:01")
    assert not anna.bond and bob.bond
    assert anna.matches("C0:5E:00:00:00:01", None) and not anna.matches("C0:5E:00:00:00:02", None)
    assert bob.profiles == ("heart_rate",) and bob.matches("AA:AA:AA:AA:AA:AA", "Polar H10")
    assert not bob.matches("AA:AA:AA:AA:AA:AA", "Polar H9")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "at least one"),
        ({"devices": [{"id": "a", "patient": "p"}]}, "address"),
        ({"devices": [{"id": "a/b", "patient": "p", "name": "x"}]}, "'id'"),
        ({"devices": [{"id": "a", "patient": "p", "address": "nope"}]}, "C0:5E"),
        ({"devices": [{"id": "a", "patient": "p", "name": "x", "colour": 1}]}, "unknown"),
        ({"devices": [{"id": "a", "patient": "p", "name": "x"}] * 2}, "twice"),
        ({"devices": [{"id": "a", "patient": "p", "name": "x", "bond": "yes"}]}, "'bond'"),
    ],
)
def test_bad_devices_are_refused_with_a_reason(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_devices(document)


def test_missing_devices_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_devices(tmp_path / "nope.toml")


# --- the state machine on the virtual world ------------------------------------------------------


@dataclass
class RecordingSink:
    """A sink that keeps what the manager hands over (the outbox has its own tests)."""

    readings: dict[str, list[Reading]] = field(default_factory=dict)
    states: list[tuple[str, LinkState, str | None, int | None, bool | None]] = field(
        default_factory=list
    )

    def submit(self, patient_id: str, device_id: str, readings: Sequence[Reading]) -> int:
        self.readings.setdefault(device_id, []).extend(readings)
        return len(readings)

    def update_device(
        self,
        patient_id: str,
        device_id: str,
        state: LinkState,
        *,
        reason: str | None = None,
        battery_percent: int | None = None,
        contact_detected: bool | None = None,
    ) -> None:
        self.states.append((device_id, state, reason, battery_percent, contact_detected))

    def counters(self, device_id: str) -> list[int]:
        return [
            r.energy_expended_kj
            for r in self.readings.get(device_id, [])
            if r.energy_expended_kj is not None
        ]


class FakeClock:
    """Monotonic seconds that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(manager: ConnectionManager) -> AsyncIterator[ConnectionManager]:
    task = asyncio.create_task(manager.run())
    try:
        yield manager
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls state owned by the manager
            await asyncio.sleep(0.02)


def manager_for(
    world: VirtualWorld, sink: RecordingSink, names: Sequence[str], **kwargs: object
) -> ConnectionManager:
    devices = [
        ConfiguredDevice(name, f"patient-{name}", world.wearables[name].address) for name in names
    ]
    return ConnectionManager(
        devices,
        sink,
        default_registry(),
        backend=select_backend("bumble:" + world.hci_transport),
        watchdog_tick_s=0.05,
        sleep=lambda _s: asyncio.sleep(0),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_streams_readings_and_reports_battery_and_contact(world: VirtualWorld) -> None:
    for name in ("band-1", "band-2"):
        await world.add_wearable(name, heart_rate_interval_s=0.1, temperature_interval_s=0.1)
    sink = RecordingSink()
    async with running(manager_for(world, sink, ["band-1", "band-2"])) as manager:
        await until(lambda: all(len(sink.counters(n)) >= 3 for n in ("band-1", "band-2")))
        states = [link.state for link in manager.links.values()]
    assert states == [DeviceState.STREAMING] * 2
    for name in ("band-1", "band-2"):
        readings = sink.readings[name]
        assert any(r.skin_temperature_c is not None for r in readings), "indications streamed"
        assert readings[0].battery_percent == 90, "battery read on connect"
        assert all(r.contact_detected for r in readings if r.heart_rate_bpm is not None)
        online = [s for s in sink.states if s[0] == name and s[1] is LinkState.ONLINE]
        assert online and online[0][3] == 90, "battery in the device status"
    history = list(manager.links["band-1"].history)
    assert history[:4] == [
        DeviceState.SCANNING,
        DeviceState.CONNECTING,
        DeviceState.SUBSCRIBING,
        DeviceState.STREAMING,
    ]


async def test_watchdog_reconnects_a_silent_link_without_duplicates(world: VirtualWorld) -> None:
    await world.add_wearable("band-1", heart_rate_interval_s=0.1, temperature_interval_s=0.1)
    clock = FakeClock()
    sink = RecordingSink()
    manager = manager_for(world, sink, ["band-1"], clock=clock, watchdog_timeout_s=10.0)
    link = manager.links["band-1"]
    async with running(manager):
        await until(lambda: len(sink.counters("band-1")) >= 3)
        world.stall("band-1")
        await asyncio.sleep(0.3)
        assert link.state is DeviceState.STREAMING, "no reconnect before the watchdog expires"
        clock.now += 11.0
        await until(lambda: link.connects == 2 and link.state is DeviceState.STREAMING)
        assert link.last_failure is FailureKind.WATCHDOG
        world.stall("band-1", False)
        before = len(sink.counters("band-1"))
        await until(lambda: len(sink.counters("band-1")) >= before + 5)
    counters = sink.counters("band-1")
    assert counters == sorted(set(counters)), "one callback per notification after reconnect"
    assert counters == world.delivered["band-1"].heart_rate_counters[: len(counters)]


async def test_out_of_range_then_back(world: VirtualWorld) -> None:
    await world.add_wearable("band-1", heart_rate_interval_s=0.1)
    sink = RecordingSink()
    manager = manager_for(world, sink, ["band-1"])
    link = manager.links["band-1"]
    async with running(manager):
        await until(lambda: len(sink.counters("band-1")) >= 2)
        world.take_out_of_range("band-1")
        await until(lambda: link.state is DeviceState.SCANNING)
        assert link.last_failure is FailureKind.LINK_LOST
        offline = [s for s in sink.states if s[1] is LinkState.OFFLINE]
        assert offline[-1][2] == "link_lost"
        await asyncio.sleep(0.3)
        assert link.state is DeviceState.SCANNING, "no connect attempts while it is silent"
        world.bring_back("band-1")
        await until(lambda: link.connects == 2 and link.state is DeviceState.STREAMING)
        before = len(sink.counters("band-1"))
        await until(lambda: len(sink.counters("band-1")) > before)
    assert (
        sink.counters("band-1")
        == world.delivered["band-1"].heart_rate_counters[: len(sink.counters("band-1"))]
    )


async def test_malformed_notifications_are_counted_not_fatal(
    world: VirtualWorld, caplog: pytest.LogCaptureFixture
) -> None:
    band = await world.add_wearable("band-1", heart_rate_interval_s=0.1)
    sink = RecordingSink()
    manager = manager_for(world, sink, ["band-1"])
    link = manager.links["band-1"]
    caplog.set_level(logging.WARNING, logger="collector.ble.manager")
    async with running(manager):
        await until(lambda: len(sink.counters("band-1")) >= 1)
        for count in (1, 2, 3):
            band.inject_malformed(b"\x01\x48")  # flags say 16-bit heart rate, one byte follows
            await until(lambda count=count: link.parse_errors.total() == count)
        before = len(sink.counters("band-1"))
        await until(lambda: len(sink.counters("band-1")) >= before + 2)
        assert link.state is DeviceState.STREAMING and link.connects == 1
    assert link.parse_errors == {"truncated": 3}
    warned = [r for r in caplog.records if "so far from this device" in r.getMessage()]
    assert len(warned) == 1, "a value malformed again and again is logged once a minute"


async def test_connections_are_capped_per_adapter(world: VirtualWorld) -> None:
    names = ["band-1", "band-2", "band-3"]
    for name in names:
        await world.add_wearable(name, heart_rate_interval_s=0.1)
    sink = RecordingSink()
    manager = manager_for(world, sink, names, max_connections=2)
    async with running(manager):
        await until(lambda: sum(len(sink.counters(n)) > 0 for n in names) == 2)
        await asyncio.sleep(0.3)
        streaming = [n for n in names if manager.links[n].state is DeviceState.STREAMING]
        assert len(streaming) == 2
        assert sum(len(c.le_connections) for c in world.centrals) == 2
        # a slot frees up when a band leaves: the waiting one takes it
        world.take_out_of_range(streaming[0])
        waiting = next(n for n in names if n not in streaming)
        await until(lambda: manager.links[waiting].state is DeviceState.STREAMING)


async def test_recovers_when_the_controller_goes_away(world: VirtualWorld) -> None:
    await world.add_wearable("band-1", heart_rate_interval_s=0.1)
    sink = RecordingSink()
    manager = manager_for(world, sink, ["band-1"])
    link = manager.links["band-1"]
    async with running(manager):
        await until(lambda: len(sink.counters("band-1")) >= 2)
        world.unplug_collectors()  # the dongle is pulled out and plugged back in
        await until(lambda: link.connects == 2 and link.state is DeviceState.STREAMING)
        before = len(sink.counters("band-1"))
        await until(lambda: len(sink.counters("band-1")) > before)
    assert link.last_failure is FailureKind.LINK_LOST
