"""Bands that need an encrypted link: paired when they ask, their bond kept and used, reset bands
paired anew, refusals and passkeys reported. Bleak's public API on the Bumble backend against
virtual wearables that pair as real ones do (Bumble's SMP on both sides)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import bleak_retry_connector
import pytest
from bleak import BleakClient, BleakScanner

from collector.ble.backend import BleakBackend, select_backend
from collector.ble.backoff import FailureKind, classify_failure
from collector.ble.bumble_backend import BondStore, close_central, get_central
from collector.ble.bumble_backend.pairing import PasskeyDelegate
from collector.ble.devices import ConfiguredDevice
from collector.ble.manager import ConnectionManager
from collector.errors import BondStoreError, PairingError
from collector.profiles import default_registry
from collector.virtual.wearable import BandSecurity, VirtualWearable
from collector.virtual.world import VirtualWorld
from flarewatch.payloads import LinkState
from tests.test_ble_manager import RecordingSink, running, until

HR = "00002a37-0000-1000-8000-00805f9b34fb"
BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"


def backend_with_bonds(world: VirtualWorld, bonds: Path) -> BleakBackend:
    return select_backend("bumble:" + world.hci_transport, bonds)


async def connect(backend: BleakBackend, name: str, *, pair: bool = False) -> BleakClient:
    found = await BleakScanner.find_device_by_name(name, timeout=5, backend=backend.scanner)
    assert found is not None, f"{name} not advertising"
    return await bleak_retry_connector.establish_connection(
        BleakClient, found, name, backend=backend.client, max_attempts=2, pair=pair
    )


async def first_heart_rate(client: BleakClient) -> bytes:
    received: asyncio.Queue[bytes] = asyncio.Queue()
    await client.start_notify(HR, lambda _c, data: received.put_nowait(bytes(data)))
    return await asyncio.wait_for(received.get(), 5)


async def band(world: VirtualWorld, security: BandSecurity) -> VirtualWearable:
    return await world.add_wearable("band-1", heart_rate_interval_s=0.1, security=security)


async def test_a_band_that_asks_is_paired_once_and_its_bond_used_after(
    world: VirtualWorld, tmp_path: Path
) -> None:
    wearable = await band(world, BandSecurity.ENCRYPTION)
    bonds = tmp_path / "state" / "bonds.json"
    backend = backend_with_bonds(world, bonds)

    client = await connect(backend, "band-1")
    assert await first_heart_rate(client)  # refused until encrypted: paired, then subscribed
    assert (await client.read_gatt_char(BATTERY))[0] == 90
    assert wearable.pairings == 1
    await client.disconnect()

    # the bond is kept where only the gateway's user can read it
    assert stat.S_IMODE(bonds.stat().st_mode) == 0o600
    (kept,) = BondStore(bonds).bonds()
    assert kept.address == wearable.address and not kept.authenticated

    client = await connect(backend, "band-1")  # the same gateway again: its bond, no pairing
    assert await first_heart_rate(client)
    await client.disconnect()
    await close_central(world.hci_transport)  # a restarted gateway reads its bonds from the file
    client = await connect(backend, "band-1")
    assert await first_heart_rate(client)
    await client.disconnect()
    assert wearable.pairings == 1


async def test_a_band_reset_is_paired_anew_with_a_warning(
    world: VirtualWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wearable = await band(world, BandSecurity.ENCRYPTION)
    backend = backend_with_bonds(world, tmp_path / "bonds.json")
    client = await connect(backend, "band-1")
    await first_heart_rate(client)
    await client.disconnect()

    await wearable.forget_bonds()  # a factory reset
    client = await connect(backend, "band-1")
    assert await first_heart_rate(client)
    await client.disconnect()
    assert wearable.pairings == 2
    assert "no longer knows this gateway" in caplog.text
    assert len(BondStore(tmp_path / "bonds.json").bonds()) == 1


async def test_a_bonded_band_with_privacy_is_known_by_its_identity_as_its_address_changes(
    world: VirtualWorld, tmp_path: Path
) -> None:
    wearable = await world.add_wearable(
        "band-1", heart_rate_interval_s=0.1, security=BandSecurity.ENCRYPTION, privacy=True
    )
    bonds = tmp_path / "bonds.json"
    backend = backend_with_bonds(world, bonds)
    heard = await BleakScanner.find_device_by_name("band-1", timeout=5, backend=backend.scanner)
    assert heard is not None and heard.address != wearable.address  # private: not known yet
    client = await connect(backend, "band-1")
    assert await first_heart_rate(client)
    await client.disconnect()
    (kept,) = BondStore(bonds).bonds()
    assert kept.address == wearable.address  # the identity it gave when pairing

    await wearable.rotate_address()  # a new private address, resolved with the bond's key
    heard = await BleakScanner.find_device_by_address(
        wearable.address, timeout=5, backend=backend.scanner
    )
    assert heard is not None
    sink = RecordingSink()
    manager = ConnectionManager(
        [ConfiguredDevice("band-1", "patient-1", wearable.address)],
        sink,
        default_registry(),
        backend=backend,
        watchdog_tick_s=0.05,
        sleep=lambda _s: asyncio.sleep(0.05),
    )
    async with running(manager):
        for streamed in (5, 10, 15):  # the gateway follows it to each new address
            await until(lambda n=streamed: len(sink.counters("band-1")) >= n)
            world.take_out_of_range("band-1")
            await wearable.rotate_address()
            world.bring_back("band-1")
    assert wearable.pairings == 1


async def test_bond_true_encrypts_before_the_services_are_read(
    world: VirtualWorld, tmp_path: Path
) -> None:
    wearable = await band(world, BandSecurity.NONE)  # would not ask: pairing is the gateway's call
    backend = backend_with_bonds(world, tmp_path / "bonds.json")
    client = await connect(backend, "band-1", pair=True)
    assert wearable.pairings == 1
    await client.disconnect()
    client = await connect(backend, "band-1", pair=True)
    assert await first_heart_rate(client)
    await client.disconnect()
    assert wearable.pairings == 1


async def test_a_band_out_of_pairing_mode_is_a_pairing_failure(
    world: VirtualWorld, tmp_path: Path
) -> None:
    wearable = await band(world, BandSecurity.ENCRYPTION)
    wearable.accepts_pairing = False
    client = await connect(backend_with_bonds(world, tmp_path / "bonds.json"), "band-1")
    try:
        with pytest.raises(PairingError, match="pairing refused") as refused:
            await first_heart_rate(client)
        assert classify_failure(refused.value) is FailureKind.PAIRING
    finally:
        await client.disconnect()
    assert wearable.pairings == 0
    assert BondStore(tmp_path / "bonds.json").bonds() == []


async def test_a_band_showing_a_passkey_is_paired_by_a_person_then_bonded(
    world: VirtualWorld, tmp_path: Path
) -> None:
    wearable = await band(world, BandSecurity.PASSKEY)
    bonds = tmp_path / "bonds.json"
    backend = backend_with_bonds(world, bonds)
    client = await connect(backend, "band-1")
    try:  # the gateway alone can only pair Just Works, which this band does not accept
        with pytest.raises(PairingError, match="flarewatch pair") as refused:
            await first_heart_rate(client)
        assert classify_failure(refused.value) is FailureKind.PAIRING
    finally:
        await client.disconnect()

    typed: list[int | None] = []

    async def wrong() -> int | None:
        typed.append(None)
        return 123456 if wearable.shown_passkey != 123456 else 654321

    central = get_central(world.hci_transport)
    central.pairing_delegate = PasskeyDelegate(wrong)
    client = await connect(backend, "band-1")
    try:
        with pytest.raises(PairingError):
            await client.pair()
    finally:
        await client.disconnect()
    assert typed and wearable.pairings == 0

    async def read_off_the_band() -> int | None:
        await until(lambda: wearable.shown_passkey is not None)
        return wearable.shown_passkey

    central.pairing_delegate = PasskeyDelegate(read_off_the_band)
    client = await connect(backend, "band-1")
    await client.pair()
    assert await first_heart_rate(client)
    await client.disconnect()
    (kept,) = BondStore(bonds).bonds()
    assert kept.authenticated

    central.pairing_delegate = None  # the gateway again: the bond, no person needed
    client = await connect(backend, "band-1")
    assert await first_heart_rate(client)
    await client.disconnect()
    assert wearable.pairings == 1

    await client.unpair()  # forgets the bond: the next link needs a person again
    assert BondStore(bonds).bonds() == []


def test_a_broken_bonds_file_stops_the_gateway_at_start(tmp_path: Path) -> None:
    bonds = tmp_path / "bonds.json"
    bonds.write_text('{"version": 1, "bonds": {"C0:5E:00:00:00:01": {"keys": {"ltk": 7}}}}')
    with pytest.raises(BondStoreError, match="not a flarewatch bonds file") as broken:
        select_backend("bumble:tcp-client:127.0.0.1:1", bonds)
    assert str(bonds) in str(broken.value)
    bonds.write_text("{")
    with pytest.raises(BondStoreError):
        BondStore(bonds).bonds()
    bonds.unlink()
    assert BondStore(bonds).bonds() == []
    assert not BondStore(bonds).forget("C0:5E:00:00:00:01")


async def test_the_gateway_streams_a_band_that_needs_pairing_and_reports_one_that_refuses(
    world: VirtualWorld, tmp_path: Path
) -> None:
    secured = await world.add_wearable("band-1", heart_rate_interval_s=0.1, security="encryption")
    refusing = await world.add_wearable("band-2", heart_rate_interval_s=0.1, security="encryption")
    refusing.accepts_pairing = False
    sink = RecordingSink()
    devices = [
        ConfiguredDevice(w.name, f"patient-{w.name}", w.address) for w in (secured, refusing)
    ]
    manager = ConnectionManager(
        devices,
        sink,
        default_registry(),
        backend=backend_with_bonds(world, tmp_path / "bonds.json"),
        watchdog_tick_s=0.05,
        sleep=lambda _s: asyncio.sleep(0.05),
    )
    async with running(manager):
        await until(lambda: len(sink.counters("band-1")) >= 5)
        await until(
            lambda: any(
                (device, state, reason) == ("band-2", LinkState.OFFLINE, "pairing")
                for device, state, reason, *_ in sink.states
            )
        )
    assert secured.pairings == 1 and refusing.pairings == 0
    assert manager.links["band-2"].last_failure is FailureKind.PAIRING
    assert not sink.counters("band-2")
