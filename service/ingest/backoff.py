"""When to retry a failed store write, and when to tell the operator about it."""

from __future__ import annotations

import logging

from service.const import STORE_RETRY_FIRST_S, STORE_RETRY_MAX_S
from service.errors import StoreError

log = logging.getLogger(__name__)


def store_retry_delay_s(error: StoreError, attempt: int) -> float | None:
    """Seconds to wait before retry ``attempt`` (1 = first retry), or ``None`` to give up.

    Outages, overload and wrong credentials are retried for ever with a capped exponential backoff:
    the messages stay unacknowledged in the broker, so nothing is lost while an operator fixes the
    server. Only a request the store refuses as malformed (``retryable`` false) is given up, since
    sending it again cannot succeed and would stall every patient behind it.
    """
    if not error.retryable:
        return None
    return float(min(STORE_RETRY_MAX_S, STORE_RETRY_FIRST_S * 2 ** max(0, attempt - 1)))


def warn_outage(error: StoreError, logged: str, what: str) -> str:
    """Warn about a store outage unless ``logged`` is its cause already; returns the cause.

    An outage is logged when it starts and again only if its cause changes, not at every retry:
    a night-long database outage leaves a line, not thousands.
    """
    if str(error) != logged:
        log.warning("%s: %s", what, error)
    return str(error)
