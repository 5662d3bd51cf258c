"""What each role may see: the one place the web app and its API ask.

* a **patient** sees their own record;
* a **caregiver** sees the patients on whose care teams they stand (a contact linked to their
  account, not removed): taken off a team, they lose the patient at their next page;
* a **researcher** sees no patient record at all, only consenting patients' episodes,
  pseudonymised (:mod:`service.accounts.research_view`).

A patient not visible to an account is answered as one that does not exist, so that ids cannot
be probed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Account, AccountContact, AccountRole, Contact, Patient


def visible_patient_ids(session: Session, account: Account) -> list[str]:
    """The ids of the patients ``account`` may see, sorted."""
    if account.role == AccountRole.PATIENT:
        return [account.patient_id] if account.patient_id is not None else []
    if account.role == AccountRole.CAREGIVER:
        ids = session.scalars(
            select(Contact.patient_id)
            .join(AccountContact, AccountContact.contact_id == Contact.id)
            .where(AccountContact.account_id == account.id, Contact.removed_s.is_(None))
            .distinct()
        ).all()
        return sorted(ids)
    return []


def visible_patient(session: Session, account: Account, patient_id: str) -> Patient | None:
    """The patient if ``account`` may see them, else None (also when there is no such patient)."""
    if patient_id not in visible_patient_ids(session, account):
        return None
    return session.get(Patient, patient_id)


def care_team_name(session: Session, account: Account, patient_id: str) -> str:
    """The name ``account`` has on ``patient_id``'s care team (what a label or ack says)."""
    if account.role == AccountRole.CAREGIVER:
        name = session.scalar(
            select(Contact.name)
            .join(AccountContact, AccountContact.contact_id == Contact.id)
            .where(
                AccountContact.account_id == account.id,
                Contact.patient_id == patient_id,
                Contact.removed_s.is_(None),
            )
            .limit(1)
        )
        if name:
            return name
    return account.display_name or account.username
