"""Tells a broker that keeps closing the session soon after accepting it, and backs off from it.

The usual cause is a second gateway (or any client) connecting under the same client id, i.e. the
same ``gateway_id``: the broker hands the session to the newcomer and closes the other, which
reconnects and takes it back. A broker that drops the client for what it sends (packet too large,
a protocol error) looks the same. Either way reconnecting at once cannot help: a short session
does not reset the backoff, and after a few in a row the gateway says why, once per streak.
"""

from __future__ import annotations

import logging

from collector.const import SHORT_SESSION_S, SHORT_SESSIONS_WARN_AFTER

log = logging.getLogger(__name__)


class SessionWatch:
    """Counts MQTT sessions that ended within ``short_s`` of being accepted, in a row."""

    def __init__(
        self,
        client_id: str,
        *,
        short_s: float = SHORT_SESSION_S,
        warn_after: int = SHORT_SESSIONS_WARN_AFTER,
    ) -> None:
        self.client_id = client_id
        self.short_s = short_s
        self.warn_after = warn_after
        self.short_in_row = 0
        self._opened_s: float | None = None

    def opened(self, now_s: float) -> None:
        """The broker accepted a session (CONNACK)."""
        self._opened_s = now_s

    def settled(self, now_s: float) -> bool:
        """True once the open session has lasted ``short_s``: the backoff may start afresh."""
        if self._opened_s is None or now_s - self._opened_s < self.short_s:
            return False
        self.short_in_row = 0
        return True

    def closed(self, now_s: float, *, explained: bool = False) -> None:
        """The connection ended (or failed); a short accepted session counts towards the warning.

        ``explained``: the broker said why it closed it (Mosquitto 2.0 closes the connection
        after refusing a publish), so it is not counted.
        """
        opened_s, self._opened_s = self._opened_s, None
        if explained:
            self.short_in_row = 0
            return
        if opened_s is None or now_s - opened_s >= self.short_s:
            return
        self.short_in_row += 1
        if self.short_in_row == self.warn_after:
            log.warning(
                "the broker closed this gateway's session %d times in a row within %.0f s of "
                "accepting it: another gateway or client is probably connecting as %r (every "
                "gateway needs its own gateway_id), or the broker drops what this gateway sends "
                "(see the broker's log); reconnecting with a growing delay, samples wait in the "
                "outbox",
                self.short_in_row,
                self.short_s,
                self.client_id,
            )
