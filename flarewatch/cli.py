"""The ``flarewatch`` command: the composition root that gathers every component's subcommands.

Each component owns a ``cli`` module with ``add_commands(subparsers)``; a command sets
``handler(args) -> int`` as its default. Components are imported lazily so that a missing optional
dependency (e.g. the ``ble`` extra) only affects the commands that need it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from flarewatch import __version__
from flarewatch.errors import FlarewatchError

COMPONENT_CLIS = ("service.cli", "collector.cli", "models.cli", "flarewatch.demo")

log = logging.getLogger("flarewatch")

CHATTY_LOGGERS: Final = ("httpx",)
"""Libraries that log every request at INFO (httpx: one line per InfluxDB request, its query and
the patient id in it). Heard only at DEBUG."""


LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""What ``--log-level`` takes (any case); anything else is a usage error, not a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with the subcommands of every installed component."""
    parser = argparse.ArgumentParser(
        prog="flarewatch",
        description="Watch people with mast-cell disorders through wearables and alert caregivers.",
    )
    parser.add_argument("--version", action="version", version=f"flarewatch {__version__}")
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML settings file (else FLAREWATCH_CONFIG)"
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=None,
        help="DEBUG, INFO, WARNING, ERROR (default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMPONENT_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # Said on stderr, not logged: logging is not set up yet, and without this line a
            # broken install shows only "invalid choice" for the commands it lost.
            print(
                f"flarewatch: warning: the commands of {module_name} are unavailable "
                f"({type(exc).__name__}: {exc}); reinstall flarewatch to get them back",
                file=sys.stderr,
            )
            continue
        module.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flarewatch`` command line; returns the process exit code."""
    try:
        parser = build_parser()  # imports every component: seconds, when Ctrl-C often comes
    except KeyboardInterrupt:
        return 130
    args = parser.parse_args(argv)
    level = args.log_level or "INFO"
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if level != "DEBUG":
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except FlarewatchError as exc:
        print(f"flarewatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
