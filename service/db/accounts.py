"""Web app accounts in the service database: ``admin account …`` and the sign-in's records.

Every change is on the audit trail under ``account_*`` actions, with the username and role only:
never a password or its hash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.accounts.const import USERNAME_PATTERN
from service.accounts.passwords import check_new_password, hash_password
from service.alerts.audit import record
from service.db.care_teams import fits_column, get_contact, get_patient
from service.db.models import Account, AccountContact, AccountRole, Role, WebSession

_USERNAME = re.compile(USERNAME_PATTERN)


def normalise_username(username: str) -> str:
    """``username`` as stored (trimmed, lowercase); :class:`ConfigError` when not allowed."""
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise ConfigError(
            f"username {username!r} is not allowed: 2-64 lowercase letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def find_account(session: Session, username: str) -> Account | None:
    """The account signed in as ``username`` (any case), or None."""
    name = username.strip().lower()
    return session.scalar(select(Account).where(Account.username == name))


def get_account(session: Session, username: str) -> Account:
    """The account, or :class:`ConfigError` saying how to list them."""
    account = find_account(session, username)
    if account is None:
        raise ConfigError(f"there is no account {username!r} (see `flarewatch admin account list`)")
    return account


def add_account(
    session: Session,
    username: str,
    password: str,
    role: AccountRole,
    now_s: float,
    *,
    patient_id: str | None = None,
    display_name: str = "",
) -> Account:
    """Create an account; a patient account names its patient, the others none."""
    name = normalise_username(username)
    if find_account(session, name) is not None:
        raise ConfigError(f"account {name!r} exists; change it with `admin account password`")
    if role is AccountRole.PATIENT:
        if patient_id is None:
            raise ConfigError("a patient account needs the patient it is (--patient ID)")
        get_patient(session, patient_id)
    elif patient_id is not None:
        raise ConfigError(f"a {role} account is not a patient: --patient is for patient accounts")
    fits_column(display_name, Account.display_name, "the display name")
    account = Account(
        username=name,
        password_hash=hash_password(check_new_password(password, name)),
        role=role.value,
        patient_id=patient_id,
        display_name=display_name.strip() or name,
        created_s=now_s,
        failed_logins=0,
    )
    session.add(account)
    session.flush()
    record(session, now_s, "account_added", patient_id=patient_id, username=name, role=role.value)
    return account


def set_password(session: Session, account: Account, password: str, now_s: float) -> int:
    """Give ``account`` a new password; every browser signed in as it is signed out (count)."""
    account.password_hash = hash_password(check_new_password(password, account.username))
    account.failed_logins = 0
    account.locked_until_s = None
    signed_out = end_sessions(session, account)
    _record(session, now_s, "account_password_set", account)
    return signed_out


def set_disabled(session: Session, account: Account, disabled: bool, now_s: float) -> int:
    """Disable ``account`` (signed out everywhere, count returned) or enable it again."""
    account.disabled_s = now_s if disabled else None
    account.failed_logins = 0
    account.locked_until_s = None
    signed_out = end_sessions(session, account) if disabled else 0
    action = "account_disabled" if disabled else "account_enabled"
    _record(session, now_s, action, account)
    return signed_out


def remove_account(session: Session, account: Account, now_s: float) -> None:
    """Delete ``account``, its care-team links and signed-in browsers."""
    end_sessions(session, account)
    session.execute(delete(AccountContact).where(AccountContact.account_id == account.id))
    session.delete(account)
    _record(session, now_s, "account_removed", account, role=account.role)
    session.flush()


def link_contact(session: Session, account: Account, contact_id: int, now_s: float) -> None:
    """Let a caregiver account see the patient of care-team contact ``contact_id`` (it is them)."""
    if account.role != AccountRole.CAREGIVER:
        raise ConfigError(
            f"account {account.username!r} is a {account.role}: only caregiver accounts "
            "stand on care teams"
        )
    contact = get_contact(session, contact_id)
    if contact.role == Role.PATIENT:
        raise ConfigError(
            f"contact {contact_id} is the patient's own channel; give the patient a patient "
            "account (`admin account add … --role patient --patient ID`)"
        )
    if contact.removed_s is not None:
        raise ConfigError(f"contact {contact_id} was removed from its care team")
    linked = session.get(AccountContact, contact_id)
    if linked is not None and linked.account_id != account.id:
        raise ConfigError(f"contact {contact_id} is already another account's: unlink it first")
    if linked is None:
        session.add(AccountContact(contact_id=contact_id, account_id=account.id))
        session.flush()
    record(
        session,
        now_s,
        "account_linked",
        patient_id=contact.patient_id,
        username=account.username,
        contact_id=contact_id,
    )


def unlink_contact(session: Session, contact_id: int, now_s: float) -> str | None:
    """Take contact ``contact_id`` from the account it was linked to; that username, or None."""
    linked = session.get(AccountContact, contact_id)
    if linked is None:
        return None
    username = linked.account.username
    patient_id = get_contact(session, contact_id).patient_id
    session.delete(linked)
    record(
        session,
        now_s,
        "account_unlinked",
        patient_id=patient_id,
        username=username,
        contact_id=contact_id,
    )
    session.flush()
    return username


def _record(
    session: Session, now_s: float, action: str, account: Account, role: str | None = None
) -> None:
    """Audit an account's change, on its patient's trail for a patient account.

    On that trail, the patient's erasure takes it too: a username is often the person's name.
    """
    record(
        session, now_s, action, patient_id=account.patient_id, username=account.username, role=role
    )


def list_accounts(session: Session) -> Sequence[Account]:
    """Every account, by username."""
    return session.scalars(select(Account).order_by(Account.username)).all()


def end_sessions(session: Session, account: Account) -> int:
    """Sign ``account`` out of every browser; how many were signed in."""
    ended = session.scalars(select(WebSession).where(WebSession.account_id == account.id)).all()
    for web_session in ended:
        session.delete(web_session)
    session.flush()
    return len(ended)
