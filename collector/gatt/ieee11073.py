"""IEEE 11073-20601 32-bit FLOAT, the number format of the Health Thermometer characteristics.

A FLOAT is ``mantissa * 10**exponent`` with a signed 8-bit exponent in the high byte and a signed
24-bit mantissa in the low three bytes, sent little-endian (IEEE 11073-20601 §F.8; Bluetooth
*Personal Health Devices Transcoding* white paper §2.2). Five values with exponent 0 are special.
Decimal arithmetic keeps ``366e-1`` exactly 36.6 instead of 36.600000000000001.
"""

from __future__ import annotations

import enum
from decimal import Decimal

from collector.gatt.reader import PayloadReader

FLOAT_SIZE = 4


class FloatSpecial(enum.StrEnum):
    """The special FLOAT values that carry no number."""

    NAN = "nan"
    NRES = "nres"  # "not at this resolution": the value cannot be represented
    POSITIVE_INFINITY = "+inf"
    NEGATIVE_INFINITY = "-inf"


_SPECIALS = {
    0x007FFFFF: FloatSpecial.NAN,
    0x00800000: FloatSpecial.NRES,
    0x007FFFFE: FloatSpecial.POSITIVE_INFINITY,
    0x00800002: FloatSpecial.NEGATIVE_INFINITY,
}
_RESERVED = 0x00800001  # "reserved for future use": no sender may transmit it


def read_float(reader: PayloadReader, what: str) -> Decimal | FloatSpecial:
    """Read one FLOAT: an exact ``Decimal`` or a special value; the reserved value is an error."""
    raw = reader.uint(FLOAT_SIZE, what)
    special = _SPECIALS.get(raw)
    if special is not None:
        return special
    if raw == _RESERVED:
        raise reader.error("reserved_value", f"{what} is the reserved FLOAT value 0x00800001")
    exponent = raw >> 24
    if exponent >= 0x80:
        exponent -= 0x100
    mantissa = raw & 0xFFFFFF
    if mantissa >= 0x800000:
        mantissa -= 0x1000000
    return Decimal(mantissa).scaleb(exponent)


def encode_float(mantissa: int, exponent: int) -> bytes:
    """The 4 bytes of ``mantissa * 10**exponent`` (for tests, simulators and vendor examples)."""
    if not (-0x800000 <= mantissa <= 0x7FFFFF and -0x80 <= exponent <= 0x7F):
        raise ValueError("mantissa must fit 24 bits and exponent 8 bits (signed)")
    return ((exponent & 0xFF) << 24 | (mantissa & 0xFFFFFF)).to_bytes(FLOAT_SIZE, "little")
