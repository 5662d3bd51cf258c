"""A patient's own call for help: a critical alert to their care team, raised by hand.

The detectors miss some reactions (docs/evaluation.md) and notice none before the patient
does: someone flushing, itching or feeling faint knows first. **I need help now** on their own
page opens an alert of kind :data:`HELP` that goes through the same escalation as a detector's
critical alert: every caregiver in turn, repeats, the emergency plan in each message, the
acknowledgement links. It has no episode (nothing was measured) and no cancel window (the
patient asked). It ends when the patient or a caregiver says it is over (all clear to whoever
was told). Pressing again while it is open re-alerts the team, at most once a minute.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.alarm import Severity
from service.alerts.audit import record
from service.alerts.const import HELP
from service.alerts.errors import AlertNotFoundError, UnknownPatientError
from service.alerts.manager import AlertManager
from service.db.models import OPEN_ALERT_STATES, Alert, AuditEvent, Patient

__all__ = ["HELP", "HELP_AGAIN_AFTER_S", "end_help", "open_help", "request_help"]

HELP_AGAIN_AFTER_S: Final = 60.0
"""A second press re-alerts the team only this long after the last: a frantic double tap or a
page reloaded must not send every message twice."""


def request_help(manager: AlertManager, patient_id: str, *, by: str, via: str) -> Alert:
    """Alert the patient's care team now (critical); the help alert, new or re-armed."""
    with manager.transaction() as txn:
        patient = txn.session.get(Patient, patient_id)
        if patient is None:
            raise UnknownPatientError(patient_id)
        alert = open_help(txn.session, patient_id)
        again = alert is not None
        if alert is None:
            alert = manager.open_alert(
                txn, patient, kind=HELP, severity=Severity.CRITICAL, since_s=txn.now_s
            )
        elif txn.now_s - _last_request_s(txn.session, alert) >= HELP_AGAIN_AFTER_S:
            manager.worsen_alert(txn, alert, Severity.CRITICAL, "help_requested_again")
        record(
            txn.session,
            txn.now_s,
            "help_requested",
            patient_id=patient_id,
            alert_id=alert.id,
            by=by,
            via=via,
            again=again,
        )
        return alert


def open_help(session: Session, patient_id: str) -> Alert | None:
    """The patient's call for help going on, if any."""
    return session.scalars(
        select(Alert)
        .where(
            Alert.patient_id == patient_id,
            Alert.kind == HELP,
            Alert.state.in_(OPEN_ALERT_STATES),
        )
        .order_by(Alert.created_s.desc())
    ).first()


def end_help(manager: AlertManager, patient_id: str, alert_id: int, *, by: str, via: str) -> Alert:
    """The call for help is over: stop everything, all clear to whoever was told."""
    with manager.transaction() as txn:
        alert = txn.session.get(Alert, alert_id)
        if alert is None or alert.patient_id != patient_id or alert.kind != HELP:
            raise AlertNotFoundError(alert_id)
        record(
            txn.session,
            txn.now_s,
            "help_ended",
            patient_id=patient_id,
            alert_id=alert.id,
            by=by,
            via=via,
        )
        manager.resolve_alert(txn, alert, "help_ended")
        return alert


def _last_request_s(session: Session, alert: Alert) -> float:
    """When help was last asked for on ``alert`` (its trail says)."""
    last = session.scalar(
        select(func.max(AuditEvent.time_s)).where(
            AuditEvent.alert_id == alert.id, AuditEvent.action == "help_requested"
        )
    )
    return float(last) if last is not None else alert.created_s
