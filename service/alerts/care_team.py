"""Who a patient's alerts go to, and under which policy: read from the service database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.alerts.policy import Policy
from service.db.models import Contact, Patient, Role


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
    Removed contacts (``Contact.removed_s`` set) are not on the team any more and are skipped.
    """
    contacts = session.scalars(
        select(Contact)
        .where(
            Contact.patient_id == patient_id,
            Contact.role != Role.PATIENT,
            Contact.removed_s.is_(None),
        )
        .order_by(
            Contact.away_until_s.is_not(None),
            Contact.role == Role.EMERGENCY,
            Contact.position,
            Contact.id,
        )
    ).all()
    return list(contacts)


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
