"""``flarewatch scan``: the wearables in range, what flarewatch can read of each, their entries.

Pairing a band with a patient starts with its Bluetooth address or advertised name, which
``devices.toml`` needs. :func:`scan_wearables` listens to advertisements for a while, through the
same bleak backend as the gateway, and tells per device what the gateway would do with it: the
device profiles its advertisement matches (the standard services, or a plug-in's name pattern or
manufacturer), and the entry of ``devices.toml`` it already matches. Many bands advertise none
of their services: their profiles are found only once the gateway connects, so they are listed
as "connect to tell" when they are named.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from bleak import BleakScanner
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

    @property
    def readable(self) -> bool:
        """Whether its advertisement already shows something flarewatch reads."""
        return bool(self.profiles)


def _heard(
    seen: dict[str, SeenWearable], device: BLEDevice, advertisement: AdvertisementData
) -> None:
    wearable = seen.setdefault(device.address.upper(), SeenWearable(device.address.upper()))
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
) -> list[SeenWearable]:
    """Listen for ``seconds``; every advertiser heard, readable ones first, nearest first.

    Raises :class:`collector.errors.BluetoothAdapterError` when scanning cannot start.
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
    judged = [_judged(w, registry, configured) for w in seen.values()]
    return sorted(judged, key=lambda w: (not w.readable, -(w.rssi or -999), w.address))


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
