"""What the service's MQTT connections say about their state: one warning per outage, one line back.

paho retries a refused or lost connection by itself and, left alone, tells nobody why: ``flarewatch
serve`` would only show ``connected=False`` every 10 s. :class:`BrokerLinkLog` turns paho's
callbacks into one warning when an outage starts (the broker's address, which never holds
credentials, and the reason: connection refused, unknown host, TLS failure, login refused), silence
while it lasts, and an info line when the connection is back.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import time
from collections.abc import Callable

from flarewatch.mqtt import BrokerAddress


def connect_error_reason(exc: BaseException | None) -> str:
    """A short, secret-free reason for a failed connection attempt (paho passes only the error)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running and listening there?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the broker's TLS certificate is not trusted ({exc.verify_message}: check ca_file)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "timed out (is the address right and the broker reachable from here?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ if exc is not None else "unknown reason"


class BrokerLinkLog:
    """Logs one connection's outages (once each) and recoveries; fed from paho's callbacks.

    Call :meth:`connect_failed` from ``on_connect_fail``, :meth:`refused` or :meth:`connected`
    from ``on_connect``, :meth:`lost` from ``on_disconnect`` and :meth:`closing` before a wanted
    disconnect. All of them run on paho's network thread.
    """

    def __init__(
        self,
        name: str,
        address: BrokerAddress,
        client_id: str,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.address = address
        self.client_id = client_id
        self._log = logger
        self._clock = clock
        self._down_since: float | None = None
        self._closing = False

    @property
    def down(self) -> bool:
        """Whether an outage is under way (logged, not yet over)."""
        return self._down_since is not None

    def connect_failed(self) -> None:
        """For ``on_connect_fail``, which paho calls inside its ``except OSError`` (the reason)."""
        self._outage(logging.WARNING, connect_error_reason(sys.exception()))

    def refused(self, reason: object) -> None:
        """The broker answered but refused the login (CONNACK failure)."""
        self._outage(
            logging.ERROR,
            f"the broker refused the connection: {reason} (check the credentials and the ACL)",
        )

    def lost(self, reason: object) -> None:
        """The connection dropped (not asked for): paho reconnects by itself."""
        self._outage(logging.WARNING, f"connection lost ({reason})")

    def connected(self, session_present: bool) -> None:
        """The broker accepted the connection: say so, and how long the outage lasted if any."""
        if self._down_since is None:
            self._log.info(
                "%s: connected to MQTT broker %s as %s (session present: %s)",
                self.name,
                self.address,
                self.client_id,
                session_present,
            )
            return
        self._log.info(
            "%s: connected again to MQTT broker %s after %.0f s (session present: %s)",
            self.name,
            self.address,
            self._clock() - self._down_since,
            session_present,
        )
        self._down_since = None

    def closing(self) -> None:
        """A disconnect asked for: nothing more is reported."""
        self._closing = True

    def _outage(self, level: int, reason: str) -> None:
        if self._closing or self._down_since is not None:
            return
        self._down_since = self._clock()
        self._log.log(
            level,
            "%s: cannot use MQTT broker %s: %s; retrying, logged once until it is back",
            self.name,
            self.address,
            reason,
        )
