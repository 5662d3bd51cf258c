"""Logging a background loop's failures on the service database: once per outage, not per pass.

A loop that retries every half second (the escalation scheduler) would otherwise log every failed
pass with its stack: 49 tracebacks, some 5,700 lines, in a 25-second PostgreSQL restart, which
hide the one line that matters and fill disks. Worse, SQLAlchemy's text of an error quotes the
SQL statement and its parameters (names, vitals): those must never reach a log.

So :class:`OutageLog` tells the story in three lines: a warning when the database first refuses
(the error's class and the driver's own first line, never SQLAlchemy's text nor a stack: that
goes to DEBUG, frames only), a reminder every ``OUTAGE_REMINDER_S`` while it lasts, and one line
when the work succeeds again. An error that is not a database outage is a bug: it is logged as an
error with where it happened (frames, not its text), at most once per exception class every
``BUG_REPEAT_S``, with the count of those left out.

One row that fails at every try is not a reason to stop the others: :class:`SetAside` holds such
rows back, told once each, while the loop goes on with the rest.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import InterfaceError, OperationalError

from service.db.session import driver_reason, redact_database_url

TRANSIENT_DB_ERRORS: Final = (OperationalError, InterfaceError)
"""A database restarting or unreachable, a connection lost, a lock held too long: the same work
succeeds later. The scheduler retries its pass; the episode hook keeps what the engine refused
for these and tries it again every cycle (``service.episodes.processor``)."""

OUTAGE_REMINDER_S: Final = 300.0
"""While an outage lasts, one reminder (how long, how many failures) every 5 min: enough to see
in a log that it is still going on, few enough that a night-long outage is a few hundred lines."""

BUG_REPEAT_S: Final = 600.0
"""An unexpected error that recurs at every pass is logged with its stack once per exception class
every 10 min: the stack of the first says where; the next ones only that it goes on."""


def error_reason(url: str, exc: BaseException) -> str:
    """``exc`` fit for a log: its class, and the driver's first line for an outage.

    Never SQLAlchemy's text (the SQL and its parameters). The driver's first line of an outage
    says why (connection refused, unable to open the file, the server ended the session); that of
    another error may quote a value (``invalid input syntax for type integer: "..."``): the class
    alone for those.
    """
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        return f"{type(exc).__name__}: {driver_reason(url, exc)}"
    return type(exc).__name__


def where(exc: BaseException) -> str:
    """The frames of ``exc``'s stack without its message (which may quote data)."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


@dataclass(slots=True)
class _Outage:
    since_s: float
    reminded_s: float
    failures: int = 1


@dataclass(slots=True)
class _Bug:
    logged_s: float
    left_out: int = 0


class OutageLog:
    """The log of one background loop's work on the service database (see the module).

    ``what`` names the work in the lines ("escalation passes"); ``url`` is the database's (shown
    redacted). ``clock`` is monotonic seconds, injected for tests. Thread-safe: sends settling on
    worker threads report to the same log as the loop.
    """

    def __init__(
        self,
        what: str,
        url: str,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.url = url
        self.log = logger
        self.clock = clock
        self._lock = threading.Lock()
        self._outage: _Outage | None = None
        self._bugs: dict[str, _Bug] = {}

    def failed(self, exc: Exception) -> None:
        """Note one failure: an outage's first is logged, a bug once per class and interval."""
        if isinstance(exc, TRANSIENT_DB_ERRORS):
            self._transient(exc)
        else:
            self._bug(exc)

    def succeeded(self) -> None:
        """Note the work went through: the end of an outage is logged with how long it lasted."""
        with self._lock:
            outage, self._outage = self._outage, None
        if outage is not None:
            self.log.info(
                "%s resumed after %.1f s (%d failed while the service database was unavailable)",
                self.what,
                self.clock() - outage.since_s,
                outage.failures,
            )

    def _transient(self, exc: Exception) -> None:
        now_s = self.clock()
        reason = error_reason(self.url, exc)
        line: tuple[str, tuple[object, ...]] | None = None
        with self._lock:
            outage = self._outage
            if outage is None:
                self._outage = _Outage(now_s, now_s)
                line = (
                    "%s failing: the service database %s is unavailable (%s); retrying, quiet "
                    "until it works again but for a reminder every %.0f min",
                    (self.what, redact_database_url(self.url), reason, OUTAGE_REMINDER_S / 60),
                )
            else:
                outage.failures += 1
                if now_s - outage.reminded_s >= OUTAGE_REMINDER_S:
                    outage.reminded_s = now_s
                    line = (
                        "%s still failing after %.0f s (%d attempts failed; %s); retrying",
                        (self.what, now_s - outage.since_s, outage.failures, reason),
                    )
        if line is not None:
            self.log.warning(line[0], *line[1])
            # the frames, not the text (it quotes the parameters): for a developer, on demand
            self.log.debug("%s failed (%s) at:\n%s", self.what, reason, where(exc))

    def _bug(self, exc: Exception) -> None:
        now_s = self.clock()
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        with self._lock:
            bug = self._bugs.get(kind)
            if bug is not None and now_s - bug.logged_s < BUG_REPEAT_S:
                bug.left_out += 1
                return
            left_out = bug.left_out if bug is not None else 0
            self._bugs[kind] = _Bug(now_s)
        # the class and the frames, not the message: a database error's text quotes the row
        self.log.error(
            "%s failed with %s, not a database outage (a bug?); retrying%s. At:\n%s",
            self.what,
            error_reason(self.url, exc),
            f" ({left_out} more since the last report)" if left_out else "",
            where(exc),
        )


class SetAside:
    """Rows a loop could not process for a reason of their own: held back, told once, retried.

    A row that raises at every try (a value no version of the code knows, written by hand or by
    an older version; a bug met only by that row) used to fail the loop's whole pass, so that
    nobody else's work got done. The loop now works each row on its own and reports such a row
    here: it is logged once (``describe``: its ids, and the error's class and frames, never the
    error's text, which can quote the row), counted, and left out of the passes for ``retry_s``,
    then tried again, quietly, so that a row mended by hand goes on by itself. ``clock`` is the
    loop's clock (seconds). Used by one loop thread only.
    """

    def __init__(self, logger: logging.Logger, retry_s: float, clock: Callable[[], float]) -> None:
        self.log = logger
        self.retry_s = retry_s
        self.clock = clock
        self.count = 0
        """Rows set aside since the start (each counted once)."""
        self._until_s: dict[int, float] = {}
        """Rows set aside: when each is tried again."""
        self._told: dict[int, str] = {}
        """Rows logged, and how they were described."""

    def held(self) -> list[int]:
        """The rows to leave out now (set aside, not yet due for another try)."""
        now_s = self.clock()
        return sorted(row for row, until_s in self._until_s.items() if until_s > now_s)

    def failed(self, row: int, describe: str, exc: BaseException) -> bool:
        """Set ``row`` aside after ``exc``; whether this is its first time (it was logged)."""
        self._until_s[row] = self.clock() + self.retry_s
        if row in self._told:
            return False
        self._told[row] = describe
        self.count += 1
        self.log.error(
            "%s set aside (%s: a bug, or a value written by hand or by an older version; not a "
            "database outage); the others go on. At:\n%s",
            describe,
            type(exc).__name__,
            where(exc),
        )
        return True

    def succeeded(self, row: int) -> None:
        """``row`` went through (again): no longer held back; its recovery is logged."""
        if self._until_s.pop(row, None) is not None:
            self.log.info("%s, set aside before, went through", self._told.pop(row, row))

    def settled(self, row: int) -> None:
        """``row`` was dealt with otherwise (given up for good): nothing left to hold."""
        self._until_s.pop(row, None)
        self._told.pop(row, None)
