"""Decode any supported SIG characteristic by UUID: the one entry point of the GATT parsers.

``decode(uuid, data)`` either returns a frozen ``GattValue`` or raises ``GattParseError``, for
every possible input (proven by property tests), so a malformed notification can be counted
and logged with its device and never stops the gateway.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid as uuid_module
from collections.abc import Callable, Mapping
from types import MappingProxyType

from collector.errors import GattParseError
from collector.gatt import uuids
from collector.gatt.battery import parse_battery_level
from collector.gatt.device_information import (
    STRING_FIELDS,
    parse_pnp_id,
    parse_system_id,
    string_parser,
)
from collector.gatt.environmental_sensing import parse_environmental_temperature
from collector.gatt.health_thermometer import parse_temperature_measurement
from collector.gatt.heart_rate import parse_body_sensor_location, parse_heart_rate_measurement
from collector.gatt.running_speed_cadence import parse_rsc_feature, parse_rsc_measurement
from collector.gatt.values import GattValue

Parser = Callable[[bytes | bytearray | memoryview], GattValue]
"""A total function from a characteristic value to a decoded value (or ``GattParseError``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class CharacteristicParser:
    """A characteristic flarewatch can decode: its UUID, a readable name and the parser."""

    uuid: str
    name: str
    parse: Parser


def _table(*entries: CharacteristicParser) -> Mapping[str, CharacteristicParser]:
    return MappingProxyType({entry.uuid: entry for entry in entries})


STANDARD_CHARACTERISTICS: Mapping[str, CharacteristicParser] = _table(
    CharacteristicParser(
        uuids.HEART_RATE_MEASUREMENT, "heart_rate_measurement", parse_heart_rate_measurement
    ),
    CharacteristicParser(
        uuids.BODY_SENSOR_LOCATION, "body_sensor_location", parse_body_sensor_location
    ),
    CharacteristicParser(
        uuids.TEMPERATURE_MEASUREMENT, "temperature_measurement", parse_temperature_measurement
    ),
    CharacteristicParser(
        uuids.INTERMEDIATE_TEMPERATURE,
        "intermediate_temperature",
        functools.partial(parse_temperature_measurement, uuid=uuids.INTERMEDIATE_TEMPERATURE),
    ),
    CharacteristicParser(
        uuids.ENVIRONMENTAL_TEMPERATURE, "temperature", parse_environmental_temperature
    ),
    CharacteristicParser(uuids.RSC_MEASUREMENT, "rsc_measurement", parse_rsc_measurement),
    CharacteristicParser(uuids.RSC_FEATURE, "rsc_feature", parse_rsc_feature),
    CharacteristicParser(uuids.BATTERY_LEVEL, "battery_level", parse_battery_level),
    CharacteristicParser(uuids.SYSTEM_ID, "system_id", parse_system_id),
    CharacteristicParser(uuids.PNP_ID, "pnp_id", parse_pnp_id),
    *(
        CharacteristicParser(uuid, field, string_parser(uuid))
        for uuid, field in STRING_FIELDS.items()
    ),
)
"""Every Bluetooth SIG characteristic decoded here, by canonical 128-bit UUID."""


def find_parser(uuid: str | int | uuid_module.UUID) -> CharacteristicParser:
    """The parser of ``uuid`` in any form; ``GattParseError`` (``unsupported_uuid``) if none."""
    canonical = uuids.normalize_uuid(uuid)
    entry = STANDARD_CHARACTERISTICS.get(canonical)
    if entry is None:
        raise GattParseError(
            canonical,
            "no parser for this characteristic (see docs/gatt.md)",
            reason="unsupported_uuid",
        )
    return entry


def decode(
    uuid: str | int | uuid_module.UUID,
    data: bytes | bytearray | memoryview,
    *,
    device_id: str | None = None,
) -> GattValue:
    """Decode one value of a supported characteristic; errors carry ``uuid`` and ``device_id``."""
    try:
        return find_parser(uuid).parse(data)
    except GattParseError as exc:
        raise exc.for_device(device_id) from None
