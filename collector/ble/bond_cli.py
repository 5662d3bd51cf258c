"""``flarewatch pair`` / ``unpair`` / ``bonds``: the bands the gateway keeps a bond with."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from collector.ble.cli import add_gateway_options
from collector.ble.devices import ConfiguredDevice
from flarewatch.errors import ConfigError

if TYPE_CHECKING:
    from collector.ble.backend import BleakBackend
    from flarewatch.settings import Settings

PASSKEY_DIGITS: Final = 6
PASSKEY_TRIES: Final = 3


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``pair``, ``unpair`` and ``bonds`` commands."""
    pair = subparsers.add_parser(
        "pair",
        help="pair a band once (typing its passkey if it shows one) so the gateway bonds with it",
        description="Find the band, pair it afresh and check that a measurement arrives over "
        "the encrypted link; the gateway then encrypts every link to it with this bond. Stop "
        "the gateway first: one program at a time drives an adapter (see docs/ble.md).",
    )
    add_gateway_options(pair, "[collector] ble_backend, bonds_file and devices_file")
    pair.add_argument("device", help="its id in devices.toml, or its Bluetooth address")
    pair.add_argument(
        "--seconds", type=float, default=30.0, help="how long to listen for it (default 30)"
    )
    pair.set_defaults(handler=_pair)

    unpair = subparsers.add_parser(
        "unpair",
        help="forget the gateway's bond with a band (it pairs anew when it next asks)",
    )
    add_gateway_options(unpair, "[collector] ble_backend, bonds_file and devices_file")
    unpair.add_argument("device", help="its id in devices.toml, or its Bluetooth address")
    unpair.set_defaults(handler=_unpair)

    bonds = subparsers.add_parser(
        "bonds", help="list the bands the gateway keeps a bond with (Bumble backend)"
    )
    add_gateway_options(bonds, "[collector] ble_backend, bonds_file and devices_file")
    bonds.add_argument("--json", action="store_true", help="one JSON object per bond")
    bonds.set_defaults(handler=_bonds)


def _pair(args: argparse.Namespace) -> int:
    import asyncio

    from collector.ble.bonding import pair_band
    from collector.profiles.registry import default_registry

    settings, backend, configured = _gateway(args)
    device = _device(args.device, configured)
    if not 1.0 <= args.seconds <= 120.0:
        raise ConfigError("--seconds must be from 1 to 120")

    async def ask() -> int | None:
        return await asyncio.to_thread(_read_passkey, device.device_id)

    print(f"listening for {device.device_id} (up to {args.seconds:g} s)...", file=sys.stderr)
    outcome = asyncio.run(
        pair_band(
            backend,
            device,
            default_registry(settings.collector.profile_plugins),
            ask,
            find_timeout_s=args.seconds,
        )
    )
    how = "with its passkey" if outcome.passkey else "(Just Works: the band asked for no passkey)"
    where = (
        f"kept in {settings.collector.bonds_file}"
        if backend.client is not None
        else "kept by BlueZ"
    )
    print(f"{device.device_id} ({outcome.address}) paired {how}; the bond is {where}.")
    if device.address is not None and device.address != outcome.address:
        print(
            f"flarewatch: {device.device_id}: the band is known by the address "
            f"{outcome.address} (devices.toml says {device.address}): set "
            f'address = "{outcome.address}" in its entry, or the gateway will not find it',
            file=sys.stderr,
        )
        return 1
    if outcome.streams:
        print("A measurement arrived over the encrypted link: the gateway can stream it.")
        return 0
    print(
        f"flarewatch: warning: no measurement arrived from {device.device_id} once paired; "
        "check its profiles with `flarewatch scan --connect`",
        file=sys.stderr,
    )
    return 1


def _unpair(args: argparse.Namespace) -> int:
    settings, backend, configured = _gateway(args)
    device = _device(args.device, configured)
    if device.address is None:
        raise ConfigError(
            f"{device.device_id} is configured by its name only: give its address "
            "(`flarewatch bonds` lists them)"
        )
    if backend.client is None:
        import asyncio

        from bleak import BleakClient

        asyncio.run(BleakClient(device.address).unpair())
        print(f"{device.device_id}: BlueZ forgot its bond.")
        return 0
    from collector.ble.bumble_backend import BondStore

    if not BondStore(settings.collector.bonds_file).forget(device.address):
        print(f"flarewatch: no bond with {device.address}", file=sys.stderr)
        return 1
    print(
        f"{device.device_id} ({device.address}): bond forgotten. The gateway pairs it anew "
        "when it next asks (some bands only in their pairing mode)."
    )
    return 0


def _bonds(args: argparse.Namespace) -> int:
    settings, backend, configured = _gateway(args)
    if backend.client is None:
        print("BlueZ keeps the bonds: `bluetoothctl devices Paired` lists them.", file=sys.stderr)
        return 0
    from collector.ble.bumble_backend import BondStore
    from flarewatch.cli_text import print_table

    ids = {d.address: d.device_id for d in configured if d.address is not None}
    bonds = BondStore(settings.collector.bonds_file).bonds()
    rows = [
        (
            bond.address,
            ids.get(bond.address, "-"),
            datetime.fromtimestamp(bond.bonded_s, UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "passkey" if bond.authenticated else "Just Works",
        )
        for bond in bonds
    ]
    if args.json:
        for address, device_id, since, how in rows:
            print(json.dumps({"address": address, "device": device_id, "since": since, "how": how}))
    else:
        print_table(["address", "in devices.toml", "paired", "how"], rows)
        print(f"{len(bonds)} bond(s) in {settings.collector.bonds_file}", file=sys.stderr)
    return 0


def _gateway(
    args: argparse.Namespace,
) -> tuple[Settings, BleakBackend, list[ConfiguredDevice]]:
    """The settings, the backend and the device registry the gateway would use."""
    from collector.ble.backend import select_backend
    from collector.gateway import devices_of
    from flarewatch.settings import config_file_in_use, load_settings

    settings = load_settings(getattr(args, "config", None))
    backend = select_backend(
        args.ble_backend or settings.collector.ble_backend, settings.collector.bonds_file
    )
    configured = (
        devices_of(settings, config_file_in_use())
        if settings.collector.devices_file is not None
        else []
    )
    return settings, backend, configured


def _device(text: str, configured: Sequence[ConfiguredDevice]) -> ConfiguredDevice:
    """The configured device named ``text``, else a device at address ``text``."""
    for device in configured:
        if device.device_id == text:
            return device
    if len(text.split(":")) == 6 and all(len(p) == 2 for p in text.split(":")):
        matching = [d for d in configured if d.address == text.upper()]
        return matching[0] if matching else ConfiguredDevice(text.upper(), "-", text.upper())
    raise ConfigError(
        f"{text!r} is neither a device of devices.toml nor a Bluetooth address like "
        "C0:5E:00:00:00:01"
    )


def _read_passkey(device_id: str) -> int | None:
    """Ask for the passkey the band shows, on the terminal (None: given up)."""
    for _ in range(PASSKEY_TRIES):
        print(
            f"{device_id} shows a passkey: type its {PASSKEY_DIGITS} digits, then Enter "
            "(Enter alone gives up): ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        line = sys.stdin.readline().strip()
        if not line:
            return None
        if line.isdigit() and len(line) == PASSKEY_DIGITS:
            return int(line)
        print(f"a passkey is {PASSKEY_DIGITS} digits", file=sys.stderr)
    return None
