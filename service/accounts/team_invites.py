"""A patient builds their own care team: inviting someone, taking someone off.

The patient names the person and their e-mail address. Someone without an account gets a
caregiver account (their address as its username where it fits) and an invitation link to
choose its password; someone with a caregiver account already (on another patient's team) has
the new patient added to it. Either way they stand on the team at once, last, **without a
channel**: they see the patient's page, but no alert reaches them, and escalation passes them
by (:func:`~service.alerts.care_team.escalation_levels`), until they add a channel on their
account page (:mod:`service.alerts.channel_changes`). Joining someone's team is their own step.

At most :data:`INVITES_PER_DAY` a day per patient, counted in the audit trail (so a restart
does not reset it): an invitation sends mail to an address the patient typed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.accounts.access import visible_patient_ids
from service.accounts.const import USERNAME_PATTERN
from service.accounts.password_reset import normalise_email, start_invitation
from service.alerts.audit import record
from service.db.accounts import add_account, find_account, link_contact
from service.db.care_teams import fits_column
from service.db.models import Account, AccountContact, AccountRole, AuditEvent, Contact, Role

INVITES_PER_DAY: Final = 5
"""Invitations per patient in 24 hours: a team is built over days, mail to typed addresses is
not sent in bulk."""
_DAY_S: Final = 86_400.0
_USERNAME: Final = re.compile(USERNAME_PATTERN)


@dataclass(frozen=True, slots=True)
class Invited:
    """Who was put on the team, and how they learn of it."""

    contact: Contact
    account: Account
    token: str | None
    """The invitation's token for a new account (to choose its password); None: they had one."""


def invite_to_team(
    session: Session, patient_id: str, by: Account, name: str, email: str, now_s: float
) -> Invited:
    """Put ``name`` (at ``email``) on ``patient_id``'s care team, last, without a channel.

    :class:`ConfigError` says why not: no name, not an address, someone on the team already,
    too many invitations today. Nothing else about the address is told: whether it has an
    account, and of which kind, is the person's own business (a caregiver account is someone's
    care team). A caregiver account with the address gets the patient; any other address, the
    one of a patient's or a researcher's account too, a new caregiver account.
    """
    name = " ".join(name.split())
    if not name:
        raise ConfigError("give their name: the alerts and the audit trail say who acted")
    fits_column(name, Contact.name, "the name")
    address = normalise_email(email)
    if _invited_today(session, patient_id, now_s) >= INVITES_PER_DAY:
        raise ConfigError(f"{INVITES_PER_DAY} invitations a day is the most: invite more tomorrow")
    account = session.scalar(
        select(Account)
        .where(Account.email == address, Account.role == AccountRole.CAREGIVER)
        .order_by(Account.disabled_s.is_not(None), Account.id)
        .limit(1)
    )
    token = None
    if account is None:
        account = add_account(
            session,
            _free_username(session, address),
            secrets.token_urlsafe(32),  # nobody knows it: they choose their own
            AccountRole.CAREGIVER,
            now_s,
            display_name=name,
        )
        account.email = address
        token = start_invitation(session, account, now_s)
    elif patient_id in visible_patient_ids(session, account):
        raise ConfigError("they are on the care team already")
    position = session.scalar(
        select(func.max(Contact.position)).where(
            Contact.patient_id == patient_id, Contact.role == Role.CAREGIVER
        )
    )
    contact = Contact(
        patient_id=patient_id,
        name=name,
        role=Role.CAREGIVER,
        position=0 if position is None else position + 1,
    )
    session.add(contact)
    session.flush()
    link_contact(session, account, contact.id, now_s)
    record(
        session,
        now_s,
        "team_invited",
        patient_id=patient_id,
        contact_id=contact.id,
        by=by.username,
        new_account=token is not None,
    )
    return Invited(contact, account, token)


def remind(session: Session, contact: Contact, by: Account, now_s: float) -> Invited:
    """Tell someone invited, who has added no channel yet, again (their link may have expired).

    Someone who never signed in gets a new invitation (the old link stops working); someone
    who did, a reminder to add a channel. Counts as an invitation of the day.
    """
    if contact.live_channels:
        raise ConfigError("they have a channel already: alerts reach them")
    link = session.get(AccountContact, contact.id)
    if link is None:
        raise ConfigError("they have no account to join with: ask the administrator")
    if _invited_today(session, contact.patient_id, now_s) >= INVITES_PER_DAY:
        raise ConfigError(f"{INVITES_PER_DAY} invitations a day is the most: try tomorrow")
    account = link.account
    token = start_invitation(session, account, now_s) if account.last_login_s is None else None
    record(
        session,
        now_s,
        "team_reminded",
        patient_id=contact.patient_id,
        contact_id=contact.id,
        by=by.username,
        new_link=token is not None,
    )
    return Invited(contact, account, token)


def _invited_today(session: Session, patient_id: str, now_s: float) -> int:
    return (
        session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.patient_id == patient_id,
                AuditEvent.action.in_(("team_invited", "team_reminded")),
                AuditEvent.time_s > now_s - _DAY_S,
            )
        )
        or 0
    )


def _free_username(session: Session, address: str) -> str:
    """The address as a username if it fits and is free, else the closest free one."""
    base = re.sub(r"[^a-z0-9._@-]", ".", address)[:60].lstrip("._@-") or "caregiver"
    if len(base) < 2:
        base = f"{base}.caregiver"
    candidate, number = base, 1
    while not _USERNAME.fullmatch(candidate) or find_account(session, candidate) is not None:
        number += 1
        candidate = f"{base[:60]}-{number}"
    return candidate
