"""Drills: a practice alert through the whole chain, to learn that it works before it must.

A care team finds a channel that stopped delivering, a phone on silent or an escalation order
that no longer fits when an alert needs them, unless they practise. **Start a drill** on a
patient's page (the patient or a caregiver) opens an alert of kind :data:`DRILL`: critical, as
a real reaction's, so it takes every step one takes (each caregiver in turn after the
acknowledgement timeout, repeats, the channels' emergency priority, the acknowledgement links)
with "DRILL" first in every message. The first "I'm on it" ends it, and the all-clear tells
everyone it reached who answered and after how long; nobody answering, it ends by itself after
:data:`~service.alerts.const.DRILL_MAX_S`. The patient's page keeps the result of the last one.

A drill is refused while another alert of the patient is open: it must never stand beside, or
be taken for, a real one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from models.alarm import Severity
from service.alerts.audit import record
from service.alerts.care_team import escalation_levels
from service.alerts.const import DRILL, DRILL_MAX_S
from service.alerts.errors import UnknownPatientError
from service.alerts.manager import AlertManager
from service.alerts.transaction import AlertTransaction
from service.db.models import OPEN_ALERT_STATES, Alert, Patient


@dataclass(frozen=True, slots=True)
class DrillResult:
    """How the last drill went: when it began, who answered and when (None: nobody, yet)."""

    started_s: float
    answered_by: str | None
    answered_s: float | None
    open: bool


def start_drill(manager: AlertManager, patient_id: str, *, by: str, via: str) -> Alert:
    """Open a drill for the patient's care team; :class:`ConfigError` if an alert is open."""
    with manager.transaction() as txn:
        patient = txn.session.get(Patient, patient_id)
        if patient is None:
            raise UnknownPatientError(patient_id)
        return open_drill(manager, txn, patient, by=by, via=via)


def open_drill(
    manager: AlertManager, txn: AlertTransaction, patient: Patient, *, by: str, via: str
) -> Alert:
    """Open a drill in ``txn``; :class:`ConfigError` if an alert is open or nobody is told."""
    busy = txn.session.scalars(
        select(Alert.kind).where(Alert.patient_id == patient.id, Alert.state.in_(OPEN_ALERT_STATES))
    ).first()
    if busy is not None:
        what = "a drill is going on" if busy == DRILL else "an alert is open"
        raise ConfigError(f"{what}: no drill now")
    if not escalation_levels(txn.session, patient.id):
        raise ConfigError("nobody is on the care team: a drill would reach no one")
    alert = manager.open_alert(
        txn, patient, kind=DRILL, severity=Severity.CRITICAL, since_s=txn.now_s
    )
    record(
        txn.session, txn.now_s, "drill_started", patient_id=patient.id, alert_id=alert.id,
        by=by, via=via,
    )  # fmt: skip
    return alert


def end_if_unanswered(manager: AlertManager, txn: AlertTransaction, alert: Alert) -> bool:
    """End a drill nobody answered within :data:`DRILL_MAX_S`; returns whether it ended."""
    if alert.kind != DRILL or txn.now_s < alert.created_s + DRILL_MAX_S:
        return False
    manager.resolve_alert(txn, alert, "drill_unanswered")
    return True


def last_drill(session: Session, patient_id: str) -> DrillResult | None:
    """The patient's latest drill, if there was one."""
    alert = session.scalars(
        select(Alert)
        .where(Alert.patient_id == patient_id, Alert.kind == DRILL)
        .order_by(Alert.created_s.desc(), Alert.id.desc())
        .limit(1)
    ).first()
    if alert is None:
        return None
    return DrillResult(
        alert.created_s,
        alert.acked_by,
        alert.acked_s,
        alert.state in OPEN_ALERT_STATES,
    )
