"""The heartbeat: the service tells an outside monitor it is doing its job, every minute.

Whatever runs on the service's own machine stops with it: a crashed container, a power cut, a
router down at home. Nothing then alerts anyone, and nothing says so. The usual answer for a
service behind a home router (which no monitor can poll) is a heartbeat it sends out: the
service calls ``service.heartbeat_url`` every ``heartbeat_interval_s`` while every check of its
:class:`~service.health.HealthBoard` passes, and the monitor (healthchecks.io, Uptime Kuma's
push monitor, Better Stack) alerts its own contacts when the calls stop. While a check fails it
calls ``heartbeat_fail_url`` instead (healthchecks.io: the same URL with ``/fail``), or nothing.

Each call is a POST whose body is the one-line summary (``ok``, or the failing parts and why):
no patient, reading or secret. The URLs carry the monitor's token: they are never logged, only
their host. A monitor that cannot be reached is logged once until it is reached again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

import httpx

from flarewatch.settings import ServiceSettings
from service.health import Health, HealthBoard

log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_S: Final = 10.0
"""A monitor that takes longer is counted unreachable for that beat (the next one tries again)."""
START_GRACE_S: Final = 30.0
"""At start the brokers connect and the store is prepared in the background: the first beat
waits until every check passes, or this long, so that a start is not reported as an outage."""
_START_POLL_S: Final = 0.25


class Heartbeat:
    """Calls the monitor every ``interval_s`` in a thread of its own, from :meth:`start`."""

    def __init__(
        self, board: HealthBoard, ok_url: str, fail_url: str | None, interval_s: float
    ) -> None:
        self.board = board
        self._ok_url = ok_url
        self._fail_url = fail_url
        self.interval_s = interval_s
        self._client = httpx.Client(timeout=HEARTBEAT_TIMEOUT_S, follow_redirects=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_ok = True
        self._reached = True

    @classmethod
    def from_settings(cls, service: ServiceSettings, board: HealthBoard) -> Heartbeat | None:
        """The heartbeat ``service`` asks for, None without a ``heartbeat_url``."""
        if service.heartbeat_url is None or not service.heartbeat_url.get_secret_value():
            return None
        fail = service.heartbeat_fail_url.get_secret_value() if service.heartbeat_fail_url else ""
        return cls(
            board,
            service.heartbeat_url.get_secret_value(),
            fail or None,
            service.heartbeat_interval_s,
        )

    def start(self) -> None:
        """Beat every ``interval_s`` in a thread until :meth:`stop`.

        The first beat comes once every check passes (:data:`START_GRACE_S` at most).
        """
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="flarewatch-heartbeat", daemon=True)
        self._thread.start()
        log.info(
            "heartbeat to %s every %.0f s while healthy",
            httpx.URL(self._ok_url).host,
            self.interval_s,
        )

    def stop(self) -> None:
        """Stop beating (the monitor then reports the service down, as it should)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._client.close()

    def beat(self) -> Health:
        """Check the service and call the monitor once; returns what was found."""
        health = self.board.check()
        if health.ok != self._was_ok:
            if health.ok:
                log.info("service healthy again")
            else:
                log.warning("service degraded: %s", health.summary().removeprefix("degraded - "))
            self._was_ok = health.ok
        url = self._ok_url if health.ok else self._fail_url
        if url is not None:
            self._call(url, health.summary())
        return health

    def _call(self, url: str, summary: str) -> None:
        host = httpx.URL(url).host
        try:
            answer = self._client.post(url, content=summary.encode())
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            if self._reached:
                reason = (
                    f"HTTP {exc.response.status_code}"
                    if isinstance(exc, httpx.HTTPStatusError)
                    else type(exc).__name__
                )
                log.warning(
                    "heartbeat monitor %s not reached (%s): it will report this service down; "
                    "trying again every %.0f s",
                    host,
                    reason,
                    self.interval_s,
                )
            self._reached = False
            return
        if not self._reached:
            log.info("heartbeat monitor %s reached again", host)
        self._reached = True

    def _run(self) -> None:
        deadline = time.monotonic() + START_GRACE_S
        while time.monotonic() < deadline and not self.board.check().ok:
            if self._stop.wait(_START_POLL_S):
                return
        while True:
            try:
                self.beat()
            except Exception:  # the heartbeat must outlive a bug in one beat
                log.exception("heartbeat failed")
            if self._stop.wait(self.interval_s):
                return
