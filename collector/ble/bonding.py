"""``flarewatch pair``: pair a band once, with a person at hand, so the gateway can bond with it.

Most bands that want an encrypted link pair "Just Works" and the gateway does that itself when
they ask. Some show a passkey on their display and wait for it to be typed on the other side: a
gateway has no keyboard, so a person runs :func:`pair_band` once (the gateway stopped: one program
at a time drives an adapter). It finds the band, pairs it afresh (typing the passkey through
``ask_passkey`` when the band shows one), checks that a measurement arrives over the encrypted
link, and leaves the bond where the gateway finds it: ``collector.bonds_file`` with Bumble,
BlueZ's own store otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Final

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from collector.ble.backend import BleakBackend
from collector.ble.const import PASSKEY_ENTRY_TIMEOUT_S
from collector.ble.devices import ConfiguredDevice
from collector.errors import DeviceConnectionError, PairingError
from collector.profiles.base import DeviceDescription
from collector.profiles.registry import ProfileRegistry

FIND_TIMEOUT_S: Final = 30.0
"""How long to listen for the band: a band in pairing mode advertises every second or faster."""
CONNECT_TIMEOUT_S: Final = 10.0
IDENTITY_TIMEOUT_S: Final = 10.0
"""How long to listen for the band again once paired, to learn the address it is known by."""
FIRST_READING_TIMEOUT_S: Final = 15.0
"""How long to wait for the first measurement once paired (bands notify every 1-5 s)."""

PasskeyPrompt = Callable[[], Awaitable[int | None]]
"""Asks a person for the passkey the band shows (None: they gave up)."""


@dataclass(frozen=True, slots=True)
class PairingOutcome:
    """What pairing a band achieved."""

    address: str
    """Its identity address: the one to name in devices.toml (a band with privacy advertises
    from others, which the gateway resolves with the bond)."""
    passkey: bool
    """Paired with a passkey typed in (else Just Works)."""
    streams: bool
    """A measurement arrived over the encrypted link."""


async def pair_band(
    backend: BleakBackend,
    device: ConfiguredDevice,
    registry: ProfileRegistry,
    ask_passkey: PasskeyPrompt,
    *,
    find_timeout_s: float = FIND_TIMEOUT_S,
) -> PairingOutcome:
    """Find ``device``, pair it afresh, and check that a measurement arrives encrypted.

    Raises :class:`~collector.errors.DeviceConnectionError` when the band is not heard or cannot
    be connected, :class:`~collector.errors.PairingError` when pairing fails.
    """
    # a band with privacy advertises from an address nobody knows before it is bonded: by name
    finder = device if device.name is None else replace(device, address=None)
    found = await _heard(backend, finder, find_timeout_s)
    if found is None:
        raise DeviceConnectionError(
            device.device_id,
            f"not heard within {find_timeout_s:g} s: is it on, near the adapter, and not "
            "connected to a phone or a running gateway?",
        )
    ble_device, adv = found
    asked: list[bool] = []

    async def counted() -> int | None:
        asked.append(True)
        return await ask_passkey()

    with _passkey_prompt(backend, counted):
        client = BleakClient(ble_device, backend=backend.client, timeout=CONNECT_TIMEOUT_S)
        try:
            await client.connect()
        except (BleakError, TimeoutError) as exc:
            raise DeviceConnectionError(device.device_id, f"cannot connect ({exc})") from exc
        try:
            await client.pair(timeout_s=PASSKEY_ENTRY_TIMEOUT_S)
            streams = await _first_reading(client, ble_device, adv, device, registry)
        except (BleakError, TimeoutError) as exc:
            raise PairingError(device.device_id, f"pairing failed ({exc})") from exc
        finally:
            await client.disconnect()
    identity = ble_device.address
    if device.name is not None:  # heard again now that it is bonded: under its identity
        again = await _heard(backend, finder, IDENTITY_TIMEOUT_S)
        identity = again[0].address if again is not None else identity
    return PairingOutcome(identity.upper(), bool(asked), streams)


async def _heard(
    backend: BleakBackend, device: ConfiguredDevice, timeout_s: float
) -> tuple[BLEDevice, AdvertisementData] | None:
    """The band's first advertisement within ``timeout_s`` (None: not heard)."""
    async with BleakScanner(backend=backend.scanner) as scanner:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                async for ble_device, adv in scanner.advertisement_data():
                    if device.matches(ble_device.address, adv.local_name or ble_device.name):
                        return ble_device, adv
    return None


@contextlib.contextmanager
def _passkey_prompt(backend: BleakBackend, ask: PasskeyPrompt) -> Iterator[None]:
    """Let the Bumble central ask a person for a passkey while this block runs.

    BlueZ asks through its own agent (``bluetoothctl``), not through flarewatch.
    """
    from collector.ble.bumble_backend import BleakClientBumble, PasskeyDelegate

    client_class = backend.client
    if client_class is None or not issubclass(client_class, BleakClientBumble):
        yield
        return
    central = client_class.shared_central()
    central.pairing_delegate = PasskeyDelegate(ask)
    try:
        yield
    finally:
        central.pairing_delegate = None


async def _first_reading(
    client: BleakClient,
    ble_device: BLEDevice,
    adv: AdvertisementData,
    device: ConfiguredDevice,
    registry: ProfileRegistry,
) -> bool:
    """Whether a measurement the profiles stream arrives within the timeout."""
    description = DeviceDescription(
        name=adv.local_name or ble_device.name,
        service_uuids=frozenset(adv.service_uuids) | {s.uuid for s in client.services},
        manufacturer_data=adv.manufacturer_data,
    )
    plan = registry.plan_for(description, profile_names=device.profiles)
    available = {c.uuid: c for c in client.services.characteristics.values()}
    arrived = asyncio.Event()
    subscribed = False
    for measurement in plan.subscriptions:
        characteristic = available.get(measurement.uuid)
        if characteristic is None or not {"notify", "indicate"} & set(characteristic.properties):
            continue
        await client.start_notify(characteristic, lambda _c, _data: arrived.set())
        subscribed = True
    if not subscribed:
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_READING_TIMEOUT_S):
            await arrived.wait()
    return arrived.is_set()
