"""Drills on a schedule: the care team practises without having to remember to.

A drill started by hand (:mod:`service.alerts.drills`) is practised when someone thinks of it:
rarely, and least by the teams that need it. Alarm services test their chain on a schedule
(a personal emergency alarm is typically tested monthly). The patient or a caregiver sets one
on the patient's page (or the administrator with ``admin patient set``): a drill every
:data:`DRILL_EVERY_CHOICES` days at a time on the patient's clock. The first comes at that time
at least :data:`~service.alerts.const.DRILL_NOTICE_S` after it was set, so nobody is surprised by
one a minute later; each next one the same wall-clock time so many days later (across clock
changes).

A drill due while an alert is open (a drill must never stand beside a real one) or in quiet
hours (a drill is critical: it would wake everyone) waits, for an hour or until the quiet hours
end; one whose care team is empty is skipped to the next. The escalation scheduler starts them
(:func:`start_due_drills`, when :func:`next_scheduled_drill_s` has come), restarts included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.alerts.audit import record
from service.alerts.care_team import escalation_levels, policy_of
from service.alerts.const import DRILL_NOTICE_S, DRILL_RETRY_S
from service.alerts.drills import open_drill
from service.alerts.errors import AlertingError
from service.alerts.manager import AlertManager
from service.alerts.policy import next_wall_time_s, parse_hhmm, quiet_until_s
from service.alerts.transaction import AlertTransaction
from service.db.models import Patient

DRILL_EVERY_CHOICES: Final = {
    7: "every week",
    14: "every 2 weeks",
    28: "every 4 weeks",
    91: "every 3 months",
}
"""The choices of the patient's page, by days; the administrator may set any of 1 to 366."""

SCHEDULE: Final = "schedule"
"""Who starts a scheduled drill, in the audit trail and on the patient's page."""


@dataclass(frozen=True, slots=True)
class DrillSchedule:
    """Drills every ``every_days`` at ``at`` (local "HH:MM"); the next at ``next_s`` (epoch s)."""

    every_days: int
    at: str
    next_s: float | None


def drill_schedule_of(patient: Patient) -> DrillSchedule | None:
    """The patient's schedule (None: drills only by hand)."""
    if patient.drill_every_days is None or patient.drill_at is None:
        return None
    return DrillSchedule(patient.drill_every_days, patient.drill_at, patient.next_drill_s)


def every_words(days: int) -> str:
    """``every 4 weeks`` for 28 days."""
    return DRILL_EVERY_CHOICES.get(days) or f"every {days} day{'' if days == 1 else 's'}"


def schedule_drills(
    session: Session,
    patient: Patient,
    every_days: int | None,
    at: str | None,
    now_s: float,
    *,
    by: str,
    via: str,
) -> None:
    """Drills every ``every_days`` at local ``at`` ("18:00"); ``None`` days: no more; audited."""
    if every_days is None:
        patient.drill_every_days = patient.drill_at = patient.next_drill_s = None
    else:
        if not 1 <= every_days <= 366:
            raise ConfigError(f"drills come every 1 to 366 days, not every {every_days}")
        try:
            wall = parse_hhmm(at or "")
        except AlertingError as exc:
            raise ConfigError(f"a drill's time {str(at)[:8]!r} must look like 18:00") from exc
        patient.drill_every_days = every_days
        patient.drill_at = wall.strftime("%H:%M")
        patient.next_drill_s = next_wall_time_s(
            wall, ZoneInfo(patient.timezone), now_s + DRILL_NOTICE_S
        )
    record(
        session,
        now_s,
        "drills_scheduled",
        patient_id=patient.id,
        every_days=patient.drill_every_days,
        at=patient.drill_at,
        by=by,
        via=via,
    )


def drills_follow_timezone(patient: Patient, now_s: float) -> None:
    """The patient's clock changed (they moved): the next drill at its time on the new clock."""
    if patient.drill_every_days is not None and patient.drill_at is not None:
        patient.next_drill_s = next_wall_time_s(
            parse_hhmm(patient.drill_at), ZoneInfo(patient.timezone), now_s
        )


def next_scheduled_drill_s(session: Session) -> float | None:
    """When the earliest scheduled drill is due (None: none is)."""
    return session.scalar(select(func.min(Patient.next_drill_s)))


def start_due_drills(manager: AlertManager, txn: AlertTransaction) -> int:
    """Start the drills due now, or put them off; returns how many started."""
    due = txn.session.scalars(
        select(Patient).where(Patient.next_drill_s <= txn.now_s).order_by(Patient.next_drill_s)
    ).all()
    started = 0
    for patient in due:
        quiet_end_s = quiet_until_s(policy_of(patient), txn.now_s)
        if quiet_end_s is not None:
            _put_off(txn, patient, quiet_end_s, "quiet_hours")
            continue
        if not escalation_levels(txn.session, patient.id):  # nobody to practise: the next one
            _next(txn, patient, "care_team_empty")
            continue
        try:
            open_drill(manager, txn, patient, by=SCHEDULE, via=SCHEDULE)
        except ConfigError:  # an alert (or a drill started by hand) is open
            _put_off(txn, patient, txn.now_s + DRILL_RETRY_S, "alert_open")
            continue
        started += 1
        _next(txn, patient, None)
    return started


def _put_off(txn: AlertTransaction, patient: Patient, until_s: float, why: str) -> None:
    patient.next_drill_s = until_s
    record(txn.session, txn.now_s, "drill_put_off", patient_id=patient.id, until_s=until_s, why=why)


def _next(txn: AlertTransaction, patient: Patient, skipped: str | None) -> None:
    """The drill after this one: the same wall-clock time ``drill_every_days`` later."""
    zone = ZoneInfo(patient.timezone)
    every = patient.drill_every_days or 1
    at = parse_hhmm(patient.drill_at or "00:00")
    day = dt.datetime.fromtimestamp(txn.now_s, zone).date() + dt.timedelta(days=every - 1)
    start = dt.datetime.combine(day, dt.time(23, 59, 59), zone).timestamp()
    patient.next_drill_s = next_wall_time_s(at, zone, start)
    if skipped is not None:
        record(
            txn.session, txn.now_s, "drill_skipped", patient_id=patient.id, why=skipped,
            next_s=patient.next_drill_s,
        )  # fmt: skip
