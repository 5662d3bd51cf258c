"""Device Information Service 0x180A: names, revisions, System ID and PnP ID (read once).

*Device Information Service* 1.1 §3: the strings are UTF-8 without a terminator; many devices
pad them with NUL bytes anyway, which are stripped. System ID (§3.8) is a 40-bit manufacturer
identifier followed by a 24-bit OUI; PnP ID (§3.9) is a vendor-id source octet and three uint16.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from collector.gatt import uuids
from collector.gatt.reader import PayloadReader
from collector.gatt.values import GattValue, JsonValue

STRING_FIELDS: dict[str, str] = {
    uuids.MANUFACTURER_NAME_STRING: "manufacturer_name",
    uuids.MODEL_NUMBER_STRING: "model_number",
    uuids.SERIAL_NUMBER_STRING: "serial_number",
    uuids.HARDWARE_REVISION_STRING: "hardware_revision",
    uuids.FIRMWARE_REVISION_STRING: "firmware_revision",
    uuids.SOFTWARE_REVISION_STRING: "software_revision",
}
"""Characteristic UUID -> field name of the string characteristics."""

_VENDOR_ID_SOURCES = {1: "bluetooth_sig", 2: "usb_if"}  # DIS §3.9.1.1; others reserved


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceInformationString(GattValue):
    """One text characteristic; the JSON form is ``{field: text}``, e.g. ``model_number``."""

    field: str
    text: str

    def to_json_dict(self) -> dict[str, JsonValue]:
        """``{"model_number": "H10"}`` rather than a generic name/value pair."""
        return {self.field: self.text}


@dataclasses.dataclass(frozen=True, slots=True)
class SystemId(GattValue):
    """The 0x2A23 value: manufacturer-defined identifier and IEEE OUI."""

    manufacturer_identifier: int
    organizationally_unique_identifier: int


@dataclasses.dataclass(frozen=True, slots=True)
class PnpId(GattValue):
    """The 0x2A50 value: who assigned the vendor id, vendor, product and version."""

    vendor_id_source: str
    vendor_id: int
    product_id: int
    product_version: int


def string_parser(uuid: str) -> Callable[[bytes | bytearray | memoryview], GattValue]:
    """The parser of the string characteristic ``uuid`` (one of ``STRING_FIELDS``)."""
    field = STRING_FIELDS[uuid]

    def parse(data: bytes | bytearray | memoryview) -> GattValue:
        reader = PayloadReader(uuid, data)
        raw = reader.rest().rstrip(b"\x00")
        try:
            return DeviceInformationString(field, raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise reader.error("bad_text", f"{field} is not valid UTF-8") from None

    parse.__doc__ = f"Decode the {field} string characteristic."
    return parse


def parse_system_id(data: bytes | bytearray | memoryview) -> SystemId:
    """Decode a System ID value (8 bytes)."""
    reader = PayloadReader(uuids.SYSTEM_ID, data)
    manufacturer = reader.uint(5, "manufacturer identifier")
    oui = reader.uint(3, "organizationally unique identifier")
    reader.finish()
    return SystemId(manufacturer, oui)


def parse_pnp_id(data: bytes | bytearray | memoryview) -> PnpId:
    """Decode a PnP ID value (7 bytes); a reserved vendor-id source raises ``GattParseError``."""
    reader = PayloadReader(uuids.PNP_ID, data)
    source_code = reader.uint(1, "vendor id source")
    vendor, product, version = (reader.uint(2, "PnP id") for _ in range(3))
    reader.finish()
    source = _VENDOR_ID_SOURCES.get(source_code)
    if source is None:
        raise reader.error("reserved_value", f"vendor id source {source_code} is reserved")
    return PnpId(source, vendor, product, version)
