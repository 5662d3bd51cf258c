"""Is the service doing its job: the parts alerting depends on, checked on demand.

``/healthz`` only says the process answers. A service whose broker link is down, whose sample
store refuses writes or whose escalation scheduler has stopped still answers it, and alerts
nobody. Each part registers a check on the service's :class:`HealthBoard`; ``/readyz`` reports
them (503 when one fails) and the heartbeat (:mod:`service.heartbeat`) tells an outside
monitor, which is what notices a service that stopped altogether.

A check says what it found in words an operator can act on: never a patient, a reading or a
secret.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    """One part's state: ``ok``, and what was found (``detail``)."""

    name: str
    ok: bool
    detail: str


HealthSource = Callable[[], Check]
"""Checks one part when called (cheaply: ``/readyz`` may be polled every few seconds)."""


@dataclass(frozen=True, slots=True)
class Health:
    """Every check at one moment."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Every part is doing its job."""
        return all(check.ok for check in self.checks)

    def summary(self) -> str:
        """``ok``, or the failing parts and why, on one line (for a heartbeat or a log)."""
        failing = [f"{check.name}: {check.detail}" for check in self.checks if not check.ok]
        return "ok" if not failing else "degraded - " + "; ".join(failing)


class HealthBoard:
    """The checks of one service, added by each part as it starts (thread-safe)."""

    def __init__(self) -> None:
        self._sources: list[tuple[str, HealthSource]] = []
        self._lock = threading.Lock()

    def add(self, name: str, source: HealthSource) -> None:
        """Check ``source`` from now on, under ``name`` should it raise."""
        with self._lock:
            self._sources.append((name, source))

    def check(self) -> Health:
        """Run every check; one that raises counts as failing, with the error's type."""
        with self._lock:
            sources = list(self._sources)
        checks = []
        for name, source in sources:
            try:
                checks.append(source())
            except Exception as exc:  # noqa: BLE001 - a broken check is a failing one
                checks.append(Check(name, False, f"could not be checked ({type(exc).__name__})"))
        return Health(tuple(checks))
