"""Registering patients, devices and care teams: the operations behind ``flarewatch admin``.

Kept apart from the CLI so the web API (a later issue) and the tests use the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from flarewatch.topics import is_valid_id
from models.profiles import DetectionProfile
from service.alerts.const import (
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_CANCEL_WINDOW_S,
    DEFAULT_REPEAT_INTERVAL_S,
    DEFAULT_SIGNAL_WINDOW_S,
)
from service.alerts.errors import UnknownPatientError
from service.alerts.policy import parse_hhmm
from service.db.channel_crypto import seal_url
from service.db.models import Channel, Contact, Device, Patient, Role


@dataclass(frozen=True, slots=True)
class PolicyUpdate:
    """Changes to a patient's policy; ``None`` leaves a field as it is."""

    cancel_window_s: float | None = None
    signal_window_s: float | None = None
    """The wearer's time to answer a lost-signal notice before caregivers are told."""
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
        ack_timeout_s=DEFAULT_ACK_TIMEOUT_S,
        repeat_interval_s=DEFAULT_REPEAT_INTERVAL_S,
        created_s=now_s,
        detection_profile=DetectionProfile.BALANCED.value,
    )
    session.add(patient)
    set_policy(patient, update)
    session.flush()
    return patient


def set_policy(patient: Patient, update: PolicyUpdate) -> None:
    """Apply ``update`` to ``patient`` after checking every value."""
    for name in ("cancel_window_s", "signal_window_s", "ack_timeout_s", "repeat_interval_s"):
        value = getattr(update, name)
        if value is not None:
            if value < 0 or (not name.endswith("window_s") and value <= 0):
                raise ConfigError(f"{name} must be positive (a window may be 0), got {value}")
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
        try:
            ZoneInfo(update.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"unknown time zone {update.timezone!r} (e.g. Europe/Berlin)"
            ) from exc
        patient.timezone = update.timezone
    if update.emergency_plan is not None:
        patient.emergency_plan = update.emergency_plan
    if update.display_name is not None:
        patient.display_name = fits_column(update.display_name, Patient.display_name, "the name")
    if update.detection_profile is not None:
        patient.detection_profile = parse_profile(update.detection_profile).value


def add_device(session: Session, patient_id: str, device_id: str, label: str = "") -> Device:
    """Assign a wearable to a patient."""
    get_patient(session, patient_id)
    _check_id(device_id, "device")
    fits_column(label, Device.label, "the device label")
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id, patient_id=patient_id, label=label)
        session.add(device)
    else:
        device.patient_id, device.label = patient_id, label or device.label
    session.flush()
    return device


def add_contact(
    session: Session,
    patient_id: str,
    name: str,
    urls: Sequence[str],
    *,
    role: Role = Role.CAREGIVER,
) -> Contact:
    """Add a caregiver, emergency contact or the patient's own channel, last in the order."""
    get_patient(session, patient_id)
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
    return contact


def reorder_contacts(session: Session, patient_id: str, contact_ids: Sequence[int]) -> None:
    """Set the escalation order: ``contact_ids`` first to last (all caregivers of the patient)."""
    get_patient(session, patient_id)
    caregivers = {
        c.id: c
        for c in session.scalars(
            select(Contact).where(Contact.patient_id == patient_id, Contact.role == Role.CAREGIVER)
        )
    }
    if sorted(contact_ids) != sorted(caregivers):
        raise ConfigError(
            f"give every caregiver id of {patient_id} exactly once: {sorted(caregivers)}"
        )
    for position, contact_id in enumerate(contact_ids):
        caregivers[contact_id].position = position
