"""The ``flarewatch`` command: the composition root that gathers every component's subcommands.

Each command is declared by a module with ``add_commands(subparsers)``, named in
:data:`COMMAND_MODULES`; a command sets ``handler(args) -> int`` as its default. Only the module of
the command being run is imported: the others bring scikit-learn, Bumble or Apprise, seconds of
start-up that ``flarewatch gatt decode`` has no use for. ``--help`` and a command nobody declares
import them all, to list every command. A module that cannot be imported (a broken install) costs
only the commands it declares.
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

COMMAND_MODULES: Final = {
    "serve": "service.cli",
    "admin": "service.admin_cli",
    "gatt": "collector.gatt.cli",
    "collect": "collector.ble.cli",
    "scan": "collector.ble.cli",
    "ble-sim": "collector.ble.cli",
    "pair": "collector.ble.bond_cli",
    "unpair": "collector.ble.bond_cli",
    "bonds": "collector.ble.bond_cli",
    "simulate": "collector.simulation.cli",
    "detect": "models.cli",
    "evaluate": "models.cli",
    "demo": "flarewatch.demo_cli",
}
"""Each top-level command and the module whose ``add_commands`` declares it, in ``--help`` order."""

GLOBAL_OPTIONS_WITH_VALUE: Final = ("--config", "--log-level")

log = logging.getLogger("flarewatch")

CHATTY_LOGGERS: Final = ("httpx", "alembic")
"""Libraries that narrate at INFO (httpx: one line per InfluxDB request, its query and the patient
id in it; alembic: each of its plugins as it loads, seven lines, and each migration step, which
the service database says in one line of its own). Heard only at DEBUG."""


KEY_CARRYING_LOGGERS: Final = ("bumble",)
"""Libraries never heard below INFO, even at ``--log-level DEBUG``: Bumble dumps every HCI and
SMP packet at DEBUG, the long-term keys of paired bands among them (HCI LE Enable Encryption)."""


LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""What ``--log-level`` takes (any case); anything else is a usage error, not a traceback."""


def _before_command(argv: Sequence[str]) -> tuple[dict[str, str], str | None]:
    """The global options' values (``--log-level``) and the command named on a command line."""
    values: dict[str, str] = {}
    tokens = iter(argv)
    for token in tokens:
        name, equals, value = token.partition("=")
        if name in GLOBAL_OPTIONS_WITH_VALUE:
            values[name] = value if equals else next(tokens, "")
        elif not token.startswith("-"):
            return values, token
    return values, None


def command_in(argv: Sequence[str]) -> str | None:
    """The command named on a command line, past the global options; None when there is none."""
    return _before_command(argv)[1]


def _quiet_chatty_loggers(level: str) -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
    for name in KEY_CARRYING_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def modules_for(command: str | None) -> list[str]:
    """The modules to import for ``command``: its own, or every one (help, unknown command)."""
    if command in COMMAND_MODULES:
        return [COMMAND_MODULES[command]]
    return list(dict.fromkeys(COMMAND_MODULES.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser with ``command``, or with every command when it is None."""
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
    for module_name in modules_for(command):
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
    arguments = sys.argv[1:] if argv is None else list(argv)
    # before the command's module loads: some libraries narrate as they are imported
    _quiet_chatty_loggers(_before_command(arguments)[0].get("--log-level", "").upper())
    try:
        # imports the command's module: up to seconds, when Ctrl-C often comes
        parser = build_parser(command_in(arguments))
    except KeyboardInterrupt:
        return 130
    args = parser.parse_args(arguments)
    level = args.log_level or "INFO"
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    _quiet_chatty_loggers(level)
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
