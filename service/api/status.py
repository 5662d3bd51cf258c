"""One HTTP status per alerting refusal, for the JSON API and the link pages alike."""

from __future__ import annotations

from typing import Final

from service.alerts.errors import (
    AlertingError,
    AlertNotFoundError,
    CancelNotAllowedError,
    NothingToLabelError,
    TokenError,
)

STATUS: Final[dict[type[AlertingError], int]] = {
    TokenError: 403,
    AlertNotFoundError: 404,
    CancelNotAllowedError: 409,
    NothingToLabelError: 409,
}
"""A refused token is forbidden, a vanished alert not found, an action too late a conflict."""


def status_of(exc: AlertingError) -> int:
    """The status of a refusal (409 for any other alerting error: the state did not allow it)."""
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 409)
