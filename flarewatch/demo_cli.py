"""``flarewatch demo``, declared for ``flarewatch.cli``: its options, not the demo itself.

The demo (:mod:`flarewatch.demo`) starts every component, whose modules take seconds to load;
``flarewatch demo --help`` and a refused option need none of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from flarewatch import cli_types
from flarewatch.errors import ConfigError

FLUSH_AT_S: Final = 60.0
"""The scripted flush starts one simulated minute after the live phase begins."""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``flarewatch demo``."""
    cmd = subparsers.add_parser(
        "demo",
        help="run broker, simulated patients and the service together, with a live view",
        description="Start everything on this machine: a broker (unless --mqtt-url), the sample "
        "store (SQLite unless --influx-url), N simulated patients (one has a flush) and the "
        "service with detection and episodes. Ctrl-C stops cleanly.",
    )
    cmd.add_argument(
        "--patients", type=cli_types.positive_int, default=5, help="simulated patients (default 5)"
    )
    cmd.add_argument(
        "--duration", type=cli_types.positive, default=None, help="seconds to run (default: ∞)"
    )
    cli_types.add_speed_argument(cmd, "simulated s per real s (default 1)")
    cmd.add_argument(
        "--flush-at",
        type=cli_types.non_negative,
        default=None,
        help=f"simulated seconds until p1's flush (default {FLUSH_AT_S:.0f}, or half the run)",
    )
    cmd.add_argument(
        "--seed", type=cli_types.seed, default=1, help="random seed of the patients (default 1)"
    )
    cmd.add_argument("--mqtt-url", help="use this broker instead of starting one")
    cmd.add_argument("--influx-url", help="store in this InfluxDB instead of SQLite")
    cmd.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="which local broker to start without --mqtt-url (auto: mosquitto if installed)",
    )
    cmd.add_argument("--data-dir", type=Path, help="keep the demo's files here (default: temp)")
    cmd.add_argument(
        "--ble-sim",
        action="store_true",
        help="stream from virtual Bluetooth LE wearables through the real collector (Bumble) "
        "instead of feeding simulated samples straight to MQTT",
    )
    cmd.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Refuse options that do not go together, then load and run the demo (:mod:`.demo`)."""
    if args.ble_sim and (args.speed != 1 or args.flush_at is not None):
        raise ConfigError(
            "--ble-sim streams live from virtual bands in real time, without history or a "
            "scripted flush: leave out --speed and --flush-at"
        )
    from flarewatch import demo

    return demo.run_demo(args)
