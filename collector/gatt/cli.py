"""``flarewatch gatt ...``: decode a characteristic value captured with nRF Connect or a sniffer.

``flarewatch gatt decode --uuid 2a37 --hex 16480301`` prints the decoded value as one JSON object
on stdout (exit 0); a malformed payload prints the reason on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import re

from collector.errors import GattParseError
from collector.gatt.uuids import normalize_uuid

_HEX_NOISE = re.compile(r"0[xX]|[\s:\-_,.()]")
"""Separators and prefixes of captures: ``16 48``, ``16:48``, ``(0x) 16-48``, ``0x16,0x48``."""


def parse_hex(text: str, uuid: str) -> bytes:
    """The bytes of a hex dump with or without separators; ``GattParseError`` if it is not hex."""
    digits = _HEX_NOISE.sub("", text)
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise GattParseError(
            uuid,
            "--hex must be pairs of hexadecimal digits, e.g. 16480301 or 16:48:03:01",
            reason="bad_hex",
        ) from None


def _decode_command(args: argparse.Namespace) -> int:
    # Imported here: the profile registry sits above the parsers and is only needed by this command.
    from collector.profiles import default_registry

    uuid = normalize_uuid(args.uuid)
    data = parse_hex(args.hex, uuid)
    value = default_registry(args.plugin).decode(uuid, data)
    print(json.dumps(value.to_json_dict(), allow_nan=False))
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gatt`` command group (``gatt decode``) to the ``flarewatch`` CLI."""
    gatt = subparsers.add_parser("gatt", help="decode Bluetooth GATT characteristic values")
    commands = gatt.add_subparsers(dest="gatt_command", metavar="GATT_COMMAND", required=True)
    decode = commands.add_parser(
        "decode",
        help="decode one characteristic value and print it as JSON",
        description="Decode one value (e.g. copied from nRF Connect) and print one JSON object.",
    )
    decode.add_argument(
        "--uuid", required=True, help="characteristic UUID: 16-bit (2a37, 0x2A37) or 128-bit"
    )
    decode.add_argument(
        "--hex", required=True, help="the value in hex; spaces, colons and dashes are ignored"
    )
    decode.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="also load a device-profile plug-in module (repeatable)",
    )
    decode.set_defaults(handler=_decode_command)
