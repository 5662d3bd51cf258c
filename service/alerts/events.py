"""Alert events: what is announced (MQTT sirens, dashboards) when an alert changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from models.alarm import Severity
from service.db.models import Alert, AlertState


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A change of an alert, as published on MQTT (no vitals: sirens only need the severity)."""

    event: str
    alert_id: int
    patient_id: str
    kind: str
    severity: str
    state: str
    since_s: float
    time_s: float
    episode_id: int | None = None
    acked_by: str | None = None


AlertListener = Callable[[AlertEvent], None]


def event_of(alert: Alert, event: str, now_s: float) -> AlertEvent:
    """An event describing ``alert`` as it is now."""
    return AlertEvent(
        event=event,
        alert_id=alert.id,
        patient_id=alert.patient_id,
        kind=alert.kind,
        severity=alert.severity,
        state=alert.state,
        since_s=alert.since_s,
        time_s=now_s,
        episode_id=alert.episode_id,
        acked_by=alert.acked_by,
    )


def _urgency(event: AlertEvent) -> tuple[bool, bool, bool, float, int]:
    return (
        event.state != AlertState.ACKNOWLEDGED,
        event.severity == Severity.CRITICAL,
        event.state == AlertState.ACTIVE,
        event.time_s,
        event.alert_id,
    )


def most_urgent(open_events: Iterable[AlertEvent]) -> AlertEvent | None:
    """The latest event of the open alert that most needs attention, ``None`` if none is open.

    Unacknowledged before acknowledged (someone is on that one), then critical before warning,
    then telling the care team before waiting for the wearer, then the most recently changed.
    It is what a siren that reconnects must read on the patient's alerts topic.
    """
    return max(open_events, key=_urgency, default=None)
