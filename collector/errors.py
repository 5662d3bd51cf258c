"""Errors the collector raises on purpose (all under :class:`flarewatch.errors.FlarewatchError`).

::

    CollectorError
    ├── OutboxError              the local outbox (SQLite) cannot be opened or written
    ├── PublisherError           the MQTT publisher is misconfigured or was used wrongly
    ├── SimulationError          a simulator parameter or episode script is invalid
    ├── GattParseError           a BLE payload is malformed or truncated
    ├── DeviceConnectionError    a wearable could not be reached / the link failed
    │   └── PairingError         a wearable refused to pair, or pairing could not complete
    ├── BondStoreError           the gateway's file of bonds cannot be read or written
    └── BluetoothAdapterError    the Bluetooth adapter (BlueZ or a Bumble transport) is unusable

Third-party errors (``sqlite3``, ``paho``, ``ssl``) are translated at the boundary with
``raise ... from exc``; messages say what to do and never contain vital values.
"""

from __future__ import annotations

from pathlib import Path

from flarewatch.errors import FlarewatchError


class CollectorError(FlarewatchError):
    """Base of every error raised by the collector (gateway) package."""


class OutboxError(CollectorError):
    """The outbox database cannot be opened, read or written."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message if path is None else f"{message} (outbox {path})")
        self.path = path


class PublisherError(CollectorError):
    """The MQTT publisher cannot be built from the settings or was used in the wrong state."""


class SimulationError(CollectorError):
    """A simulator parameter or scripted episode is invalid; the message says which."""


class GattParseError(CollectorError):
    """A GATT characteristic value is malformed or truncated (counted, never fatal).

    ``uuid`` is the characteristic's canonical 128-bit UUID (or the text given when it is not a
    UUID), ``device_id`` the configured device when known, ``reason`` a short machine-readable tag
    for counters (``truncated``, ``trailing_bytes``, ``reserved_value``, ``out_of_range``,
    ``bad_text``, ``unsupported_uuid``, ``bad_uuid``, ``malformed``, ``profile_error``: a
    profile's own code raised something else). ``detail`` is for humans and
    never repeats the payload, which may carry health data.
    """

    def __init__(
        self,
        uuid: str,
        detail: str,
        *,
        reason: str = "malformed",
        device_id: str | None = None,
    ) -> None:
        where = f" from {device_id}" if device_id else ""
        super().__init__(f"cannot parse characteristic {uuid}{where}: {reason}: {detail}")
        self.uuid = uuid
        self.detail = detail
        self.reason = reason
        self.device_id = device_id

    def for_device(self, device_id: str | None) -> GattParseError:
        """The same error attributed to ``device_id`` (parsers do not know the device)."""
        return GattParseError(self.uuid, self.detail, reason=self.reason, device_id=device_id)

    @property
    def counter_key(self) -> tuple[str | None, str, str]:
        """``(device_id, uuid, reason)``: the key under which the gateway counts this error."""
        return (self.device_id, self.uuid, self.reason)


class DeviceConnectionError(CollectorError):
    """A wearable could not be connected to, or its link failed."""

    def __init__(self, device_id: str, detail: str) -> None:
        super().__init__(f"device {device_id}: {detail}")
        self.device_id = device_id
        self.detail = detail


class PairingError(DeviceConnectionError):
    """A wearable that needs an encrypted link could not be paired (refused, timed out, passkey).

    Raised by the Bumble backend where BlueZ fails a connect or a GATT call the same way; a
    gateway reports it as the ``pairing`` failure of the device and keeps trying, slowly.
    """


class BondStoreError(CollectorError):
    """The file the gateway keeps its bonds in is broken or cannot be written."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"bonds file {path}: {detail}")
        self.path = path


class BluetoothAdapterError(CollectorError):
    """The gateway cannot scan at all: no adapter, no BlueZ daemon, or an unreachable transport."""

    def __init__(self, backend: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot scan for wearables with the {backend} Bluetooth backend "
            f"({type(cause).__name__}: {cause}); check that the adapter is plugged in and powered "
            "(BlueZ: bluetoothd runs and this user may use the system D-Bus; Bumble: "
            "collector.ble_backend names a transport that exists and is reachable)"
        )
        self.backend = backend


def loggable(exc: BaseException) -> str:
    """What may be logged about an unexpected exception: no payload contents, no vital values.

    Our own errors' messages never carry them; any other exception (a pydantic ``ValidationError``
    repeats its input) is described by its type alone.
    """
    return str(exc) if isinstance(exc, FlarewatchError) else type(exc).__name__
