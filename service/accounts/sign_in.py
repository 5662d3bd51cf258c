"""Signing in and out of the web app: passwords checked with a lockout, sessions by cookie.

A browser that signed in holds a random token in a cookie; the database holds only its SHA-256
(:class:`~service.db.models.WebSession`), so a copy of the database signs nobody in. A session
ends when signed out, after :data:`SESSION_IDLE_S` unused or :data:`SESSION_MAX_S` in all, when
the account's password changes or it is disabled or removed.

Every refusal says the same thing, whether the username exists, the password is wrong or the
account waits after too many wrong ones: the page must not tell a guesser which usernames exist.

An account with a second factor (:mod:`service.accounts.second_factor`) gets, for the right
password, a session that sees nothing yet (``second_factor_due``) for
:data:`SECOND_FACTOR_WINDOW_S`: the right code ends it and opens a new one under a new token.
Wrong codes count with wrong passwords, and a right password alone does not reset the count, so
a guesser who has the password still gets only a few codes a lockout.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.accounts.const import (
    LOCKOUT_S,
    MAX_FAILED_LOGINS,
    SECOND_FACTOR_WINDOW_S,
    SESSION_IDLE_S,
    SESSION_MAX_S,
    SESSION_TOKEN_BYTES,
    SESSION_TOUCH_S,
)
from service.accounts.passwords import hash_password, needs_rehash, verify_password
from service.accounts.second_factor import check_code, has_second_factor
from service.alerts.audit import record
from service.db.accounts import find_account
from service.db.models import Account, WebSession

REFUSED_TEXT = (
    f"Wrong username or password. After {MAX_FAILED_LOGINS} wrong tries in a row an account "
    f"waits {LOCKOUT_S / 60:.0f} minutes before the next."
)
"""The one answer to every refused sign-in."""
REFUSED_CODE_TEXT = (
    f"Wrong code. After {MAX_FAILED_LOGINS} wrong tries in a row, passwords and codes together, "
    f"an account waits {LOCKOUT_S / 60:.0f} minutes before the next."
)
"""The one answer to every refused code of a second factor."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session just opened: the token goes into the cookie and nowhere else."""

    account: Account
    token: str
    second_factor_due: bool = False
    """The password was right; the code is still to come (:func:`finish_sign_in`)."""


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(
    session: Session, username: str, password: str, now_s: float, code: str = ""
) -> SignedIn | None:
    """Check the password and open a session; None when refused (:data:`REFUSED_TEXT`).

    With a second factor, the session waits for the code, unless ``code`` came with the
    password (a script signing in with both in one form). A refusal is written too (the count
    of wrong tries, the audit line): the caller commits either way.
    """
    account = find_account(session, username)
    if account is None:
        verify_password(None, password)  # the same cost as a wrong password
        return None
    if not check_password(session, account, password, now_s):
        return None
    if account.disabled_s is not None:
        _refused(session, account, now_s, "disabled")
        return None
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    forget_expired_sessions(session, now_s)  # browsers that never signed out
    if has_second_factor(account):
        if not code.strip():
            return open_session(session, account, now_s, second_factor_due=True)
        if not take_code(session, account, code, now_s):
            return None
    return open_session(session, account, now_s)


def open_session(
    session: Session, account: Account, now_s: float, *, second_factor_due: bool = False
) -> SignedIn:
    """A new session of ``account``, whose sign-in was just checked (the token, once)."""
    if not second_factor_due:
        account.failed_logins = 0
        account.locked_until_s = None
        account.last_login_s = now_s
    token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    session.add(
        WebSession(
            token_hash=token_hash(token),
            account_id=account.id,
            created_s=now_s,
            last_seen_s=now_s,
            second_factor_due=second_factor_due,
        )
    )
    action = "second_factor_asked" if second_factor_due else "sign_in"
    record(session, now_s, action, patient_id=account.patient_id, username=account.username)
    session.flush()
    return SignedIn(account, token, second_factor_due)


def awaiting_code(session: Session, token: str | None, now_s: float) -> Account | None:
    """The account whose browser gave the right password and owes its code (within the window)."""
    web_session = session.get(WebSession, token_hash(token)) if token else None
    if web_session is None or not web_session.second_factor_due:
        return None
    if now_s - web_session.created_s > SECOND_FACTOR_WINDOW_S:
        session.delete(web_session)
        session.flush()
        return None
    return web_session.account


def finish_sign_in(session: Session, token: str | None, code: str, now_s: float) -> SignedIn | None:
    """Take the code owed by the browser holding ``token``: a complete session, or None.

    A wrong code counts towards the lockout; once the account waits, the browser starts over
    with the password.
    """
    account = awaiting_code(session, token, now_s)
    if account is None or token is None:
        return None
    if not take_code(session, account, code, now_s):
        if account.locked_until_s is not None and now_s < account.locked_until_s:
            session.execute(delete(WebSession).where(WebSession.token_hash == token_hash(token)))
        return None
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash(token)))
    return open_session(session, account, now_s)


def take_code(session: Session, account: Account, code: str, now_s: float) -> bool:
    """Whether ``code`` is the account's (never while it waits); a wrong one counts.

    What signing in and turning the factor off ask, counted as wrong sign-ins.
    """
    if account.locked_until_s is not None and now_s < account.locked_until_s:
        _refused(session, account, now_s, "locked")
        return False
    if check_code(session, account, code, now_s):
        return True
    _count_failure(account, now_s)
    _refused(session, account, now_s, "wrong_code")
    return False


def _count_failure(account: Account, now_s: float) -> None:
    account.failed_logins += 1
    if account.failed_logins >= MAX_FAILED_LOGINS:
        account.locked_until_s = now_s + LOCKOUT_S


def check_password(session: Session, account: Account, password: str, now_s: float) -> bool:
    """Whether ``password`` is the account's, counting wrong ones towards the lockout.

    A waiting account's password is not even checked. Also what changing one's own password
    asks first: a browser left signed in cannot be used to guess it.
    """
    if account.locked_until_s is not None and now_s < account.locked_until_s:
        _refused(session, account, now_s, "locked")
        return False
    if not verify_password(account.password_hash, password):
        _count_failure(account, now_s)
        _refused(session, account, now_s, "wrong_password")
        return False
    return True


def _refused(session: Session, account: Account, now_s: float, reason: str) -> None:
    """Record a refused sign-in of an existing account (the reason is for the trail only)."""
    record(
        session,
        now_s,
        "sign_in_refused",
        patient_id=account.patient_id,
        username=account.username,
        reason=reason,
        failed_logins=account.failed_logins,
    )
    session.flush()


def signed_in_account(session: Session, token: str | None, now_s: float) -> Account | None:
    """The account whose browser holds ``token``, or None (no session, expired, disabled)."""
    if not token:
        return None
    web_session = session.get(WebSession, token_hash(token))
    if web_session is None:
        return None
    if web_session.second_factor_due:
        return None
    expired = (
        now_s - web_session.last_seen_s > SESSION_IDLE_S
        or now_s - web_session.created_s > SESSION_MAX_S
    )
    if expired or web_session.account.disabled_s is not None:
        session.delete(web_session)
        session.flush()
        return None
    if now_s - web_session.last_seen_s > SESSION_TOUCH_S:
        web_session.last_seen_s = now_s
    return web_session.account


def sign_out(session: Session, token: str | None, now_s: float) -> bool:
    """End the session of ``token``; whether there was one."""
    if not token:
        return False
    web_session = session.get(WebSession, token_hash(token))
    if web_session is None:
        return False
    account = web_session.account
    record(session, now_s, "sign_out", patient_id=account.patient_id, username=account.username)
    session.delete(web_session)
    session.flush()
    return True


def forget_expired_sessions(session: Session, now_s: float) -> int:
    """Delete every session past its idle or absolute limit; how many."""
    result = session.execute(
        delete(WebSession).where(
            (WebSession.last_seen_s < now_s - SESSION_IDLE_S)
            | (WebSession.created_s < now_s - SESSION_MAX_S)
            | (
                WebSession.second_factor_due
                & (WebSession.created_s < now_s - SECOND_FACTOR_WINDOW_S)
            )
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def signed_in_browsers(session: Session, account: Account, now_s: float) -> int:
    """How many browsers are signed in as ``account`` now (complete, unexpired sessions)."""
    return len(
        session.scalars(
            select(WebSession.token_hash).where(
                WebSession.account_id == account.id,
                WebSession.second_factor_due.is_(False),
                WebSession.last_seen_s >= now_s - SESSION_IDLE_S,
                WebSession.created_s >= now_s - SESSION_MAX_S,
            )
        ).all()
    )


def sign_out_others(session: Session, account: Account, token: str | None, now_s: float) -> int:
    """Sign ``account`` out of every browser but the one holding ``token``; how many."""
    keep = token_hash(token) if token else ""
    result = session.execute(
        delete(WebSession).where(WebSession.account_id == account.id, WebSession.token_hash != keep)
    )
    ended = int(getattr(result, "rowcount", 0) or 0)
    record(
        session,
        now_s,
        "signed_out_elsewhere",
        patient_id=account.patient_id,
        username=account.username,
        browsers=ended,
    )
    session.flush()
    return ended
