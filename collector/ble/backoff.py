"""How long to wait before reconnecting a wearable: a pure function of the failure and its streak.

Errors are classified by type (never by message text) into a few kinds that deserve different
patience: an adapter out of connection slots needs seconds to free one, a stalled stream on a
healthy link can be retried at once, an unknown failure backs off exponentially.
"""

from __future__ import annotations

import asyncio
import enum

from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak_retry_connector import (
    BleakAbortedError,
    BleakConnectionError,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
)

from collector.ble.const import (
    BACKOFF_BASE_S,
    BACKOFF_LINK_LOST_S,
    BACKOFF_MAX_S,
    BACKOFF_NOT_FOUND_S,
    BACKOFF_OUT_OF_SLOTS_S,
    BACKOFF_PAIRING_S,
    BACKOFF_WATCHDOG_S,
)
from collector.errors import PairingError
from flarewatch.payloads import OFFLINE_PAIRING


class FailureKind(enum.StrEnum):
    """Why a device left the streaming state."""

    NOT_FOUND = "not_found"  # not advertising / connect request unanswered
    OUT_OF_SLOTS = "out_of_slots"  # the adapter holds as many links as it can
    ABORTED = "aborted"  # the device or controller rejected or aborted the connection
    LINK_LOST = "link_lost"  # the link dropped while streaming (out of range, crash)
    WATCHDOG = "watchdog"  # the link was up but notifications stopped
    GATT = "gatt"  # a GATT operation failed on a connected device
    NO_MEASUREMENTS = "no_measurements"  # connected, but nothing the profiles can use
    PAIRING = OFFLINE_PAIRING  # the band needs an encrypted link; pairing failed (or a passkey)
    OTHER = "other"


_SECURITY_CODES = frozenset(
    (
        BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
    )
)
"""What a band answers while the link lacks the security it needs (BlueZ passes these on when
its own pairing attempt failed)."""


class StallDetected(Exception):
    """Raised inside the state machine when the watchdog fires."""


class LinkLost(Exception):
    """Raised inside the state machine when the link dropped while streaming."""


def classify_failure(exc: BaseException) -> FailureKind:
    """Map an exception from bleak, bleak-retry-connector or the manager to a failure kind."""
    match exc:
        case StallDetected():
            return FailureKind.WATCHDOG
        case LinkLost():
            return FailureKind.LINK_LOST
        case PairingError():
            return FailureKind.PAIRING
        case BleakGATTProtocolError() if exc.code in _SECURITY_CODES:
            return FailureKind.PAIRING
        case BleakOutOfConnectionSlotsError():
            return FailureKind.OUT_OF_SLOTS
        case BleakNotFoundError() | BleakDeviceNotFoundError() | TimeoutError():
            return FailureKind.NOT_FOUND
        case BleakAbortedError() | BleakConnectionError():
            return FailureKind.ABORTED
        case BleakError() | asyncio.IncompleteReadError() | EOFError():
            return FailureKind.GATT
        case LookupError():
            return FailureKind.NO_MEASUREMENTS
    return FailureKind.OTHER


_FIRST_WAIT_S: dict[FailureKind, float] = {
    FailureKind.NOT_FOUND: BACKOFF_NOT_FOUND_S,
    FailureKind.OUT_OF_SLOTS: BACKOFF_OUT_OF_SLOTS_S,
    FailureKind.ABORTED: BACKOFF_BASE_S,
    FailureKind.LINK_LOST: BACKOFF_LINK_LOST_S,
    FailureKind.WATCHDOG: BACKOFF_WATCHDOG_S,
    FailureKind.GATT: BACKOFF_BASE_S,
    FailureKind.NO_MEASUREMENTS: BACKOFF_MAX_S,
    FailureKind.PAIRING: BACKOFF_PAIRING_S,
    FailureKind.OTHER: BACKOFF_BASE_S,
}


def backoff_s(kind: FailureKind, consecutive_failures: int) -> float:
    """Seconds to wait before the next attempt after ``consecutive_failures`` (>= 1) in a row.

    The first wait depends on the kind; every further failure doubles it, up to
    ``BACKOFF_MAX_S``. A device that streamed in between starts again from one.
    """
    streak = max(1, consecutive_failures)
    return min(BACKOFF_MAX_S, _FIRST_WAIT_S[kind] * float(2 ** min(streak - 1, 16)))
