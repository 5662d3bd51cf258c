"""``flarewatch collect`` (run the BLE gateway) and ``flarewatch ble-sim`` (virtual wearables)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flarewatch import cli_types
from flarewatch.errors import ConfigError


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``collect`` and ``ble-sim`` commands."""
    collect = subparsers.add_parser(
        "collect",
        help="read the configured BLE wearables and publish their samples to MQTT",
        description="Run the gateway: BLE wearables -> durable outbox -> MQTT (see docs/ble.md).",
    )
    collect.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="TOML settings file with [mqtt] url and [collector] devices_file",
    )
    collect.add_argument(
        "--ble-backend",
        default=None,
        help="override collector.ble_backend, e.g. bumble:usb:0 (default: BlueZ)",
    )
    collect.set_defaults(handler=_collect)

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
    sim.set_defaults(handler=_ble_sim)


def _collect(args: argparse.Namespace) -> int:
    from collector.gateway import collect
    from flarewatch.settings import config_file_in_use, load_settings

    settings = load_settings(getattr(args, "config", None))
    if args.ble_backend:
        settings.collector.ble_backend = args.ble_backend
    # devices_file is relative to the settings file, however it was named (before: to the
    # folder collect ran in when named by FLAREWATCH_CONFIG or `flarewatch --config`)
    return collect(settings, config_file_in_use())


def _ble_sim(args: argparse.Namespace) -> int:
    from collector.virtual.control import run_ble_sim

    if args.devices < 1 or not 0 < args.rate_hz <= 1000:
        raise ConfigError("ble-sim needs --devices >= 1 and 0 < --rate-hz <= 1000")
    return run_ble_sim(
        args.devices,
        args.hci_port,
        args.control_port,
        rate_hz=args.rate_hz,
        simulator=not args.steady,
        running_speed_cadence=args.cadence,
    )
