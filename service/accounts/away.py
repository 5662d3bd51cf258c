"""A caregiver away, from their own account: on every care team they stand on at once.

One person is one contact per patient (:class:`~service.db.models.AccountContact`); saying
"I'm away" on their account page sets each of those contacts away until the same time, and
"I'm back" ends each absence (:mod:`service.alerts.absence`, which says what that does to
alerts). The page offers fixed lengths (:data:`AWAY_CHOICES`), which need no time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy.orm import Session

from service.alerts.absence import set_away
from service.alerts.away_schedule import AwaySchedule, schedule_of, set_away_schedule
from service.db.models import Account, Contact

AWAY_CHOICES: Final = {
    "1h": "1 hour",
    "4h": "4 hours",
    "8h": "8 hours",
    "12h": "12 hours",
    "1d": "1 day",
    "2d": "2 days",
    "3d": "3 days",
    "1w": "1 week",
    "2w": "2 weeks",
    "30d": "30 days",
}
"""The lengths an account page offers: form value (:func:`~service.alerts.absence.away_length_s`)
and words."""


@dataclass(frozen=True, slots=True)
class AwayState:
    """What a caregiver's account page says of their absence."""

    until_s: float | None
    """Until when they are away (the latest end on their teams), None if available."""
    timezone: str
    now_s: float
    schedule: AwaySchedule | None = None
    """Their weekly absence (the same on every team), None if none."""


def away_state(account: Account, now_s: float) -> AwayState:
    """The account's absence as its page shows it."""
    schedules = [schedule_of(c) for c in team_contacts(account)]
    return AwayState(
        away_until_s(account),
        account_timezone(account),
        now_s,
        next((s for s in schedules if s is not None), None),
    )


def team_contacts(account: Account) -> list[Contact]:
    """The account's contacts still on a care team."""
    return [link.contact for link in account.contacts if link.contact.removed_s is None]


def away_until_s(account: Account) -> float | None:
    """Until when the account is away on some care team (the latest end), None if nowhere."""
    ends = [c.away_until_s for c in team_contacts(account) if c.away_until_s is not None]
    return max(ends) if ends else None


def account_timezone(account: Account) -> str:
    """The time zone to tell the account's times in: its first patient's, else UTC."""
    contacts = team_contacts(account)
    return contacts[0].patient.timezone if contacts else "UTC"


def set_account_away(
    session: Session, account: Account, until_s: float | None, now_s: float
) -> int:
    """Set the account away until ``until_s`` on each of its care teams (``None``: back).

    Returns on how many teams it changed.
    """
    return set_away(session, team_contacts(account), until_s, now_s)


def set_account_away_schedule(
    session: Session, account: Account, schedule: AwaySchedule | None, now_s: float
) -> int:
    """Give the account the weekly absence ``schedule`` on each care team (``None``: none).

    Times are on each patient's clock. Returns on how many teams it was set.
    """
    contacts = team_contacts(account)
    for contact in contacts:
        set_away_schedule(
            session, contact, schedule, now_s, by=account.display_name or account.username,
            via="web",
        )  # fmt: skip
    return len(contacts)
