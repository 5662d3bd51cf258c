"""Errors the service raises on purpose (see the tree in :mod:`flarewatch.errors`).

::

    FlarewatchError
    ├── ConfigError
    │   └── ChannelKeyError channel credentials cannot be encrypted/decrypted with the key given
    └── ServiceError
        └── StoreError      the sample store refused a request or could not be reached
"""

from __future__ import annotations

from flarewatch.errors import ConfigError, FlarewatchError


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


class ChannelKeyError(ConfigError):
    """Channel URLs in the service database cannot be sealed or opened with the configured key.

    A configuration problem (no key, or not the key the rows were stored with): the service
    refuses to start rather than discover it at the first alert. The message says what to set.
    """
