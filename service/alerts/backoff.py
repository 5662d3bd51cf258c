"""Retry decisions for failed deliveries: pure functions, tested by a table."""

from __future__ import annotations

from enum import StrEnum

from models.alarm import Severity
from service.alerts.const import (
    CRITICAL_MAX_ATTEMPTS,
    DELIVERY_BACKOFF_BASE_S,
    DELIVERY_BACKOFF_MAX_S,
    WARNING_MAX_ATTEMPTS,
)


class FailureKind(StrEnum):
    """Why a delivery failed, as far as the notifier can tell."""

    TRANSIENT = "transient"
    """Refused connection, timeout, HTTP 5xx/429: trying again may work."""
    PERMANENT = "permanent"
    """The URL is not understood or the service refused the credentials: retrying cannot help."""


def retry_delay_s(attempts_made: int, failure: FailureKind, severity: Severity) -> float | None:
    """Seconds to wait before the next attempt on the same channel, or ``None`` to fall through.

    Exponential (base 1 s, doubling, capped at 30 s); critical messages get fewer attempts per
    channel than warnings because reaching *someone* fast matters more than this channel.
    """
    if failure is FailureKind.PERMANENT or attempts_made < 1:
        return None
    limit = CRITICAL_MAX_ATTEMPTS if severity is Severity.CRITICAL else WARNING_MAX_ATTEMPTS
    if attempts_made >= limit:
        return None
    factor = 1.0 if severity is Severity.CRITICAL else 2.0
    return float(
        min(DELIVERY_BACKOFF_MAX_S, factor * DELIVERY_BACKOFF_BASE_S * 2 ** (attempts_made - 1))
    )
