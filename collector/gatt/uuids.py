"""Bluetooth UUIDs of the services and characteristics flarewatch reads, and their normal form.

bleak reports every UUID as a lowercase 128-bit string, so that is the one form used inside the
collector; users may write the 16-bit short form (``2a37``, ``0x2A37``) anywhere.
Assigned numbers: Bluetooth SIG, *Assigned Numbers* §3.4 (services) and §3.8 (characteristics).
"""

from __future__ import annotations

import re
import uuid as uuid_module
from typing import Final

from collector.errors import GattParseError

BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
"""Bluetooth Base UUID (Core spec Vol 3 Part B §2.5.1): 16/32-bit UUIDs are aliases inside it."""

_SHORT_UUID = re.compile(r"^(?:0x)?([0-9a-f]{4}|[0-9a-f]{8})$")


def from_short(short: int) -> str:
    """The 128-bit form of a 16- or 32-bit assigned number."""
    return f"{short:08x}{BASE_UUID_SUFFIX}"


def normalize_uuid(value: str | int | uuid_module.UUID) -> str:
    """Canonical lowercase 128-bit UUID of a short number, short string or full UUID.

    Raises ``GattParseError`` (reason ``bad_uuid``) for anything that is not a UUID.
    """
    if isinstance(value, uuid_module.UUID):
        return str(value)
    if isinstance(value, int):
        if 0 <= value <= 0xFFFFFFFF:
            return from_short(value)
        raise GattParseError(str(value), "a short UUID is 16 or 32 bits", reason="bad_uuid")
    text = value.strip().lower()
    short = _SHORT_UUID.match(text)
    if short:
        return from_short(int(short.group(1), 16))
    try:
        return str(uuid_module.UUID(text))
    except ValueError:
        raise GattParseError(
            value, "expected a 16-bit (2a37) or 128-bit UUID", reason="bad_uuid"
        ) from None


def short_form(canonical: str) -> str:
    """``2a37`` for a SIG UUID in canonical form, the full UUID otherwise (for display)."""
    if canonical.endswith(BASE_UUID_SUFFIX) and canonical.startswith("0000"):
        return canonical[4:8]
    return canonical


# Services (Assigned Numbers §3.4.2).
HEART_RATE_SERVICE: Final = from_short(0x180D)
HEALTH_THERMOMETER_SERVICE: Final = from_short(0x1809)
ENVIRONMENTAL_SENSING_SERVICE: Final = from_short(0x181A)
BATTERY_SERVICE: Final = from_short(0x180F)
DEVICE_INFORMATION_SERVICE: Final = from_short(0x180A)
RUNNING_SPEED_CADENCE_SERVICE: Final = from_short(0x1814)

# Characteristics (Assigned Numbers §3.8.1).
HEART_RATE_MEASUREMENT: Final = from_short(0x2A37)
BODY_SENSOR_LOCATION: Final = from_short(0x2A38)
TEMPERATURE_MEASUREMENT: Final = from_short(0x2A1C)
INTERMEDIATE_TEMPERATURE: Final = from_short(0x2A1E)
ENVIRONMENTAL_TEMPERATURE: Final = from_short(0x2A6E)
BATTERY_LEVEL: Final = from_short(0x2A19)
SYSTEM_ID: Final = from_short(0x2A23)
MODEL_NUMBER_STRING: Final = from_short(0x2A24)
SERIAL_NUMBER_STRING: Final = from_short(0x2A25)
FIRMWARE_REVISION_STRING: Final = from_short(0x2A26)
HARDWARE_REVISION_STRING: Final = from_short(0x2A27)
SOFTWARE_REVISION_STRING: Final = from_short(0x2A28)
MANUFACTURER_NAME_STRING: Final = from_short(0x2A29)
PNP_ID: Final = from_short(0x2A50)
RSC_MEASUREMENT: Final = from_short(0x2A53)
RSC_FEATURE: Final = from_short(0x2A54)
