"""``flarewatch scan``: the wearables in range, what flarewatch can read of each, their entries.

Pairing a band with a patient starts with its Bluetooth address or advertised name, which
``devices.toml`` needs. :func:`scan_wearables` listens to advertisements for a while, through the
same bleak backend as the gateway, and tells per device what the gateway would do with it: the
device profiles its advertisement matches (the standard services, or a plug-in's name pattern or
manufacturer), and the entry of ``devices.toml`` it already matches. Many bands advertise none
of their services: their profiles are found only once the gateway connects, so they are listed
as "connect to tell" when they are named, and :func:`read_services` connects to them (one at a
time, nearest first) to read the services they offer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from collector.ble.backend import BleakBackend
from collector.ble.devices import ConfiguredDevice
from collector.errors import BluetoothAdapterError
from collector.profiles.base import DeviceDescription
from collector.profiles.registry import ProfileRegistry
from flarewatch.topics import is_valid_id

TICK_S: Final = 0.25
"""How often the scan reports its progress."""
DEVICE_ID_MAX_CHARS: Final = 40
"""Length of a device id proposed from an advertised name."""
CONNECT_TIMEOUT_S: Final = 10.0
"""How long connecting to one device may take (the backend cancels the attempt properly: a
controller left with a connect pending serves no other)."""
READ_TIMEOUT_S: Final = 2 * CONNECT_TIMEOUT_S
"""How long connecting and reading one device's services may take together."""
MAX_CONNECTS: Final = 10
"""Devices :func:`read_services` connects to at the most, nearest first: a crowded room (a
neighbour's headphones, a TV) should not hold a scan for minutes."""


@dataclass(slots=True)
class SeenWearable:
    """One advertiser heard during a scan, and what the gateway would make of it."""

    address: str
    name: str | None = None
    rssi: int | None = None
    """The strongest signal heard (dBm): the band nearest the gateway has the highest."""
    service_uuids: set[str] = field(default_factory=set)
    manufacturer_ids: set[int] = field(default_factory=set)
    profiles: tuple[str, ...] = ()
    """Profiles its advertisement matches that stream measurements (heart rate, temperature,
    steps), as the gateway would pick them; not those of a state read at every connection and
    perhaps notified after (battery, device information), which any gadget may offer."""
    configured_as: str | None = None
    """The id of the ``devices.toml`` entry it matches, if any."""
    connected: bool | None = None
    """Whether :func:`read_services` read its services (None: not tried)."""
    connect_error: str | None = None
    """Why it could not (the kind of error: nothing a device sent)."""
    ble_device: BLEDevice | None = field(default=None, repr=False, compare=False)

    @property
    def readable(self) -> bool:
        """Whether its advertisement already shows something flarewatch reads."""
        return bool(self.profiles)


def _heard(
    seen: dict[str, SeenWearable], device: BLEDevice, advertisement: AdvertisementData
) -> None:
    wearable = seen.setdefault(device.address.upper(), SeenWearable(device.address.upper()))
    wearable.ble_device = device
    wearable.name = advertisement.local_name or device.name or wearable.name
    if advertisement.rssi is not None and (
        wearable.rssi is None or advertisement.rssi > wearable.rssi
    ):
        wearable.rssi = advertisement.rssi
    wearable.service_uuids.update(advertisement.service_uuids)
    wearable.manufacturer_ids.update(advertisement.manufacturer_data)


def _judged(
    wearable: SeenWearable, registry: ProfileRegistry, configured: Sequence[ConfiguredDevice]
) -> SeenWearable:
    description = DeviceDescription(
        wearable.name,
        frozenset(wearable.service_uuids),
        dict.fromkeys(wearable.manufacturer_ids, b""),
    )
    wearable.profiles = tuple(
        profile.name
        for profile in registry.match(description)
        if any(m.subscribe is not None and not m.read_on_connect for m in profile.measurements)
    )
    wearable.configured_as = next(
        (d.device_id for d in configured if d.matches(wearable.address, wearable.name)), None
    )
    return wearable


async def scan_wearables(
    backend: BleakBackend,
    seconds: float,
    registry: ProfileRegistry,
    configured: Sequence[ConfiguredDevice] = (),
    on_progress: Callable[[float], None] | None = None,
    *,
    connect: bool = False,
    on_connected: Callable[[int, int], None] | None = None,
) -> list[SeenWearable]:
    """Listen for ``seconds``; every advertiser heard, readable ones first, nearest first.

    With ``connect``, then read the services of those :func:`to_connect` picks
    (:func:`read_services`; ``on_connected(done, total)`` after each). Raises
    :class:`collector.errors.BluetoothAdapterError` when scanning cannot start.
    """
    seen: dict[str, SeenWearable] = {}
    try:
        scanner = BleakScanner(
            lambda device, adv: _heard(seen, device, adv), backend=backend.scanner
        )
        await scanner.start()
    except Exception as exc:  # any failure here means no usable adapter
        raise BluetoothAdapterError(backend.description, exc) from exc
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while (elapsed := loop.time() - start) < seconds:
            if on_progress is not None:
                on_progress(elapsed)
            await asyncio.sleep(min(TICK_S, seconds - elapsed))
    finally:
        await scanner.stop()
    if on_progress is not None:
        on_progress(seconds)
    heard = [_judged(w, registry, configured) for w in seen.values()]
    unknown = to_connect(heard) if connect else []

    def reading(done: int) -> None:
        if on_connected is not None:
            on_connected(done, len(unknown))

    await read_services(backend, unknown, registry, configured, reading)
    return readable_first(heard)


def readable_first(wearables: Iterable[SeenWearable]) -> list[SeenWearable]:
    """The readable wearables first, each part nearest first (then by address)."""
    return sorted(wearables, key=lambda w: (not w.readable, -(w.rssi or -999), w.address))


def reads(wearable: SeenWearable) -> str:
    """What flarewatch reads of the wearable, in words for the table."""
    if wearable.profiles:
        return ", ".join(wearable.profiles)
    if wearable.connected:
        return "nothing flarewatch reads"
    if wearable.connected is False:
        return f"could not connect ({wearable.connect_error})"
    return "connect to tell (--connect)"


def to_connect(wearables: Sequence[SeenWearable]) -> list[SeenWearable]:
    """The devices :func:`read_services` would connect to, nearest first.

    Named or configured ones whose advertisement shows nothing readable, at most
    :data:`MAX_CONNECTS`.
    """
    unknown = [w for w in wearables if not w.readable and (w.name or w.configured_as)]
    return sorted(unknown, key=lambda w: (-(w.rssi or -999), w.address))[:MAX_CONNECTS]


async def read_services(
    backend: BleakBackend,
    wearables: Sequence[SeenWearable],
    registry: ProfileRegistry,
    configured: Sequence[ConfiguredDevice] = (),
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Connect to each of ``wearables`` in turn, read its services and judge it again."""
    for done, wearable in enumerate(wearables, start=1):
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                target = wearable.ble_device or wearable.address
                client = BleakClient(target, backend=backend.client, timeout=CONNECT_TIMEOUT_S)
                async with client:
                    wearable.service_uuids.update(s.uuid for s in client.services)
            wearable.connected = True
        except Exception as exc:  # noqa: BLE001 - a device that refuses or vanishes is said
            wearable.connected = False
            wearable.connect_error = (
                "timed out" if isinstance(exc, TimeoutError) else (type(exc).__name__)
            )
        _judged(wearable, registry, configured)
        if on_done is not None:
            on_done(done)


def proposed_id(wearable: SeenWearable, taken: Iterable[str] = ()) -> str:
    """A device id for ``devices.toml`` from the advertised name (else the address), unique."""
    slug = re.sub(r"[^a-z0-9_.-]+", "-", (wearable.name or "").lower()).strip("-._")
    suffix = wearable.address.replace(":", "").lower()[-6:]
    base = slug[:DEVICE_ID_MAX_CHARS] or f"band-{suffix}"
    candidate = base if is_valid_id(base) else f"band-{suffix}"
    taken = set(taken)
    if candidate in taken:
        candidate = f"{candidate[: DEVICE_ID_MAX_CHARS - 7]}-{suffix}"
    return candidate


def devices_toml(wearables: Sequence[SeenWearable], patient_id: str) -> str:
    """``[[devices]]`` tables for the wearables, all for ``patient_id``, ready for devices.toml."""
    taken: list[str] = []
    tables: list[str] = []
    for wearable in wearables:
        device_id = proposed_id(wearable, taken)
        taken.append(device_id)
        name = "".join(c for c in wearable.name or "" if c.isprintable())
        lines = [
            f"# {name or 'no name'}, {wearable.rssi if wearable.rssi is not None else '?'} dBm",
            "[[devices]]",
            f'id = "{device_id}"',
            f'patient = "{patient_id}"',
            f'address = "{wearable.address}"',
        ]
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n" if tables else ""
