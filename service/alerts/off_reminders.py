"""Reminding a wearer that the band they took off is still off.

A lost signal goes to the wearer first, who can answer "I took it off": caregivers then hear
nothing of it until the band reports again (:mod:`service.alerts.manager`). But until it does,
nobody watches over the wearer and no alert can reach their caregivers, and a band left on the
charger or by the basin is easily forgotten. So the wearer is reminded, on their own channels
only, after the patient's ``off_reminder_s`` (2 hours by default,
:data:`~service.alerts.const.DEFAULT_OFF_REMINDER_S`), then after twice as long each time, at most
a day apart (:data:`~service.alerts.const.OFF_REMINDER_MAX_GAP_S`), never in quiet hours (held
until they end), until the band is back. The band reporting again, or a new loss of the same
kind (which asks the wearer anew), ends them.

The wearer's word is not the last one for ever: a band still silent a day after it went silent
(the patient's ``off_notice_s``, :data:`~service.alerts.const.DEFAULT_OFF_NOTICE_S`; 0: never)
is told once to the caregivers (not the emergency contacts), as alarm services tell the family
of a device that has not checked in for a day: they count on being alerted, and nobody can be.

The cancelled alert carries the schedule (``remind_s``, ``reminders``, ``notice_s``): the
escalation scheduler
calls :func:`send_due_reminders` when the earliest is due (:func:`next_reminder_s`), restarts
included.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.alerts.audit import record
from service.alerts.care_team import policy_of
from service.alerts.const import OFF_REMINDER_MAX_GAP_S
from service.alerts.delivery_queue import enqueue
from service.alerts.lifecycle import Purpose, Send
from service.alerts.policy import quiet_until_s
from service.alerts.transaction import AlertTransaction
from service.db.care_teams import PolicyUpdate, set_policy
from service.db.models import Alert, Patient

REMINDER_CHOICES: Final = {
    3600: "1 hour",
    7200: "2 hours",
    4 * 3600: "4 hours",
    8 * 3600: "8 hours",
    0: "never",
}
"""What a patient's page offers them (seconds: words); the administrator may set any delay."""

NOTICE_CHOICES: Final = {
    12 * 3600: "12 hours",
    86_400: "1 day",
    2 * 86_400: "2 days",
    0: "never",
}
"""When the caregivers may be told of a band taken off and still silent, on the patient's page."""


def set_off_reminder(
    session: Session,
    patient: Patient,
    delay_s: float,
    notice_s: float,
    now_s: float,
    *,
    by: str,
    via: str,
) -> None:
    """Remind the wearer after ``delay_s``, tell the caregivers after ``notice_s`` (0: never).

    From the next band taken off on; audited with who and how.
    """
    set_policy(patient, PolicyUpdate(off_reminder_s=delay_s, off_notice_s=notice_s))
    record(
        session, now_s, "off_reminder_changed", patient_id=patient.id,
        off_reminder_s=patient.off_reminder_s, off_notice_s=patient.off_notice_s, by=by, via=via,
    )  # fmt: skip


def reminder_gap_s(patient: Patient, reminders: int) -> float:
    """How long after the answer (``reminders`` = 0) or the last reminder the next one comes."""
    return min(patient.off_reminder_s * 2.0**reminders, OFF_REMINDER_MAX_GAP_S)


def _awake_at(patient: Patient, at_s: float) -> float:
    """``at_s``, or the end of the quiet hours it falls in."""
    return quiet_until_s(policy_of(patient), at_s) or at_s


def start_reminders(patient: Patient, alert: Alert, now_s: float) -> None:
    """The wearer answered "I took it off" to ``alert``: schedule the reminders and the notice.

    The first reminder after ``off_reminder_s``; the caregivers' notice once the band has been
    silent ``off_notice_s``; either 0: none.
    """
    alert.reminders = 0
    alert.remind_s = (
        _awake_at(patient, now_s + reminder_gap_s(patient, 0))
        if patient.off_reminder_s > 0
        else None
    )
    alert.notice_s = (
        _awake_at(patient, max(now_s, alert.since_s + patient.off_notice_s))
        if patient.off_notice_s > 0
        else None
    )


def stop_reminders(session: Session, patient_id: str, kind: str) -> None:
    """The band reported again, or was lost anew (the wearer is asked again): no more reminders."""
    session.execute(
        update(Alert)
        .where(
            Alert.patient_id == patient_id,
            Alert.kind == kind,
            Alert.remind_s.is_not(None) | Alert.notice_s.is_not(None),
        )
        .values(remind_s=None, notice_s=None)
    )


def next_reminder_s(session: Session) -> float | None:
    """When the earliest reminder or caregivers' notice is due (None: none is)."""
    times = [
        session.scalar(select(func.min(Alert.remind_s))),
        session.scalar(select(func.min(Alert.notice_s))),
    ]
    found = [t for t in times if t is not None]
    return min(found) if found else None


def send_due_reminders(txn: AlertTransaction) -> int:
    """Queue the reminders due now to the wearers, the notices due to caregivers; how many.

    Each is one step of its alert (``off_reminder``, numbered by ``reminders``), so a reminder
    is queued once however often this runs, and the next is set after twice the gap.
    """
    due = txn.session.scalars(
        select(Alert).where(Alert.remind_s <= txn.now_s).order_by(Alert.remind_s)
    ).all()
    for alert in due:
        patient = txn.session.get_one(Patient, alert.patient_id)
        enqueue(txn, alert, Send(Purpose.OFF_REMINDER, 0, alert.reminders, True))
        record(
            txn.session,
            txn.now_s,
            "off_reminder_queued",
            patient_id=alert.patient_id,
            alert_id=alert.id,
            reminder=alert.reminders + 1,
        )
        alert.reminders += 1
        gap_s = reminder_gap_s(patient, alert.reminders)
        alert.remind_s = _awake_at(patient, txn.now_s + gap_s) if gap_s > 0 else None
    noticed = txn.session.scalars(select(Alert).where(Alert.notice_s <= txn.now_s)).all()
    for alert in noticed:  # once: the caregivers are not nagged, only told
        enqueue(txn, alert, Send(Purpose.OFF_NOTICE, 0, 0, False))
        record(
            txn.session, txn.now_s, "off_notice_queued", patient_id=alert.patient_id,
            alert_id=alert.id,
        )  # fmt: skip
        alert.notice_s = None
    return len(due) + len(noticed)
