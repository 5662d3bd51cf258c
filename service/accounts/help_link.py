"""A patient's help link: ``/help/TOKEN`` alerts their care team without signing in.

In an emergency a password is one step too many: a session ends after 12 hours unused, and a
reacting patient may not manage to type. The patient makes the link on their account page (with
their password) and keeps it on their phone's home screen; opening it shows one button, which
raises the same call for help as **I need help now** (:mod:`service.alerts.help_requests`).
The link reads nothing of their record: anyone holding it can only alert the care team, so it
is kept like a key (256 random bits; the database keeps their SHA-256) and replaced or removed
from the same page if lost.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.const import SESSION_TOKEN_BYTES
from service.accounts.sign_in import token_hash
from service.alerts.audit import record
from service.db.models import Account, AccountRole

HELP_PATH = "/help"


def make_help_link(session: Session, account: Account, now_s: float) -> str:
    """A new help link token for a patient account (the old link stops working)."""
    if account.role != AccountRole.PATIENT:
        raise ValueError("only a patient account has a help link")
    token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    account.help_link_hash = token_hash(token)
    record(
        session, now_s, "help_link_made", patient_id=account.patient_id, username=account.username
    )
    session.flush()
    return token


def remove_help_link(session: Session, account: Account, now_s: float) -> None:
    """The account's help link stops working."""
    account.help_link_hash = None
    record(
        session,
        now_s,
        "help_link_removed",
        patient_id=account.patient_id,
        username=account.username,
    )
    session.flush()


def help_link_account(session: Session, token: str) -> Account | None:
    """The patient account whose help link ``token`` is (none, or disabled: None)."""
    if not token:
        return None
    account = session.scalar(select(Account).where(Account.help_link_hash == token_hash(token)))
    if account is None or account.disabled_s is not None or account.patient_id is None:
        return None
    return account
