"""The web app's second factor: time-based one-time codes (TOTP, RFC 6238) and recovery codes.

An account turns it on from its own page: a new secret is shown (as a QR code for an
authenticator app, and as text), and is kept only once a code made from it comes back. From then
on, signing in asks for a code after the password; a recovery code (ten are shown once, at
enrolment) stands in for a lost phone, and the administrator can turn the factor off
(``admin account second-factor-off``).

The secret is sealed at rest with the key of the channel URLs (:mod:`service.db.channel_crypto`):
a copy of the database alone makes no codes. A code is taken once: the step it was made for must
be later than the last one taken. Wrong codes count with wrong passwords towards the lockout
(:mod:`service.accounts.sign_in`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.accounts.const import (
    RECOVERY_CODE_CHARS,
    RECOVERY_CODE_COUNT,
    TOTP_DIGITS,
    TOTP_DRIFT_STEPS,
    TOTP_ISSUER,
    TOTP_STEP_S,
)
from service.alerts.audit import record
from service.db.accounts import end_sessions
from service.db.channel_crypto import open_secret, seal_secret
from service.db.models import Account, RecoveryCode

_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""Recovery code characters: lowercase letters and digits without 0/o, 1/i/l (read aloud, typed
from paper)."""


def has_second_factor(account: Account) -> bool:
    """Whether signing in as ``account`` asks for a code after the password."""
    return account.totp_secret is not None


def start_enrolment(session: Session, account: Account) -> str:
    """A new secret for ``account``, kept aside until :func:`confirm_enrolment` (returned)."""
    secret = pyotp.random_base32()  # 160 bits, RFC 4226 §4's recommendation
    account.totp_enrolling = seal_secret(session, secret)
    session.flush()
    return secret


def enrolling_secret(session: Session, account: Account) -> str | None:
    """The secret being enrolled, if :func:`start_enrolment` was called and not yet confirmed."""
    if account.totp_enrolling is None:
        return None
    return open_secret(session, account.totp_enrolling)


def provisioning_uri(secret: str, account: Account) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S).provisioning_uri(
        name=account.username, issuer_name=TOTP_ISSUER
    )


def confirm_enrolment(
    session: Session, account: Account, code: str, now_s: float
) -> list[str] | None:
    """Turn the factor on if ``code`` comes from the enrolling secret: its recovery codes.

    None (nothing changed) for a wrong code or no enrolment under way. Every session of the
    account ends: the caller opens a new one for the browser that enrolled.
    """
    secret = enrolling_secret(session, account)
    step = None if secret is None else _matching_step(secret, code, now_s, after=None)
    if step is None:
        return None
    account.totp_secret = account.totp_enrolling
    account.totp_enrolling = None
    account.totp_last_step = step
    codes = _new_recovery_codes(session, account)
    end_sessions(session, account)
    record(
        session, now_s, "second_factor_on", patient_id=account.patient_id, username=account.username
    )
    return codes


def renew_recovery_codes(session: Session, account: Account, now_s: float) -> list[str]:
    """Replace ``account``'s recovery codes (the old ones stop working): the new ones."""
    codes = _new_recovery_codes(session, account)
    record(
        session,
        now_s,
        "recovery_codes_renewed",
        patient_id=account.patient_id,
        username=account.username,
    )
    return codes


def turn_off(session: Session, account: Account, now_s: float, *, by_admin: bool) -> bool:
    """Sign ``account`` in with its password alone again; whether it had a second factor.

    Turned off by the administrator (a lost phone and lost recovery codes), every browser signed
    in as it is signed out too.
    """
    had = has_second_factor(account) or account.totp_enrolling is not None
    account.totp_secret = None
    account.totp_enrolling = None
    account.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    if by_admin:
        end_sessions(session, account)
    record(
        session,
        now_s,
        "second_factor_off",
        patient_id=account.patient_id,
        username=account.username,
        by="admin" if by_admin else "self",
    )
    session.flush()
    return had


def recovery_codes_left(session: Session, account: Account) -> int:
    """How many of ``account``'s recovery codes are unused."""
    return len(
        session.scalars(
            select(RecoveryCode.code_hash).where(RecoveryCode.account_id == account.id)
        ).all()
    )


def check_code(session: Session, account: Account, code: str, now_s: float) -> bool:
    """Whether ``code`` is a current TOTP code or an unused recovery code of ``account``.

    Either is then used up. Counting wrong codes is the caller's (the sign-in's lockout).
    """
    if account.totp_secret is None:
        return False
    typed = "".join(code.split()).lower()
    if len(typed) == TOTP_DIGITS and typed.isdigit():
        secret = open_secret(session, account.totp_secret)
        step = _matching_step(secret, typed, now_s, after=account.totp_last_step)
        if step is None:
            return False
        account.totp_last_step = step
        return True
    used = session.get(RecoveryCode, _code_hash(typed))
    if used is None or used.account_id != account.id:
        return False
    session.delete(used)
    session.flush()
    record(
        session,
        now_s,
        "recovery_code_used",
        patient_id=account.patient_id,
        username=account.username,
        left=recovery_codes_left(session, account),
    )
    return True


def _matching_step(secret: str, code: str, now_s: float, after: int | None) -> int | None:
    """The time step near ``now_s`` whose code ``code`` is, if later than ``after``."""
    typed = "".join(code.split())
    if len(typed) != TOTP_DIGITS or not typed.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S)
    now_step = int(now_s // TOTP_STEP_S)
    for step in range(now_step - TOTP_DRIFT_STEPS, now_step + TOTP_DRIFT_STEPS + 1):
        if (after is None or step > after) and hmac.compare_digest(
            totp.at(step * TOTP_STEP_S), typed
        ):
            return step
    return None


def _new_recovery_codes(session: Session, account: Account) -> list[str]:
    """Ten fresh codes for ``account`` (the old ones deleted), as shown: ``abcde-fghjk``."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    codes = [
        "".join(secrets.choice(_CODE_ALPHABET) for _ in range(RECOVERY_CODE_CHARS))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    for code in codes:
        session.add(RecoveryCode(code_hash=_code_hash(code), account_id=account.id))
    session.flush()
    half = RECOVERY_CODE_CHARS // 2
    return [f"{code[:half]}-{code[half:]}" for code in codes]


def _code_hash(typed: str) -> str:
    """What the database keeps of a recovery code: SHA-256 of it without spaces and dashes."""
    return hashlib.sha256(typed.replace("-", "").encode()).hexdigest()
