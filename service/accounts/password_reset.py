"""Setting a password from a link: a reset sent by e-mail, or an invitation to a new account.

Asking names the account by its username or its e-mail address, and gets the same answer
whatever exists: the form must not tell a guesser which usernames or addresses have accounts.
A link holds a random token (the database keeps its SHA-256 only), works once and for
:data:`RESET_LINK_S`; at most one mail goes to an account every :data:`RESET_MAIL_EVERY_S`.
Setting the password signs the account out everywhere and ends its wait after wrong
passwords; a second factor is still asked at the next sign-in (a mailbox alone is not enough).

An invitation is the same link made by the administrator for a new account (or one whose
password nobody knows), good for :data:`~service.accounts.const.INVITE_LINK_S`: the person sets
their own password, and none passes through other hands.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.accounts.const import (
    EMAIL_PATTERN,
    INVITE_LINK_S,
    RESET_LINK_S,
    RESET_MAIL_EVERY_S,
    SESSION_TOKEN_BYTES,
)
from service.accounts.sign_in import token_hash
from service.alerts.audit import record
from service.db.accounts import set_password
from service.db.models import Account, PasswordReset

_EMAIL = re.compile(EMAIL_PATTERN)


def normalise_email(email: str) -> str:
    """``email`` as stored (trimmed, lowercase); :class:`ConfigError` when it is not one."""
    address = email.strip().lower()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        raise ConfigError(f"{email[:80]!r} is not an e-mail address")
    return address


def set_email(session: Session, account: Account, email: str | None, now_s: float) -> None:
    """Give ``account`` the address its reset links go to (None: no link by e-mail)."""
    account.email = None if email is None else normalise_email(email)
    record(
        session,
        now_s,
        "account_email_set",
        patient_id=account.patient_id,
        username=account.username,
        has_email=account.email is not None,
    )  # the address itself stays out of the trail


def start_resets(session: Session, named: str, now_s: float) -> list[tuple[Account, str]]:
    """New links for the accounts ``named`` (a username or an address): each with its token.

    Accounts without an address, disabled ones and those mailed within the last
    :data:`RESET_MAIL_EVERY_S` get none. The caller mails each link and commits.
    """
    name = named.strip().lower()[:254]
    if not name:
        return []
    accounts = session.scalars(
        select(Account).where(or_(Account.username == name, Account.email == name))
    ).all()
    links = []
    for account in accounts:
        if account.email is None or account.disabled_s is not None:
            continue
        last_s = session.scalar(
            select(func.max(PasswordReset.created_s)).where(PasswordReset.account_id == account.id)
        )
        if last_s is not None and now_s - last_s < RESET_MAIL_EVERY_S:
            continue
        token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
        session.add(
            PasswordReset(token_hash=token_hash(token), account_id=account.id, created_s=now_s)
        )
        record(
            session,
            now_s,
            "password_reset_sent",
            patient_id=account.patient_id,
            username=account.username,
        )
        links.append((account, token))
    session.flush()
    return links


def start_invitation(session: Session, account: Account, now_s: float) -> str:
    """A new invitation of ``account``: the token of a link to set its password, for days.

    It replaces the account's other links. Audited (``account_invited``).
    """
    session.execute(delete(PasswordReset).where(PasswordReset.account_id == account.id))
    token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    session.add(
        PasswordReset(
            token_hash=token_hash(token),
            account_id=account.id,
            created_s=now_s,
            expires_s=now_s + INVITE_LINK_S,
        )
    )
    record(
        session, now_s, "account_invited", patient_id=account.patient_id, username=account.username
    )
    session.flush()
    return token


def is_invitation(session: Session, token: str) -> bool:
    """Whether ``token`` is an invitation's (a first password), not a reset link's."""
    reset = session.get(PasswordReset, token_hash(token))
    return reset is not None and reset.expires_s is not None


def reset_account(session: Session, token: str, now_s: float) -> Account | None:
    """The account a link's ``token`` sets a password for, while it works; else None."""
    reset = session.get(PasswordReset, token_hash(token))
    if reset is None or reset.used_s is not None:
        return None
    ends_s = reset.expires_s if reset.expires_s is not None else reset.created_s + RESET_LINK_S
    if now_s > ends_s:
        return None
    if reset.account.disabled_s is not None:
        return None
    return reset.account


def finish_reset(session: Session, token: str, password: str, now_s: float) -> Account | None:
    """Set ``password`` through the link: the account, or None for a link that does not work.

    A password the rules refuse raises :class:`ConfigError` and leaves the link working. The
    account's other links stop working.
    """
    account = reset_account(session, token, now_s)
    if account is None:
        return None
    set_password(session, account, password, now_s)
    session.execute(delete(PasswordReset).where(PasswordReset.account_id == account.id))
    record(
        session,
        now_s,
        "password_reset_used",
        patient_id=account.patient_id,
        username=account.username,
    )
    session.flush()
    return account
