"""Errors raised by the collector; all subclass :class:`flarewatch.errors.FlarewatchError`.

::

    FlarewatchError
    └── CollectorError
        └── GattParseError       a BLE payload is malformed, truncated or has trailing bytes
"""

from __future__ import annotations

from flarewatch.errors import FlarewatchError


class CollectorError(FlarewatchError):
    """Root of the collector's errors, so the gateway can catch its own failures only."""


class GattParseError(CollectorError):
    """A GATT value could not be decoded; counted and logged per device, never fatal.

    ``uuid`` is the characteristic's canonical 128-bit UUID (or the text given when it is not a
    UUID), ``device_id`` the configured device when known, ``reason`` a short machine-readable tag
    for counters (``truncated``, ``trailing_bytes``, ``reserved_value``, ``out_of_range``,
    ``bad_text``, ``unsupported_uuid``, ``bad_uuid``). ``detail`` is for humans and never repeats
    the payload, which may carry health data.
    """

    def __init__(
        self, uuid: str, reason: str, detail: str, *, device_id: str | None = None
    ) -> None:
        where = f" from device {device_id}" if device_id else ""
        super().__init__(f"cannot decode characteristic {uuid}{where}: {reason}: {detail}")
        self.uuid = uuid
        self.reason = reason
        self.detail = detail
        self.device_id = device_id

    def for_device(self, device_id: str | None) -> GattParseError:
        """The same error attributed to ``device_id`` (parsers do not know the device)."""
        return GattParseError(self.uuid, self.reason, self.detail, device_id=device_id)

    @property
    def counter_key(self) -> tuple[str | None, str, str]:
        """``(device_id, uuid, reason)``: the key under which the gateway counts this error."""
        return (self.device_id, self.uuid, self.reason)
