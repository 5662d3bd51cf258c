"""Registering patients, devices and care teams: the operations behind ``flarewatch admin``.

Kept apart from the CLI so the web API (a later issue) and the tests use the same code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from flarewatch.topics import is_valid_id
from models.profiles import DetectionProfile
from service.alerts.audit import record
from service.alerts.care_team import escalation_levels
from service.alerts.const import (
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_CANCEL_WINDOW_S,
    DEFAULT_OFF_NOTICE_S,
    DEFAULT_OFF_REMINDER_S,
    DEFAULT_REPEAT_INTERVAL_S,
    DEFAULT_SIGNAL_WINDOW_S,
)
from service.alerts.errors import UnknownPatientError
from service.alerts.policy import parse_hhmm
from service.alerts.team_changes import (
    close_level,
    keep_told_ahead,
    skip_pending,
    wake_stalled_alerts,
)
from service.db.channel_crypto import seal_url
from service.db.emergency_plan import tidy_plan
from service.db.models import (
    Channel,
    Contact,
    Device,
    Patient,
    Role,
)

REMOVED_CHANNEL_URL: Final = "removed://"
"""What a removed contact's channel URLs are overwritten with: no Apprise plugin takes it, so a
message already in flight to the contact fails instead of reaching them, and their credentials
(tokens, passwords in the URL) are not kept."""


@dataclass(frozen=True, slots=True)
class PolicyUpdate:
    """Changes to a patient's policy; ``None`` leaves a field as it is."""

    cancel_window_s: float | None = None
    signal_window_s: float | None = None
    """The wearer's time to answer a lost-signal notice before caregivers are told."""
    off_reminder_s: float | None = None
    """After "I took it off", when to remind the wearer the band is still off (0: never)."""
    off_notice_s: float | None = None
    """A band taken off and silent this long: the caregivers are told once (0: never)."""
    ack_timeout_s: float | None = None
    repeat_interval_s: float | None = None
    quiet_hours: str | None = None
    """"22:00-07:00", or "" to switch quiet hours off."""
    emergency_plan: str | None = None
    timezone: str | None = None
    display_name: str | None = None
    detection_profile: str | None = None
    """"sensitive", "balanced", "personal" or "quiet" (``models.profiles.DetectionProfile``)."""


def parse_profile(value: str) -> DetectionProfile:
    """The detection profile named ``value``, or a :class:`ConfigError` listing the choices."""
    try:
        return DetectionProfile(value)
    except ValueError:
        choices = ", ".join(p.value for p in DetectionProfile)
        raise ConfigError(f"unknown detection profile {value!r}: choose one of {choices}") from None


def fits_column(value: str, column: Any, what: str) -> str:
    """``value`` if it fits ``column``; PostgreSQL refuses longer text where SQLite stores it."""
    limit = column.type.length
    if limit is not None and len(value) > limit:
        raise ConfigError(f"{what} is {len(value)} characters long; at most {limit} fit")
    return value


def _check_id(value: str, what: str) -> str:
    if not is_valid_id(value):
        raise ConfigError(f"{what} id {value!r} may only hold letters, digits, '_', '.', '-'")
    return value


def get_patient(session: Session, patient_id: str) -> Patient:
    """The patient, or :class:`UnknownPatientError` with advice."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UnknownPatientError(patient_id)
    return patient


def add_patient(session: Session, patient_id: str, now_s: float, update: PolicyUpdate) -> Patient:
    """Register a patient with the default policy, changed by ``update``."""
    _check_id(patient_id, "patient")
    if session.get(Patient, patient_id) is not None:
        raise ConfigError(f"patient {patient_id!r} exists; change it with `admin patient set`")
    patient = Patient(
        id=patient_id,
        display_name=patient_id,
        timezone="UTC",
        emergency_plan="",
        cancel_window_s=DEFAULT_CANCEL_WINDOW_S,
        signal_window_s=DEFAULT_SIGNAL_WINDOW_S,
        off_reminder_s=DEFAULT_OFF_REMINDER_S,
        off_notice_s=DEFAULT_OFF_NOTICE_S,
        ack_timeout_s=DEFAULT_ACK_TIMEOUT_S,
        repeat_interval_s=DEFAULT_REPEAT_INTERVAL_S,
        created_s=now_s,
        detection_profile=DetectionProfile.BALANCED.value,
    )
    session.add(patient)
    set_policy(patient, update)
    session.flush()
    return patient


_DURATIONS: Final = (
    "cancel_window_s",
    "signal_window_s",
    "off_reminder_s",
    "off_notice_s",
    "ack_timeout_s",
    "repeat_interval_s",
)
_MAY_BE_ZERO: Final = frozenset(
    {"cancel_window_s", "signal_window_s", "off_reminder_s", "off_notice_s"}
)
"""No window (tell the caregivers at once), no reminder, no notice."""


def set_policy(patient: Patient, update: PolicyUpdate) -> None:
    """Apply ``update`` to ``patient`` after checking every value."""
    for name in _DURATIONS:
        value = getattr(update, name)
        if value is not None:
            # NaN passes both comparisons; NaN or infinity would stop the alert's timer for good
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a number of seconds, got {value}")
            if value < 0 or (name not in _MAY_BE_ZERO and value <= 0):
                zero = " or 0" if name in _MAY_BE_ZERO else ""
                raise ConfigError(f"{name} must be positive{zero}, got {value}")
            setattr(patient, name, float(value))
    if update.quiet_hours is not None:
        if update.quiet_hours == "":
            patient.quiet_start = patient.quiet_end = None
        else:
            start, sep, end = update.quiet_hours.partition("-")
            if not sep:
                raise ConfigError("quiet hours look like 22:00-07:00 (local time)")
            # Stored normalised ("7:5" -> "07:05"): the column holds exactly HH:MM.
            patient.quiet_start = parse_hhmm(start).strftime("%H:%M")
            patient.quiet_end = parse_hhmm(end).strftime("%H:%M")
    if update.timezone is not None:
        _check_timezone(update.timezone)
        patient.timezone = update.timezone
    if update.emergency_plan is not None:
        patient.emergency_plan = tidy_plan(update.emergency_plan)
    if update.display_name is not None:
        patient.display_name = fits_column(update.display_name, Patient.display_name, "the name")
    if update.detection_profile is not None:
        patient.detection_profile = parse_profile(update.detection_profile).value


def set_research_consent(session: Session, patient: Patient, consent: bool, now_s: float) -> bool:
    """Record that the patient gave (or withdrew) consent to research exports; audited.

    Returns whether it changed. Withdrawn, the patient is left out of every export from then on;
    the exports already handed over are for the caller to recall (``service.db.research_register``).
    """
    if (patient.research_consent_s is not None) == consent:
        return False
    patient.research_consent_s = now_s if consent else None
    action = "research_consent_given" if consent else "research_consent_withdrawn"
    record(session, now_s, action, patient_id=patient.id)
    return True


def add_device(
    session: Session,
    patient_id: str,
    device_id: str,
    label: str = "",
    *,
    move_at_s: float | None = None,
) -> Device:
    """Assign a wearable to a patient; one registered to another patient moves only if asked.

    A device's owner decides where its data goes and what the broker lets its gateway publish,
    so a typo must not reroute it: without ``move_at_s`` (the time of an explicit move, which
    the audit trail records) a device of another patient is refused, naming its owner.
    """
    get_patient(session, patient_id)
    _check_id(device_id, "device")
    fits_column(label, Device.label, "the device label")
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id, patient_id=patient_id, label=label)
        session.add(device)
    elif device.patient_id != patient_id:
        if move_at_s is None:
            raise ConfigError(
                f"device {device_id} is registered to patient {device.patient_id}: assigning it "
                f"to {patient_id} would send its data and its broker permissions there. If the "
                "band really changed hands, add --move (recorded in the audit trail)"
            )
        record(
            session,
            move_at_s,
            "device_moved",
            patient_id=patient_id,
            device_id=device_id,
            from_patient=device.patient_id,
        )
        device.patient_id, device.label = patient_id, label or device.label
    else:
        device.label = label or device.label
    session.flush()
    return device


def add_contact(
    session: Session,
    patient_id: str,
    name: str,
    urls: Sequence[str],
    *,
    role: Role = Role.CAREGIVER,
    now_s: float | None = None,
) -> Contact:
    """Add a caregiver, emergency contact or the patient's own channel, last in the order.

    Caregivers come before emergency contacts, so a caregiver added while an open alert has
    reached an emergency contact is put ahead of someone it told: it is told now
    (:func:`~service.alerts.team_changes.keep_told_ahead`, at ``now_s``, default the wall
    clock). An alert with nobody left to tell goes on to the new contact.
    """
    get_patient(session, patient_id)
    told_before = [c.id for c in escalation_levels(session, patient_id)]
    if not urls:
        raise ConfigError("a contact needs at least one Apprise URL (--url)")
    if not name.strip():
        raise ConfigError("a contact needs a name: the alerts and the audit trail say who acted")
    fits_column(name, Contact.name, "the contact name")
    existing = session.scalars(
        select(Contact).where(Contact.patient_id == patient_id, Contact.role == role)
    ).all()
    contact = Contact(
        patient_id=patient_id,
        name=name,
        role=role,
        position=max((c.position for c in existing), default=-1) + 1,
        channels=[
            Channel(sealed_url=seal_url(session, url), position=i) for i, url in enumerate(urls)
        ],
    )
    session.add(contact)
    session.flush()
    if role is not Role.PATIENT:
        now_s = time.time() if now_s is None else now_s
        keep_told_ahead(session, patient_id, told_before, now_s, reason="contact_added")
        wake_stalled_alerts(session, patient_id, now_s)
        session.flush()
    return contact


def reorder_contacts(
    session: Session,
    patient_id: str,
    contact_ids: Sequence[int],
    now_s: float,
    *,
    by: str = "administrator",
    via: str = "cli",
) -> None:
    """Set the escalation order: ``contact_ids`` first to last (all caregivers of the patient).

    Open alerts keep telling everyone they told; whoever the new order puts before one of them
    is told now (:func:`~service.alerts.team_changes.keep_told_ahead`). Audited with ``by`` and
    ``via``.
    """
    get_patient(session, patient_id)
    told_before = [c.id for c in escalation_levels(session, patient_id)]
    caregivers = {
        c.id: c
        for c in session.scalars(
            select(Contact).where(
                Contact.patient_id == patient_id,
                Contact.role == Role.CAREGIVER,
                Contact.removed_s.is_(None),
            )
        )
    }
    if sorted(contact_ids) != sorted(caregivers):
        raise ConfigError(
            f"give every caregiver id of {patient_id} exactly once: {sorted(caregivers)}"
        )
    for position, contact_id in enumerate(contact_ids):
        caregivers[contact_id].position = position
    session.flush()
    record(
        session,
        now_s,
        "contacts_reordered",
        patient_id=patient_id,
        order=",".join(str(contact_id) for contact_id in contact_ids),
        by=by,
        via=via,
    )
    keep_told_ahead(session, patient_id, told_before, now_s)


def move_up(
    session: Session, patient_id: str, contact_id: int, now_s: float, *, by: str, via: str
) -> None:
    """Put caregiver ``contact_id`` one place earlier in the patient's order (see reorder)."""
    order = list(
        session.scalars(
            select(Contact.id)
            .where(
                Contact.patient_id == patient_id,
                Contact.role == Role.CAREGIVER,
                Contact.removed_s.is_(None),
            )
            .order_by(Contact.position, Contact.id)
        )
    )
    if contact_id not in order:
        raise ConfigError(f"contact {contact_id} is no caregiver of {patient_id}")
    index = order.index(contact_id)
    if index == 0:
        raise ConfigError("they are first already")
    order[index - 1], order[index] = order[index], order[index - 1]
    reorder_contacts(session, patient_id, order, now_s, by=by, via=via)


def set_quiet_hours(
    session: Session, patient: Patient, quiet_hours: str, now_s: float, *, by: str, via: str
) -> None:
    """Set the patient's quiet hours ("22:00-07:00", "" for none); audited with who and how.

    Only warnings wait for their end; critical alerts never do.
    """
    start, _, end = quiet_hours.partition("-")
    if quiet_hours and start.strip() == end.strip():
        raise ConfigError("quiet hours that start when they end are none: choose No quiet hours")
    set_policy(patient, PolicyUpdate(quiet_hours=quiet_hours))
    shown = f"{patient.quiet_start}-{patient.quiet_end}" if patient.quiet_start else "off"
    record(
        session,
        now_s,
        "quiet_hours_changed",
        patient_id=patient.id,
        quiet_hours=shown,
        by=by,
        via=via,
    )


def get_contact(session: Session, contact_id: int) -> Contact:
    """The contact, or a :class:`ConfigError` if there is none or it was removed."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.removed_s is not None:
        raise ConfigError(f"no contact with id {contact_id} on a care team")
    return contact


def remove_device(session: Session, device_id: str, now_s: float) -> Device:
    """Take a wearable off the registry (lost, broken, retired); recorded in the audit trail.

    Its samples stay with its patient. What the broker lets its gateway publish for it changes
    when ``admin broker-auth`` is run again; its gateway keeps reporting it until it is taken off
    the gateway's devices file.
    """
    device = session.get(Device, device_id)
    if device is None:
        raise ConfigError(f"there is no device {device_id!r} (see `flarewatch admin device list`)")
    session.delete(device)
    record(session, now_s, "device_removed", patient_id=device.patient_id, device_id=device_id)
    session.flush()
    return device


def remove_contact(
    session: Session,
    contact_id: int,
    now_s: float,
    *,
    by: str = "administrator",
    via: str = "cli",
) -> Contact:
    """Take a contact off its care team for good; the row stays for the record.

    Deliveries and the audit trail name the contact, so it is marked removed, not deleted:
    escalation skips it from now on, its queued messages are skipped and its channel URLs are
    overwritten (see :data:`REMOVED_CHANNEL_URL`). Links it was already sent stop working
    (``AlertManager`` refuses them as ``revoked``): it can no longer stop an escalation.
    """
    contact = get_contact(session, contact_id)
    levels = [c.id for c in escalation_levels(session, contact.patient_id)]
    contact.removed_s = now_s
    for channel in contact.channels:
        channel.sealed_url = seal_url(session, REMOVED_CHANNEL_URL)
    skipped = len(skip_pending(session, contact, now_s, reason="contact_removed"))
    if contact.id in levels:
        close_level(session, contact, levels.index(contact.id), len(levels) - 1, now_s)
    record(
        session,
        now_s,
        "contact_removed",
        patient_id=contact.patient_id,
        contact_id=contact.id,
        role=contact.role,
        deliveries_skipped=skipped,
        by=by,
        via=via,
    )
    session.flush()
    return contact


_NOT_A_PLACE = frozenset({"localtime", "posixrules", "Factory"})
"""Names the time zone database answers to that are not a place's zone: ``localtime`` is the
server's own (the container's, often UTC), ``Factory`` has no offset meant for use."""


def _check_timezone(name: str) -> None:
    """Refuse a name that is not an IANA zone of a place (quiet hours are read in it)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (e.g. Europe/Berlin)") from exc
    if name in _NOT_A_PLACE or name.startswith(("right/", "posix/")):
        # right/ zones count leap seconds, so their clock is 27 s off the epoch times stored
        raise ConfigError(f"{name!r} is not a place's time zone: give one, e.g. Europe/Berlin")
