"""A bounds-checked cursor over a GATT value: the only way parsers touch bytes.

Every read checks the length first, so a truncated payload becomes a ``GattParseError`` and never
an ``IndexError``/``struct.error``; ``finish()`` rejects trailing bytes. Vendor plug-ins use it
too, which makes their parsers total for free. GATT values are little-endian (Core spec Vol 3
Part G §3.3.3.1 and the GATT Specification Supplement §2.2).
"""

from __future__ import annotations

from collector.errors import GattParseError


class PayloadReader:
    """Read little-endian fields of one characteristic value, raising ``GattParseError``."""

    def __init__(self, uuid: str, data: bytes | bytearray | memoryview) -> None:
        self.uuid = uuid
        self.data = bytes(data)
        self.offset = 0

    @property
    def remaining(self) -> int:
        """Bytes not yet consumed."""
        return len(self.data) - self.offset

    def error(self, reason: str, detail: str) -> GattParseError:
        """A ``GattParseError`` for this characteristic (for parsers' own checks)."""
        return GattParseError(self.uuid, detail, reason=reason)

    def take(self, size: int, what: str) -> bytes:
        """The next ``size`` bytes; ``what`` names the field in the error."""
        if self.remaining < size:
            raise self.error(
                "truncated",
                f"{what} needs {size} byte(s) at offset {self.offset}, {self.remaining} left",
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int, what: str) -> int:
        """An unsigned little-endian integer of ``size`` bytes."""
        return int.from_bytes(self.take(size, what), "little", signed=False)

    def sint(self, size: int, what: str) -> int:
        """A two's-complement little-endian integer of ``size`` bytes."""
        return int.from_bytes(self.take(size, what), "little", signed=True)

    def rest(self) -> bytes:
        """Everything not yet consumed (for variable-length trailing fields)."""
        return self.take(self.remaining, "rest")

    def finish(self) -> None:
        """Reject bytes left over after the last field: a sign of a wrong format or corruption."""
        if self.remaining:
            raise self.error(
                "trailing_bytes", f"{self.remaining} unexpected byte(s) after the last field"
            )
