"""``flarewatch collect`` (the BLE gateway), ``scan`` (bands in range), ``ble-sim`` (virtual)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Final

from flarewatch import cli_types
from flarewatch.errors import ConfigError

SCAN_SECONDS: Final = (1.0, 120.0)
"""How long ``scan`` may listen: bands advertise every 0.1-2 s, some slower when idle."""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``collect``, ``scan`` and ``ble-sim`` commands."""
    collect = subparsers.add_parser(
        "collect",
        help="read the configured BLE wearables and publish their samples to MQTT",
        description="Run the gateway: BLE wearables -> durable outbox -> MQTT (see docs/ble.md).",
    )
    add_gateway_options(collect, "[mqtt] url and [collector] devices_file")
    collect.set_defaults(handler=_collect)

    scan = subparsers.add_parser(
        "scan",
        help="list the BLE wearables in range and what flarewatch can read of them",
        description="Listen to Bluetooth advertisements through the gateway's backend and list "
        "the wearables heard, nearest first: which device profiles each matches, and which "
        "devices.toml entry it is already (see docs/ble.md).",
    )
    add_gateway_options(scan, "[collector] ble_backend, devices_file and profile_plugins")
    scan.add_argument("--seconds", type=float, default=10.0, help="how long to listen (default 10)")
    scan.add_argument(
        "--all", action="store_true", help="also list advertisers without a name or profile"
    )
    scan.add_argument(
        "--connect",
        action="store_true",
        help="connect to the named devices whose advertisement shows nothing readable (10 at "
        "the most, nearest first) and read their services",
    )
    shown = scan.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="one JSON object per wearable")
    shown.add_argument(
        "--toml",
        metavar="PATIENT",
        help="print [[devices]] tables for the readable wearables not yet in devices.toml, "
        "for PATIENT",
    )
    scan.set_defaults(handler=_scan)

    sim = subparsers.add_parser(
        "ble-sim",
        help="serve virtual BLE wearables (Bumble) for `collect --ble-backend bumble:tcp-client:…`",
    )
    sim.add_argument("--devices", type=int, default=5, help="how many wearables (band-1..N)")
    sim.add_argument(
        "--hci-port", type=cli_types.port, default=0, help="TCP port for collectors (0: any)"
    )
    sim.add_argument(
        "--control-port", type=cli_types.port, default=0, help="TCP port of the control API"
    )
    sim.add_argument(
        "--rate-hz", type=float, default=1.0, help="heart-rate and temperature messages per second"
    )
    sim.add_argument(
        "--steady",
        action="store_true",
        help="steady resting values instead of the physiological simulator (benchmarks)",
    )
    sim.add_argument(
        "--cadence",
        action="store_true",
        help="also serve Running Speed and Cadence (0x1814): cadence of the simulated steps",
    )
    sim.add_argument(
        "--security",
        choices=["none", "encryption", "passkey"],
        default="none",
        help="what the bands ask of a link before they let themselves be read: nothing, "
        "encryption (paired Just Works, then bonded) or a passkey they show (`flarewatch pair`)",
    )
    sim.add_argument(
        "--privacy",
        action="store_true",
        help="the bands advertise from resolvable private addresses, known by their identity "
        "only to a gateway they bonded with",
    )
    sim.set_defaults(handler=_ble_sim)


def add_gateway_options(parser: argparse.ArgumentParser, settings_used: str) -> None:
    """The options of the commands that run the gateway's Bluetooth: its settings, its backend."""
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"TOML settings file with {settings_used}",
    )
    parser.add_argument(
        "--ble-backend",
        default=None,
        help="override collector.ble_backend, e.g. bumble:usb:0 (default: BlueZ)",
    )


def _collect(args: argparse.Namespace) -> int:
    from collector.gateway import collect
    from flarewatch.settings import config_file_in_use, load_settings

    settings = load_settings(getattr(args, "config", None))
    if args.ble_backend:
        settings.collector.ble_backend = args.ble_backend
    # devices_file is relative to the settings file, however it was named (before: to the
    # folder collect ran in when named by FLAREWATCH_CONFIG or `flarewatch --config`)
    return collect(settings, config_file_in_use())


def _scan(args: argparse.Namespace) -> int:
    import asyncio

    from collector.ble.backend import bonded_addresses, select_backend
    from collector.ble.scan import devices_toml, reads, scan_wearables
    from collector.gateway import devices_of
    from collector.profiles.registry import default_registry
    from flarewatch.cli_text import print_table
    from flarewatch.progress import percent_progress
    from flarewatch.settings import config_file_in_use, load_settings
    from flarewatch.topics import is_valid_id

    low, high = SCAN_SECONDS
    if not low <= args.seconds <= high:
        raise ConfigError(f"--seconds must be from {low:g} to {high:g}")
    if args.toml is not None and not is_valid_id(args.toml):
        raise ConfigError(f"--toml {args.toml!r}: a patient id is letters, digits, _ . -")
    settings = load_settings(getattr(args, "config", None))
    backend = select_backend(
        args.ble_backend or settings.collector.ble_backend, settings.collector.bonds_file
    )
    registry = default_registry(settings.collector.profile_plugins)
    configured = (
        devices_of(settings, config_file_in_use())
        if settings.collector.devices_file is not None
        else []
    )
    with percent_progress() as progress:
        listening = progress.add_task(f"listening ({backend.description})", total=args.seconds)
        reading = progress.add_task("reading their services", visible=False)

        def connected(done: int, total: int) -> None:
            progress.update(reading, total=total, completed=done, visible=True)

        heard = asyncio.run(
            scan_wearables(
                backend,
                args.seconds,
                registry,
                configured,
                lambda elapsed: progress.update(listening, completed=elapsed),
                connect=args.connect,
                on_connected=connected,
            )
        )
    shown = [w for w in heard if args.all or w.readable or w.configured_as or w.name]
    bonded = bonded_addresses(backend, settings.collector.bonds_file)
    if args.json:
        for w in shown:
            record = {
                "address": w.address,
                "name": w.name,
                "rssi_dbm": w.rssi,
                "profiles": list(w.profiles),
                "service_uuids": sorted(w.service_uuids),
                "manufacturer_ids": sorted(w.manufacturer_ids),
                "devices_toml_id": w.configured_as,
                "connected": w.connected,
                "connect_error": w.connect_error,
                "bonded": None if bonded is None else w.address in bonded,
            }
            print(json.dumps(record))
    elif args.toml is not None:
        print(devices_toml([w for w in shown if w.readable and not w.configured_as], args.toml))
    else:
        rows = [
            (
                w.address,
                w.name or "-",
                "?" if w.rssi is None else w.rssi,
                reads(w),
                w.configured_as or "-",
                *([] if bonded is None else ["yes" if w.address in bonded else "-"]),
            )
            for w in shown
        ]
        headers = ["address", "name", "dBm", "reads", "in devices.toml"]
        print_table([*headers, *([] if bonded is None else ["bonded"])], rows)
    hidden = len(heard) - len(shown)
    print(
        f"{len(heard)} advertiser(s) heard in {args.seconds:g} s, "
        f"{sum(w.readable for w in heard)} readable"
        + (f"; {hidden} without a name or profile hidden (--all lists them)" if hidden else ""),
        file=sys.stderr,
    )
    return 0


def _ble_sim(args: argparse.Namespace) -> int:
    from collector.virtual.control import run_ble_sim
    from collector.virtual.wearable import BandSecurity

    if args.devices < 1 or not 0 < args.rate_hz <= 1000:
        raise ConfigError("ble-sim needs --devices >= 1 and 0 < --rate-hz <= 1000")
    return run_ble_sim(
        args.devices,
        args.hci_port,
        args.control_port,
        rate_hz=args.rate_hz,
        simulator=not args.steady,
        running_speed_cadence=args.cadence,
        security=BandSecurity(args.security),
        privacy=args.privacy,
    )
