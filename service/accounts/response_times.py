"""How fast the care team answers: the alerts and drills of the last months, and who took them on.

The median time to cardiac arrest in fatal drug-induced anaphylaxis is about 5 minutes, so how
long a team takes to say "I'm on it" is the figure that decides whether an alert helps. Alarm
services report it; a team should see its own: the patient's page says how many alerts and
drills of the last :data:`~service.const.RESPONSE_DAYS` days reached someone, how many were
taken on, after how long (the median and the slowest, counted from the first message that reached
a caregiver), and who took them on.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts.const import DRILL
from service.alerts.delivery_queue import TELLING
from service.alerts.render import LOST_SIGNAL
from service.const import RESPONSE_DAYS
from service.db.models import Alert, Delivery, DeliveryState


@dataclass(frozen=True, slots=True)
class Answering:
    """Alerts (or drills) that reached someone, and how they were taken on."""

    reached: int = 0
    answered: int = 0
    median_s: float | None = None
    """Seconds from the first message that reached a caregiver to "I'm on it", the median."""
    slowest_s: float | None = None
    by: dict[str, int] = field(default_factory=dict)
    """Who took them on, how many each (the name they answered under), most first."""


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """The care team's answering over the last :data:`RESPONSE_DAYS` days."""

    alerts: Answering
    drills: Answering


def response_times(session: Session, patient_id: str, now_s: float) -> ResponseTimes:
    """Alerts about the patient (not about the band) and drills, by when a caregiver heard first.

    One grouped query: each alert of the period with the first time a message telling of it
    reached someone. Alerts that reached nobody (cancelled in the wearer's window, held in quiet
    hours) are left out: there was nothing to answer.
    """
    since_s = now_s - RESPONSE_DAYS * 86_400
    first_told = (
        select(Delivery.alert_id, func.min(Delivery.sent_s).label("told_s"))
        .where(Delivery.purpose.in_(TELLING), Delivery.state == DeliveryState.SENT)
        .group_by(Delivery.alert_id)
        .subquery()
    )
    rows = session.execute(
        select(Alert.kind, Alert.acked_s, Alert.acked_by, first_told.c.told_s)
        .join(first_told, first_told.c.alert_id == Alert.id)
        .where(
            Alert.patient_id == patient_id,
            Alert.created_s >= since_s,
            Alert.kind.not_in(LOST_SIGNAL),
        )
    ).all()
    tallies = {False: _Tally(), True: _Tally()}
    for kind, acked_s, acked_by, told_s in rows:
        tally = tallies[kind == DRILL]
        tally.reached += 1
        if acked_s is not None and told_s is not None:
            tally.answered_s.append(max(0.0, acked_s - told_s))
            tally.by[acked_by or "someone"] += 1
    return ResponseTimes(tallies[False].frozen(), tallies[True].frozen())


@dataclass(slots=True)
class _Tally:
    reached: int = 0
    answered_s: list[float] = field(default_factory=list)
    by: Counter[str] = field(default_factory=Counter)

    def frozen(self) -> Answering:
        times = self.answered_s
        return Answering(
            self.reached,
            len(times),
            statistics.median(times) if times else None,
            max(times) if times else None,
            dict(self.by.most_common()),
        )
