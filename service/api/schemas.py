"""Request and response models of the alert and episode endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.db.models import Alert


class TokenIn(BaseModel):
    """A signed link token, as found at the end of an acknowledgement or "I'm OK" link."""

    token: str = Field(min_length=10, max_length=500)


class LabelIn(TokenIn):
    """A label link's token and the answer to "was the episode a real reaction"."""

    label: Literal["reaction", "false-alarm", "false_alarm"]


class EpisodeLabelled(BaseModel):
    """The episode's label after the answer (no vitals, no patient details)."""

    episode_id: int
    label: str
    labelled_by: str


class AlertPublic(BaseModel):
    """An alert as the token holder may see it (no vitals, no contact details)."""

    id: int
    patient_id: str
    kind: str
    severity: str
    state: str
    since_s: float
    acked_by: str | None

    @classmethod
    def of(cls, alert: Alert) -> AlertPublic:
        """Build from a database row."""
        return cls(
            id=alert.id,
            patient_id=alert.patient_id,
            kind=alert.kind,
            severity=alert.severity,
            state=alert.state,
            since_s=alert.since_s,
            acked_by=alert.acked_by,
        )
