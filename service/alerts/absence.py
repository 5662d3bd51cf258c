"""Care-team members away: last in the escalation order until they are back.

A caregiver on a flight or on a night shift elsewhere cannot answer; if they stay first in line,
every critical alert waits the acknowledgement timeout (3 min, when the median time to cardiac
arrest in fatal anaphylaxis is about 5) before anyone who can answer hears of it. Away, a member
stands after everyone available (:func:`~service.alerts.care_team.escalation_levels`), so the
alert goes to the others first; they are still told once everyone available was told and did
not acknowledge, and at once if the whole team is away: an absence never leaves an alert with
nobody told.

Going away and coming back move the member in the order, so open alerts are renumbered as for
any change of the team (:mod:`service.alerts.team_changes`): going away, an alert waiting on
them goes to the next member at once and they hear no more of it but its all-clear; back, they
are told at once of an open alert that reached someone now after them. An absence ends by
itself at its end time (the escalation scheduler calls :func:`end_absences`), and lasts
:data:`~service.alerts.const.MAX_AWAY_S` at most.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.alerts.audit import record
from service.alerts.care_team import escalation_levels
from service.alerts.const import MAX_AWAY_S
from service.alerts.delivery_queue import TELLING
from service.alerts.team_changes import close_level, keep_told_ahead, skip_pending
from service.db.models import Contact, Role

_UNITS_S: Final = {"m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0}


def away_length_s(text: str) -> float:
    """How long ``8h``, ``90m``, ``3d`` or ``1w`` is, in seconds; a :class:`ConfigError` if not."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _UNITS_S or not number.isdigit() or int(number) == 0:
        raise ConfigError(f"{text!r} is not a length such as 90m, 8h, 3d or 1w")
    return int(number) * _UNITS_S[unit]


def check_away_until(until_s: float, now_s: float) -> float:
    """``until_s`` if an absence may end then, else a :class:`ConfigError` saying why."""
    if not math.isfinite(until_s) or until_s <= now_s:
        raise ConfigError("an absence must end in the future")
    if until_s > now_s + MAX_AWAY_S:
        days = MAX_AWAY_S / 86_400
        raise ConfigError(f"an absence lasts {days:.0f} days at most; set it again then")
    return until_s


def go_away(session: Session, contact: Contact, until_s: float, now_s: float) -> None:
    """Set ``contact`` away until ``until_s`` (epoch s); audited.

    Already away, only the end moves. Otherwise the contact goes after everyone available: an
    open alert waiting on them goes to the next member at once, and their messages of open
    alerts not sent yet (a notice held for quiet hours, a repeat) are skipped. If nobody
    available is left, the order does not change and neither does anything else.
    """
    if contact.role == Role.PATIENT or contact.removed_s is not None:
        raise ConfigError(f"contact {contact.id} is not on a care team")
    check_away_until(until_s, now_s)
    was_away = contact.away_until_s is not None
    before = [c.id for c in escalation_levels(session, contact.patient_id)]
    contact.away_until_s = until_s
    session.flush()
    record(
        session,
        now_s,
        "contact_away",
        patient_id=contact.patient_id,
        contact_id=contact.id,
        until_s=until_s,
    )
    if was_away:
        return
    after = [c.id for c in escalation_levels(session, contact.patient_id)]
    index = before.index(contact.id)
    if after.index(contact.id) == index:
        return  # nobody available after them: they stay where they were
    close_level(session, contact, index, len(after), now_s, reason="contact_away")
    skip_pending(session, contact, now_s, reason="contact_away", purposes=TELLING)


def come_back(session: Session, contact: Contact, now_s: float, *, reason: str) -> bool:
    """End ``contact``'s absence; returns whether they were away. Audited with ``reason``.

    Back in their place, they are told at once of each open alert that reached someone now
    after them (:func:`~service.alerts.team_changes.keep_told_ahead`).
    """
    if contact.away_until_s is None:
        return False
    before = [c.id for c in escalation_levels(session, contact.patient_id)]
    contact.away_until_s = None
    session.flush()
    record(
        session,
        now_s,
        "contact_back",
        patient_id=contact.patient_id,
        contact_id=contact.id,
        reason=reason,
    )
    if contact.removed_s is None:
        keep_told_ahead(session, contact.patient_id, before, now_s, reason="contact_back")
    return True


def set_away(
    session: Session, contacts: Iterable[Contact], until_s: float | None, now_s: float
) -> int:
    """Set each of ``contacts`` away until ``until_s``, or back if ``None``; returns how many.

    One person stands on several care teams (a caregiver account's contacts): their absence
    is theirs on every team.
    """
    if until_s is not None:
        check_away_until(until_s, now_s)
    changed = 0
    for contact in contacts:
        if contact.removed_s is not None:
            continue
        if until_s is None:
            changed += come_back(session, contact, now_s, reason="by_hand")
        else:
            go_away(session, contact, until_s, now_s)
            changed += 1
    return changed


def end_absences(session: Session, now_s: float) -> int:
    """Bring back every member whose absence ended by ``now_s``; returns how many."""
    ended = session.scalars(
        select(Contact)
        .where(Contact.away_until_s.is_not(None), Contact.away_until_s <= now_s)
        .order_by(Contact.away_until_s, Contact.id)
    ).all()
    for contact in ended:
        come_back(session, contact, now_s, reason="away_ended")
    return len(ended)


def next_return_s(session: Session) -> float | None:
    """When the next absence ends (epoch s), if anyone is away."""
    return session.scalar(select(func.min(Contact.away_until_s)).where(Contact.removed_s.is_(None)))
