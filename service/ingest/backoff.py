"""When to retry a failed store write: a pure function of the error and the attempt number."""

from __future__ import annotations

from service.const import STORE_RETRY_FIRST_S, STORE_RETRY_MAX_S
from service.errors import StoreError


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
