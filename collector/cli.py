"""The collector's ``flarewatch`` subcommands, gathered by ``flarewatch.cli`` (composition root)."""

from __future__ import annotations

import argparse

from collector.ble.cli import add_ble_commands
from collector.gatt.cli import add_gatt_commands
from collector.simulation.cli import add_simulate_commands


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every collector command to the ``flarewatch`` CLI."""
    add_gatt_commands(subparsers)
    add_ble_commands(subparsers)
    add_simulate_commands(subparsers)
