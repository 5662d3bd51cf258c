"""The append-only audit trail: every decision, delivery attempt, result and acknowledgement."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from sqlalchemy.orm import Session

from service.db.models import AuditEvent

Clock: TypeAlias = Callable[[], float]
"""Returns the current UTC time in epoch seconds; injected so tests control time."""

DetailValue: TypeAlias = str | int | float | bool | None


def record(
    session: Session,
    time_s: float,
    action: str,
    *,
    patient_id: str | None = None,
    alert_id: int | None = None,
    delivery_id: int | None = None,
    **detail: DetailValue,
) -> None:
    """Append one audit event; callers pass ids and outcomes only, never vitals or URLs."""
    session.add(
        AuditEvent(
            time_s=time_s,
            patient_id=patient_id,
            alert_id=alert_id,
            delivery_id=delivery_id,
            action=action,
            detail=dict(detail),
        )
    )
