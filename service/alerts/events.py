"""Alert events: what is announced (MQTT sirens, dashboards) when an alert changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.db.models import Alert


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
