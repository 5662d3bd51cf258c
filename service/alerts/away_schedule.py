"""Away on a schedule: a caregiver who cannot answer at the same hours every week.

A parent at work where phones stay in the locker, a nurse on nights: saying "I'm away" each time
is a chore that gets forgotten, and every alert in those hours then waits the acknowledgement
timeout on them before anyone who can answer hears of it. A weekly schedule (days of the week,
from a time to a time on the patient's clock; a window ending before it starts ends the next
day) makes them away for each window as if they had said so (:func:`~service.alerts.absence.
go_away`: last in the order until it ends, which the absence's end brings about). Saying "I'm
back" during a window ends that one only; an absence set by hand that lasts longer is kept.

The escalation scheduler starts each window (:func:`start_scheduled_absences`, when
:func:`next_scheduled_away_s` has come), restarts included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.alerts.absence import go_away
from service.alerts.audit import record
from service.alerts.errors import AlertingError
from service.alerts.policy import instants_reading_s, parse_hhmm
from service.alerts.transaction import AlertTransaction
from service.db.models import Contact, Role

DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""ISO weekdays 1 to 7."""

_DAY_WORDS: Final = {
    "weekdays": "12345",
    "weekends": "67",
    "daily": "1234567",
    **{name.lower(): str(number) for number, name in enumerate(DAY_NAMES, start=1)},
}


@dataclass(frozen=True, slots=True)
class AwaySchedule:
    """Away every week on ``days`` (ISO weekdays, "12345") from ``start`` to ``end`` (local)."""

    days: str
    start: str
    end: str

    def words(self) -> str:
        """``Mon, Tue, Wed, Thu, Fri from 08:00 to 17:00`` (the next day, if it wraps)."""
        days = ", ".join(DAY_NAMES[int(day) - 1] for day in self.days)
        wraps = " the next day" if self.end <= self.start else ""
        return f"{days} from {self.start} to {self.end}{wraps}"


def parse_days(text: str) -> str:
    """ISO weekdays of ``mon-fri``, ``mon,wed``, ``weekdays``, ``weekends`` or ``daily``."""
    days: set[str] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if dash and first in _DAY_WORDS and last in _DAY_WORDS and len(first) == 3:
            low, high = int(_DAY_WORDS[first]), int(_DAY_WORDS[last])
            days.update(str(day) for day in range(low, high + 1))
        elif part in _DAY_WORDS and not dash:
            days.update(_DAY_WORDS[part])
        else:
            raise ConfigError(
                f"{text[:30]!r} is not days of the week: e.g. mon-fri, mon,wed,fri, weekdays"
            )
    if not days:
        raise ConfigError(f"{text[:30]!r} names no day: a range goes forwards, e.g. mon-fri")
    return "".join(sorted(days))


def schedule_of(contact: Contact) -> AwaySchedule | None:
    """The contact's weekly absence (None: none)."""
    if not contact.away_days or not contact.away_from or not contact.away_to:
        return None
    return AwaySchedule(contact.away_days, contact.away_from, contact.away_to)


def set_away_schedule(
    session: Session,
    contact: Contact,
    schedule: AwaySchedule | None,
    now_s: float,
    *,
    by: str,
    via: str,
) -> None:
    """Give ``contact`` a weekly absence (``None``: none); away at once if in a window; audited."""
    if contact.role == Role.PATIENT or contact.removed_s is not None:
        raise ConfigError(f"contact {contact.id} is not on a care team")
    if schedule is not None:
        schedule = _checked(schedule)
    contact.away_days = schedule.days if schedule else None
    contact.away_from = schedule.start if schedule else None
    contact.away_to = schedule.end if schedule else None
    record(
        session, now_s, "away_schedule_set", patient_id=contact.patient_id,
        contact_id=contact.id, schedule=schedule.words() if schedule else None, by=by, via=via,
    )  # fmt: skip
    if schedule is None:
        contact.away_next_s = None
        return
    _begin_or_wait(session, contact, schedule, now_s)


def absences_follow_timezone(session: Session, patient_id: str, now_s: float) -> None:
    """The patient's clock changed: each weekly absence on their team goes by the new one."""
    contacts = session.scalars(
        select(Contact).where(
            Contact.patient_id == patient_id,
            Contact.removed_s.is_(None),
            Contact.away_days.is_not(None),
        )
    ).all()
    for contact in contacts:
        schedule = schedule_of(contact)
        if schedule is not None:
            _begin_or_wait(session, contact, schedule, now_s)


def next_scheduled_away_s(session: Session) -> float | None:
    """When the earliest scheduled absence begins (None: none is scheduled)."""
    return session.scalar(select(func.min(Contact.away_next_s)).where(Contact.removed_s.is_(None)))


def start_scheduled_absences(txn: AlertTransaction) -> int:
    """Begin every scheduled absence due now (as :func:`go_away`); returns how many began."""
    due = txn.session.scalars(
        select(Contact)
        .where(Contact.away_next_s <= txn.now_s, Contact.removed_s.is_(None))
        .order_by(Contact.away_next_s, Contact.id)
    ).all()
    for contact in due:
        schedule = schedule_of(contact)
        if schedule is None:
            contact.away_next_s = None
            continue
        _begin_or_wait(txn.session, contact, schedule, txn.now_s)
    return len(due)


def _begin_or_wait(
    session: Session, contact: Contact, schedule: AwaySchedule, now_s: float
) -> None:
    """Away now if a window is going on (until its end), and wait for the next one.

    A window missed entirely (the service was down all through it) is not begun late.
    """
    window = _window(contact, schedule, now_s, current=True)
    if window is not None and window[0] <= now_s:
        _away_for(session, contact, window[1], now_s)
        window = _window(contact, schedule, window[0], current=False)
    contact.away_next_s = window[0] if window else None


def _away_for(session: Session, contact: Contact, end_s: float, now_s: float) -> None:
    """Away until ``end_s``, unless already away for longer (an absence said by hand)."""
    if contact.away_until_s is None or contact.away_until_s < end_s:
        go_away(session, contact, end_s, now_s)


def _checked(schedule: AwaySchedule) -> AwaySchedule:
    if not schedule.days or any(day not in "1234567" for day in schedule.days):
        raise ConfigError("choose at least one day of the week")
    try:
        start, end = parse_hhmm(schedule.start), parse_hhmm(schedule.end)
    except AlertingError as exc:
        raise ConfigError(f"{exc}") from exc
    if start == end:
        raise ConfigError("an absence that ends when it starts is none")
    days = "".join(sorted(set(schedule.days)))
    return AwaySchedule(days, start.strftime("%H:%M"), end.strftime("%H:%M"))


def _window(
    contact: Contact, schedule: AwaySchedule, after_s: float, *, current: bool
) -> tuple[float, float] | None:
    """The window going on at ``after_s`` (if ``current``), else the next one to start after it.

    As (start, end) in epoch s, on the wall clock of the contact's patient: from a listed day's
    start time to the first end time after it.
    """
    zone = ZoneInfo(contact.patient.timezone)
    start, end = parse_hhmm(schedule.start), parse_hhmm(schedule.end)
    today = dt.datetime.fromtimestamp(after_s, zone).date()
    for offset in range(-1, 9):
        day = today + dt.timedelta(days=offset)
        if str(day.isoweekday()) not in schedule.days:
            continue
        begin_s = instants_reading_s(dt.datetime.combine(day, start), zone)[0]
        end_day = day + dt.timedelta(days=1 if end <= start else 0)
        end_s = instants_reading_s(dt.datetime.combine(end_day, end), zone)[-1]
        if (current and begin_s <= after_s < end_s) or begin_s > after_s:
            return begin_s, end_s
    return None
