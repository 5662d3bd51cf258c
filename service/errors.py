"""Errors the service raises on purpose (see the tree in :mod:`flarewatch.errors`).

::

    FlarewatchError
    └── ServiceError
        └── StoreError      the sample store refused a request or could not be reached
"""

from __future__ import annotations

from flarewatch.errors import FlarewatchError


class ServiceError(FlarewatchError):
    """Base class of the service's own errors."""


class StoreError(ServiceError):
    """The sample store refused a request or could not be reached.

    ``retryable`` tells the ingest whether waiting and trying again can help (server down, timeout,
    overload) or whether the request itself is wrong (malformed write, bad query). ``status`` is the
    HTTP status when there was one. The message says what to check.
    """

    def __init__(
        self, message: str, *, store: str, retryable: bool, status: int | None = None
    ) -> None:
        super().__init__(f"{store} store: {message}")
        self.store = store
        self.retryable = retryable
        self.status = status
