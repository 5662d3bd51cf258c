"""Example vendor plug-in: skin temperature and motion from a band with a proprietary service.

Copy this module to support a wearable whose skin-temperature or motion data sit in a vendor
characteristic. It is loaded only when named in the configuration
(``profile_plugins = ["collector.profiles.plugins.example_skin_motion"]``) or with
``flarewatch gatt decode --plugin``. The "FW Example Band" is fictitious; its format:

=======  ======  ===========================================================
offset   type    field
=======  ======  ===========================================================
0        uint8   flags: bit 0 skin temperature present, bit 1 motion present
+0       sint16  skin temperature, 0.01 °C; 0x8000 = not known
+0       uint16  mean |acceleration| over the last second, milli-g
+2       uint16  standard deviation of |acceleration|, milli-g
=======  ======  ===========================================================

It is recognised by its advertised name or by manufacturer data under company id 0xFFFF, which
the Bluetooth SIG reserves for tests (*Assigned Numbers* §7, Company Identifiers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal

from collector.gatt import GattValue, PayloadReader
from collector.profiles.base import (
    VENDOR_PRIORITY,
    DeviceMatch,
    DeviceProfile,
    Measurement,
    SampleFieldValue,
    Subscription,
)

SERVICE_UUID = "7f6f0001-3c4e-4a1b-9d1e-5a1f1ae70000"
SKIN_MOTION_UUID = "7f6f0002-3c4e-4a1b-9d1e-5a1f1ae70000"
TEST_COMPANY_ID = 0xFFFF
MANUFACTURER_PREFIX = b"FW"

FLAG_SKIN_TEMPERATURE = 0x01
FLAG_MOTION = 0x02
UNKNOWN_TEMPERATURE_RAW = -0x8000
CENTI = Decimal("0.01")
MILLI = Decimal("0.001")


@dataclasses.dataclass(frozen=True, slots=True)
class SkinMotion(GattValue):
    """One notification of the example band (fields absent when its flag is clear)."""

    skin_temperature_c: float | None
    acceleration_g: float | None
    acceleration_sd_g: float | None


def parse_skin_motion(data: bytes | bytearray | memoryview) -> SkinMotion:
    """Decode one notification; ``PayloadReader`` turns every malformation into GattParseError."""
    reader = PayloadReader(SKIN_MOTION_UUID, data)
    flags = reader.uint(1, "flags")
    skin = None
    if flags & FLAG_SKIN_TEMPERATURE:
        raw = reader.sint(2, "skin temperature")
        skin = None if raw == UNKNOWN_TEMPERATURE_RAW else float(raw * CENTI)
    mean_g = sd_g = None
    if flags & FLAG_MOTION:
        mean_g = float(reader.uint(2, "mean acceleration") * MILLI)
        sd_g = float(reader.uint(2, "acceleration deviation") * MILLI)
    reader.finish()
    return SkinMotion(skin, mean_g, sd_g)


def encode_skin_motion(
    skin_centi_c: int | None = None, mean_mg: int | None = None, sd_mg: int | None = None
) -> bytes:
    """Encode a notification (for a virtual band and tests); motion needs both mean and sd."""
    flags, body = 0, b""
    if skin_centi_c is not None:
        flags |= FLAG_SKIN_TEMPERATURE
        body += skin_centi_c.to_bytes(2, "little", signed=True)
    if mean_mg is not None and sd_mg is not None:
        flags |= FLAG_MOTION
        body += mean_mg.to_bytes(2, "little") + sd_mg.to_bytes(2, "little")
    return bytes([flags]) + body


def skin_motion_fields(value: SkinMotion) -> Mapping[str, SampleFieldValue]:
    """The contract fields of a notification (``None`` values are dropped as not measured)."""
    fields = {
        "skin_temperature_c": value.skin_temperature_c,
        "acceleration_g": value.acceleration_g,
        "acceleration_sd_g": value.acceleration_sd_g,
    }
    return {name: v for name, v in fields.items() if v is not None}


EXAMPLE_SKIN_MOTION = DeviceProfile(
    name="example_skin_motion",
    description="FW Example Band: skin temperature and motion (vendor service, example plug-in)",
    matches=(
        DeviceMatch(name_pattern=r"^FW-EXAMPLE\b"),
        DeviceMatch(manufacturer_id=TEST_COMPANY_ID, manufacturer_data_prefix=MANUFACTURER_PREFIX),
        DeviceMatch(service_uuids=frozenset({SERVICE_UUID})),
    ),
    measurements=(
        Measurement(
            SKIN_MOTION_UUID,
            "skin_motion",
            parse_skin_motion,
            skin_motion_fields,
            subscribe=Subscription.NOTIFY,
            required=True,
        ),
    ),
    priority=VENDOR_PRIORITY,
)

PROFILES = (EXAMPLE_SKIN_MOTION,)
