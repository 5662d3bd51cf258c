"""Erasing a patient from the service database: the records side of ``admin patient erase``.

A patient who leaves, or asks for their data to be erased, must leave nothing health-related
behind: their episodes and labels, their diary, alerts and every message sent about them, their
care team with its channel credentials, their devices, their signal states and their audit
trail, their own sign-in to the web app and their caregivers' access to them, and their id
where another patient's trail names them (a band moved from them to someone) or in the register
of research exports (their subject stays there, marked recalled:
:mod:`service.db.research_register`). One audit event stays, ``patient_erased`` with the
patient id and counts only: the proof that the erasure was done, and the mark a running service
follows to drop the patient's detector state (:func:`erasures_since`). The samples are erased
from the sample store by the caller (:meth:`service.stores.base.SampleStore.erase_patient`).

An erasure is refused while anything is still under way for the patient (an open episode, an
alert not over, a message waiting to be sent): it would pull the rows from under the escalation
scheduler, and the care team would never hear that an alarm they were told of is over.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Final, cast

from sqlalchemy import CursorResult, Delete, delete, func, or_, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.alerts.audit import record
from service.db import research_register
from service.db.models import (
    OPEN_ALERT_STATES,
    Account,
    AccountContact,
    Alert,
    AuditEvent,
    Channel,
    Contact,
    Delivery,
    DeliveryState,
    Device,
    DiaryEntry,
    Episode,
    EpisodeState,
    Patient,
    RecoveryCode,
    SignalState,
    WebSession,
)

PATIENT_ERASED: Final = "patient_erased"
"""The audit action of an erasure (the one record of the patient kept)."""

PATIENT_MENTIONS: Final = {"device_moved": "from_patient"}
"""Audit actions whose detail names another patient, and the key that does: a band moved to
someone (``service.db.care_teams.add_device``) is on the new owner's trail with its previous
owner. Their erasure blanks the name there; a patient's own copy shows :data:`OTHER_PATIENT`."""
ERASED_PATIENT: Final = "(erased)"
"""What an erased patient's id becomes where another patient's records name them."""
OTHER_PATIENT: Final = "(another patient)"
"""What a patient's export shows where their records name someone else."""

_IN_FLIGHT: Final = (DeliveryState.PENDING, DeliveryState.SENDING)


@dataclass(frozen=True, slots=True)
class ErasedRecords:
    """How many rows of each kind an erasure deleted."""

    registered: bool
    """Whether the patient was registered (an id with samples only has no row)."""
    episodes: int
    diary_entries: int
    alerts: int
    messages: int
    contacts: int
    devices: int
    audit_events: int
    research_exports: int
    """Research exports that held them: each recipient is to be asked to delete their subject."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """One ``patient_erased`` audit event, as a running service follows them."""

    event_id: int
    patient_id: str
    time_s: float
    registered_again: bool
    """The patient was registered after it (``admin patient add``, or their band's data arriving
    again): what the detectors learn of them now must be kept."""


def erase_patient_records(session: Session, patient_id: str, now_s: float) -> ErasedRecords:
    """Delete every row about ``patient_id`` and record the erasure; the caller commits.

    Raises :class:`ConfigError` naming what is still under way (nothing is deleted then).
    Erasing an id that has no rows records the erasure again, which is harmless: it is how a
    re-run after the sample store failed finishes the job.
    """
    _refuse_while_under_way(session, patient_id)
    alert_ids = select(Alert.id).where(Alert.patient_id == patient_id).scalar_subquery()
    contact_ids = select(Contact.id).where(Contact.patient_id == patient_id).scalar_subquery()
    messages = _deleted(
        session,
        delete(Delivery).where(
            or_(Delivery.alert_id.in_(alert_ids), Delivery.contact_id.in_(contact_ids))
        ),
    )
    audit_events = _deleted(
        session,
        delete(AuditEvent).where(
            or_(AuditEvent.patient_id == patient_id, AuditEvent.alert_id.in_(alert_ids))
        ),
    )
    alerts = _deleted(session, delete(Alert).where(Alert.patient_id == patient_id))
    episodes = _deleted(session, delete(Episode).where(Episode.patient_id == patient_id))
    diary_entries = _deleted(session, delete(DiaryEntry).where(DiaryEntry.patient_id == patient_id))
    _deleted(session, delete(SignalState).where(SignalState.patient_id == patient_id))
    _deleted(session, delete(Channel).where(Channel.contact_id.in_(contact_ids)))
    _deleted(session, delete(AccountContact).where(AccountContact.contact_id.in_(contact_ids)))
    account_ids = select(Account.id).where(Account.patient_id == patient_id).scalar_subquery()
    _deleted(session, delete(WebSession).where(WebSession.account_id.in_(account_ids)))
    _deleted(session, delete(RecoveryCode).where(RecoveryCode.account_id.in_(account_ids)))
    _deleted(session, delete(Account).where(Account.patient_id == patient_id))
    contacts = _deleted(session, delete(Contact).where(Contact.patient_id == patient_id))
    devices = _deleted(session, delete(Device).where(Device.patient_id == patient_id))
    registered = _deleted(session, delete(Patient).where(Patient.id == patient_id)) > 0
    _blank_mentions(session, patient_id)
    recalled = research_register.recall(
        session, patient_id, now_s, reason=research_register.RECALL_ERASED, forget=True
    )
    erased = ErasedRecords(
        registered=registered,
        episodes=episodes,
        diary_entries=diary_entries,
        alerts=alerts,
        messages=messages,
        contacts=contacts,
        devices=devices,
        audit_events=audit_events,
        research_exports=len(recalled),
    )
    # the counts, not what was counted: the audit events themselves are gone
    counts = {name: value for name, value in asdict(erased).items() if name != "audit_events"}
    record(session, now_s, PATIENT_ERASED, patient_id=patient_id, **counts)
    return erased


def devices_of(session: Session, patient_id: str) -> list[str]:
    """The bands that published under the patient's id: theirs, and those moved from them.

    Each has a retained status topic on the broker naming the patient (``flarewatch/v1/{patient}
    /{device}/status``), which the service may read but not clear: read this before the erasure.
    """
    devices = set(session.scalars(select(Device.id).where(Device.patient_id == patient_id)))
    for event, _ in _mentions(session, patient_id):
        device_id = event.detail.get("device_id")
        if isinstance(device_id, str):
            devices.add(device_id)
    return sorted(devices)


def erasures_since(session: Session, after_event_id: int) -> list[Erasure]:
    """Erasures recorded after the audit event ``after_event_id``, oldest first."""
    rows = session.execute(
        select(AuditEvent.id, AuditEvent.patient_id, AuditEvent.time_s)
        .where(AuditEvent.action == PATIENT_ERASED, AuditEvent.id > after_event_id)
        .order_by(AuditEvent.id)
    ).all()
    created = {
        patient_id: created_s
        for patient_id, created_s in session.execute(
            select(Patient.id, Patient.created_s).where(
                Patient.id.in_({row.patient_id for row in rows})
            )
        )
    }
    return [
        Erasure(
            row.id,
            row.patient_id,
            row.time_s,
            registered_again=created.get(row.patient_id, float("-inf")) >= row.time_s,
        )
        for row in rows
        if row.patient_id is not None
    ]


def _refuse_while_under_way(session: Session, patient_id: str) -> None:
    episode = session.scalars(
        select(Episode).where(Episode.patient_id == patient_id, Episode.state == EpisodeState.OPEN)
    ).first()
    if episode is not None:
        raise ConfigError(
            f"patient {patient_id!r} has an open episode ({episode.id}, {episode.kind}): erase "
            "them once it is over (an episode ends when the signals recover, at the latest "
            "after two hours)"
        )
    alert = session.scalars(
        select(Alert).where(Alert.patient_id == patient_id, Alert.state.in_(OPEN_ALERT_STATES))
    ).first()
    if alert is not None:
        raise ConfigError(
            f"patient {patient_id!r} has an alert that is not over ({alert.id}, {alert.kind}, "
            f"{alert.state}): erase them once it is (a caregiver acknowledges it with the link "
            "in its messages; a lost-signal alert also ends when the signal is back)"
        )
    waiting = session.scalar(
        select(func.count(Delivery.id))
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(Alert.patient_id == patient_id, Delivery.state.in_(_IN_FLIGHT))
    )
    if waiting:
        raise ConfigError(
            f"patient {patient_id!r} has {waiting} message(s) still being sent to the care "
            "team (an all-clear, or retries): erase them in a few minutes"
        )


def _mentions(session: Session, patient_id: str) -> Iterator[tuple[AuditEvent, str]]:
    """Audit events that name the patient in their detail (:data:`PATIENT_MENTIONS`), and the key.

    Few rows (bands changing hands); the detail is JSON, compared here rather than in SQL so that
    SQLite and PostgreSQL read it alike.
    """
    for action, key in PATIENT_MENTIONS.items():
        for event in session.scalars(select(AuditEvent).where(AuditEvent.action == action)):
            if event.detail.get(key) == patient_id:
                yield event, key


def _blank_mentions(session: Session, patient_id: str) -> None:
    """Blank the patient's id where other patients' audit trails name them (their own is gone)."""
    for event, key in list(_mentions(session, patient_id)):
        # a new dict: SQLAlchemy does not see changes inside a JSON value
        event.detail = {**event.detail, key: ERASED_PATIENT}


def _deleted(session: Session, statement: Delete) -> int:
    result = session.execute(statement)
    return int(cast(CursorResult[Any], result).rowcount)
