"""Who a patient's alerts go to, and under which policy: read from the service database."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from service.alerts.policy import Policy
from service.db.models import Channel, Contact, Patient, Role


def policy_of(patient: Patient) -> Policy:
    """The patient's alerting policy as a pure value."""
    return Policy(
        cancel_window_s=patient.cancel_window_s,
        ack_timeout_s=patient.ack_timeout_s,
        repeat_interval_s=patient.repeat_interval_s,
        timezone=patient.timezone,
        quiet_start=patient.quiet_start,
        quiet_end=patient.quiet_end,
    )


def escalation_levels(session: Session, patient_id: str) -> list[Contact]:
    """Caregivers in care-team order, then emergency contacts: one contact per level.

    Members away (``Contact.away_until_s`` set, :mod:`service.alerts.absence`) come after
    everyone available, in the same order among themselves: alerts reach them only once
    everyone available was told and did not answer, or at once if the whole team is away.
    Removed contacts (``Contact.removed_s`` set) are not on the team any more and are skipped,
    and so are those without a channel in use (invited, they have not added one yet): waiting
    for them would only delay the next person.
    """
    reachable = exists().where(Channel.contact_id == Contact.id, Channel.removed_s.is_(None))
    contacts = session.scalars(
        select(Contact)
        .where(
            Contact.patient_id == patient_id,
            Contact.role != Role.PATIENT,
            Contact.removed_s.is_(None),
            reachable,
        )
        .order_by(
            Contact.away_until_s.is_not(None),
            Contact.role == Role.EMERGENCY,
            Contact.position,
            Contact.id,
        )
    ).all()
    return list(contacts)


def reaches_only(session: Session, contact: Contact) -> bool:
    """Whether ``contact`` is the only one its patient's alerts can reach (or none is)."""
    return all(level.id == contact.id for level in escalation_levels(session, contact.patient_id))


def team_members(session: Session, patient_id: str) -> list[Contact]:
    """Everyone on the care team as its page lists them, those without a channel yet too.

    Caregivers in their order, then emergency contacts. Invited members without a channel are
    listed (no alert reaches them yet), unlike in :func:`escalation_levels`.
    """
    return list(
        session.scalars(
            select(Contact)
            .where(
                Contact.patient_id == patient_id,
                Contact.role != Role.PATIENT,
                Contact.removed_s.is_(None),
            )
            .order_by(Contact.role == Role.EMERGENCY, Contact.position, Contact.id)
        ).all()
    )


def patient_contacts(session: Session, patient_id: str) -> list[Contact]:
    """The wearer's own channels (cancel links, signal notices)."""
    return list(
        session.scalars(
            select(Contact)
            .where(
                Contact.patient_id == patient_id,
                Contact.role == Role.PATIENT,
                Contact.removed_s.is_(None),
            )
            .order_by(Contact.position, Contact.id)
        ).all()
    )
