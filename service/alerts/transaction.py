"""The unit of work of alert changes: a database session and what to do once it commits.

:meth:`service.alerts.manager.AlertManager.transaction` opens one; the events it collects are
announced, and the scheduler woken, only after the commit, so nobody hears of a rolled-back alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from service.alerts.events import AlertEvent


@dataclass
class AlertTransaction:
    """A database session plus the events to announce once it commits."""

    session: Session
    now_s: float
    events: list[AlertEvent] = field(default_factory=list)
    wake: bool = False

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One row's work in a savepoint: an error undoes its writes and drops its events only."""
        events, wake = len(self.events), self.wake
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            del self.events[events:]  # nobody hears of what was rolled back
            self.wake = wake
            raise
