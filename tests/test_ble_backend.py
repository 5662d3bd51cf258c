"""The Bumble bleak backend, driven through bleak's public API against virtual wearables."""

from __future__ import annotations

import asyncio
import inspect

import bleak
import bleak_retry_connector
import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError
from bumble import controller, device, gatt_client, link
from bumble.profiles.heart_rate_service import HeartRateService
from bumble.transport.common import BaseSource

from collector.ble.backend import BleakBackend, select_backend
from collector.ble.bumble_backend import BleakClientBumble, BleakScannerBumble, get_central
from collector.ble.const import ADVERTISER_FORGET_AFTER_S
from collector.virtual.world import VirtualWorld
from flarewatch.errors import ConfigError
from tests.alerting_helpers import FakeClock
from tests.test_ble_manager import until

HR = "00002a37-0000-1000-8000-00805f9b34fb"
TEMP = "00002a1c-0000-1000-8000-00805f9b34fb"
BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"


def backend_of(world: VirtualWorld) -> BleakBackend:
    return select_backend("bumble:" + world.hci_transport)


async def connect(world: VirtualWorld, name: str) -> BleakClient:
    backend = backend_of(world)
    found = await BleakScanner.find_device_by_name(name, timeout=5, backend=backend.scanner)
    assert found is not None, f"{name} not advertising"
    return await bleak_retry_connector.establish_connection(
        BleakClient, found, name, backend=backend.client, max_attempts=2
    )


def test_the_internals_we_rely_on_still_exist() -> None:
    # bleak: pluggable backends and the abstract methods we implement
    for cls in (BleakScanner, BleakClient):
        assert "backend" in inspect.signature(cls.__init__).parameters
    assert {"start", "stop"} <= BaseBleakScanner.__abstractmethods__
    assert {"connect", "disconnect", "start_notify", "read_gatt_char"} <= (
        BaseBleakClient.__abstractmethods__
    )
    assert not BleakScannerBumble.__abstractmethods__
    assert not BleakClientBumble.__abstractmethods__
    assert hasattr(BaseBleakScanner, "create_or_update_device")
    assert "kwargs" in inspect.signature(bleak_retry_connector.establish_connection).parameters
    # bumble: controller and link hooks the virtual world overrides, client calls we make
    assert hasattr(controller.Controller, "pending_le_connection")
    for name in (
        "on_hci_le_create_connection_cancel_command",
        "on_link_acl_data",
        "on_le_disconnected",
    ):
        assert callable(getattr(controller.Controller, name)), name
    for name in ("send_advertising_pdu", "send_acl_data", "send_ll_control_pdu", "controllers"):
        assert hasattr(link.LocalLink(), name), name  # type: ignore[no-untyped-call]
    assert "timeout" in inspect.signature(device.Device.connect).parameters
    assert device.Device.EVENT_ADVERTISEMENT == "advertisement"
    assert device.Connection.EVENT_DISCONNECTION == "disconnection"
    # the central reports links down through Device.connections when its transport is lost
    assert "connections" in device.Device.__init__.__code__.co_names
    assert "terminated" in BaseSource.__annotations__
    for name in ("subscribe", "unsubscribe", "read_value", "write_value", "request_mtu"):
        assert callable(getattr(gatt_client.Client, name)), name
    assert bleak.__name__ == "bleak"


def test_backend_selection() -> None:
    assert select_backend(None) == BleakBackend()
    assert select_backend("bluez").client is None
    chosen = select_backend("bumble:usb:0")
    assert chosen.client is not None and issubclass(chosen.client, BleakClientBumble)
    assert chosen.client.transport_spec == "usb:0"  # type: ignore[attr-defined]
    assert select_backend("bumble:usb:0") is chosen
    for bad in ("bumble:", "usb:0", "winrt"):
        with pytest.raises(ConfigError, match="ble_backend"):
            select_backend(bad)


async def test_scan_connect_notify_read(world: VirtualWorld) -> None:
    band = await world.add_wearable("band-1")
    client = await connect(world, "band-1")
    try:
        assert client.is_connected
        assert client.mtu_size == 247, "the backend must request a larger MTU (Bumble stays at 23)"
        uuids = {s.uuid for s in client.services}
        assert {"0000180d-0000-1000-8000-00805f9b34fb", "00001809-0000-1000-8000-00805f9b34fb"} <= (
            uuids
        )
        assert "indicate" in client.services.get_characteristic(TEMP).properties  # type: ignore[union-attr]
        received: asyncio.Queue[bytes] = asyncio.Queue()
        await client.start_notify(HR, lambda _c, data: received.put_nowait(bytes(data)))
        first = HeartRateService.HeartRateMeasurement.from_bytes(
            await asyncio.wait_for(received.get(), 5)
        )
        assert first.energy_expended == world.delivered["band-1"].heart_rate_counters[0]
        assert 40 < first.heart_rate < 120
        assert (await client.read_gatt_char(BATTERY))[0] == band.feed.vitals_at(0).battery_percent
    finally:
        await client.disconnect()
    assert not client.is_connected


async def test_repeated_start_notify_keeps_one_callback(world: VirtualWorld) -> None:
    await world.add_wearable("band-1", heart_rate_interval_s=0.1)
    client = await connect(world, "band-1")
    old: list[bytes] = []
    new: list[bytes] = []
    await client.start_notify(HR, lambda _c, d: old.append(bytes(d)))
    await client.start_notify(HR, lambda _c, d: new.append(bytes(d)))
    old.clear()
    await asyncio.sleep(0.6)
    await client.disconnect()
    assert not old, "the replaced callback must not be called any more"
    counters = [HeartRateService.HeartRateMeasurement.from_bytes(d).energy_expended for d in new]
    assert len(counters) >= 3
    assert len(set(counters)) == len(counters), "each notification delivered exactly once"


async def test_link_loss_calls_back_and_fails_pending_gatt_call(world: VirtualWorld) -> None:
    await world.add_wearable("band-1")
    backend = backend_of(world)
    found = await BleakScanner.find_device_by_name("band-1", timeout=5, backend=backend.scanner)
    assert found is not None
    lost = asyncio.Event()
    client = BleakClient(found, lambda _c: lost.set(), backend=backend.client)
    await client.connect()
    read = asyncio.create_task(client.read_gatt_char(BATTERY))
    await asyncio.sleep(0)  # the request is on its way
    world.take_out_of_range("band-1")
    with pytest.raises(BleakError, match="link lost"):
        await asyncio.wait_for(read, 5)
    await asyncio.wait_for(lost.wait(), 5)
    assert not client.is_connected
    # back in range: the same client reconnects, and our own disconnect is not reported as a loss
    world.bring_back("band-1")
    lost.clear()
    await client.connect()
    await client.disconnect()
    await asyncio.sleep(0.05)
    assert not lost.is_set()


async def test_connect_to_absent_device_times_out_and_controller_stays_usable(
    world: VirtualWorld,
) -> None:
    await world.add_wearable("band-1")
    await world.add_wearable("band-2")
    backend = backend_of(world)
    scanner_found = await BleakScanner.find_device_by_name(
        "band-2", timeout=5, backend=backend.scanner
    )
    assert scanner_found is not None
    world.take_out_of_range("band-2")
    absent = BleakClient(scanner_found, backend=backend.client, timeout=0.5)
    with pytest.raises(TimeoutError):
        await absent.connect()
    # one pending connect per controller: a stuck initiator would make this fail
    client = await connect(world, "band-1")
    assert client.is_connected
    await client.disconnect()


async def test_concurrent_connects_are_serialized(world: VirtualWorld) -> None:
    for i in range(3):
        await world.add_wearable(f"band-{i}")
    clients = await asyncio.gather(*(connect(world, f"band-{i}") for i in range(3)))
    assert all(c.is_connected for c in clients)
    await asyncio.gather(*(c.disconnect() for c in clients))


async def test_silent_advertisers_are_forgotten_but_connected_ones_kept(
    world: VirtualWorld,
) -> None:
    """Rotating private addresses must not grow the gateway's memory for its whole lifetime."""
    clock = FakeClock(1000.0)
    central = get_central(world.hci_transport, clock_s=clock)
    names = ("band-1", "band-2", "band-3")
    for name in names:
        await world.add_wearable(name)
    backend = backend_of(world)
    scanner = BleakScanner(backend=backend.scanner)
    await scanner.start()

    def seen() -> dict[str, tuple[BLEDevice, AdvertisementData]]:
        return scanner.discovered_devices_and_advertisement_data

    try:
        await until(lambda: {d.name for d, _ in seen().values()} >= set(names))
        device = {d.name: d for d, _ in seen().values()}
        address = {name: device[name].address for name in names}
        client = BleakClient(device["band-1"], backend=backend.client)
        await client.connect()  # band-1 stops advertising while connected
        world.take_out_of_range("band-2")
        clock.advance(ADVERTISER_FORGET_AFTER_S)  # band-3's next advertisement sweeps the rest

        def forgotten() -> bool:
            return address["band-2"] not in central.known_addresses()

        await until(forgotten)
        assert address["band-2"] not in seen()
        assert address["band-1"] in central.known_addresses()  # in use by a connection
        assert address["band-1"] in seen()
        await until(lambda: address["band-3"] in seen())  # still heard, so still known
        assert address["band-3"] in central.known_addresses()
        await client.disconnect()
    finally:
        await scanner.stop()
