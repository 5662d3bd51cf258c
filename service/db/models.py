"""Tables of the service database: people, devices, care teams, episodes, alerts, deliveries, audit.

Times are UTC epoch seconds (``*_s`` columns, double precision) so that SQLite and PostgreSQL
store them identically and the injected clocks of the episode engine and the escalation
scheduler compare them without time-zone conversions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from models.profiles import DetectionProfile


class Base(DeclarativeBase):
    """Declarative base of every service table (one metadata for Alembic)."""

    type_annotation_map = {dict[str, Any]: JSON}


class Role(StrEnum):
    """Why a contact is on a patient's care team."""

    CAREGIVER = "caregiver"
    """Notified in ``position`` order, one escalation level each."""
    EMERGENCY = "emergency"
    """The last escalation level (an emergency contact or service gateway)."""
    PATIENT = "patient"
    """The wearer's own channel: gets the "I'm OK" cancel link and signal notices."""


class AccountRole(StrEnum):
    """What a person signed in to the web app may see (:mod:`service.access`)."""

    PATIENT = "patient"
    """Their own record only."""
    CAREGIVER = "caregiver"
    """The patients on whose care teams they stand (:class:`AccountContact`), while they do."""
    RESEARCHER = "researcher"
    """Consenting patients only, pseudonymised: no name, id, device or care team."""


class DiaryKind(StrEnum):
    """What a diary entry records (the patient's or a caregiver's word, not a measurement)."""

    TRIGGER = "trigger"
    """A possible trigger met: a food, heat, a sting, a medicine, exercise, stress…"""
    SYMPTOM = "symptom"
    """Something felt or seen: flushing, itching, hives, dizziness, cramps…"""
    MEDICATION = "medication"
    """A dose taken: an antihistamine, a mast-cell stabiliser, adrenaline."""
    NOTE = "note"


class EpisodeState(StrEnum):
    """Life of one physiological event."""

    OPEN = "open"
    CLOSED = "closed"


class EpisodeLabel(StrEnum):
    """What a caregiver or clinician says an episode was (``flarewatch admin episode label``).

    Labelled real episodes are what the detectors' learned confirmer is trained on.
    """

    REACTION = "reaction"
    """A real mast-cell reaction."""
    FALSE_ALARM = "false_alarm"
    """No reaction: exercise, stress, a loose band…"""


class AlertState(StrEnum):
    """Where an alert is in its lifecycle (see ``service.alerts.lifecycle``)."""

    CANCEL_WINDOW = "cancel_window"
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CANCELLED = "cancelled"
    RESOLVED = "resolved"


OPEN_ALERT_STATES = (AlertState.CANCEL_WINDOW, AlertState.ACTIVE, AlertState.ACKNOWLEDGED)
"""Alerts that are not finished: a new one of the same kind would be a duplicate."""


class DeliveryState(StrEnum):
    """One message to one channel; retried with backoff, then it falls through."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    """Given up after the retries; the next channel was tried instead."""
    SKIPPED = "skipped"
    """Not sent: the alert was acknowledged, cancelled or resolved before its turn."""


class Patient(Base):
    """A person wearing a device, with the alerting policy of their care team."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    emergency_plan: Mapped[str] = mapped_column(Text, default="")
    plan_changed_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When the plan was last changed (``service.db.emergency_plan``); NULL: not since 0016."""
    plan_changed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    """Who changed it: their name on the care team, the patient's, or "administrator"."""
    cancel_window_s: Mapped[float] = mapped_column(Float)
    signal_window_s: Mapped[float] = mapped_column(Float, server_default="600.0")
    """The wearer's time to answer a lost-signal notice before caregivers are told (rows from
    before migration 0005 get DEFAULT_SIGNAL_WINDOW_S)."""
    drill_every_days: Mapped[int | None] = mapped_column(Integer, default=None)
    """A drill every so many days at ``drill_at`` (:mod:`service.alerts.drill_schedule`);
    NULL: drills only by hand."""
    drill_at: Mapped[str | None] = mapped_column(String(5), default=None)
    """Local "HH:MM" of scheduled drills."""
    next_drill_s: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    """When the next scheduled drill starts (NULL: none scheduled)."""
    off_notice_s: Mapped[float] = mapped_column(Float, server_default="86400.0")
    """A band the wearer said they took off and still silent this long after it went silent:
    the caregivers are told once (:mod:`service.alerts.off_reminders`); 0: never."""
    off_reminder_s: Mapped[float] = mapped_column(Float, server_default="7200.0")
    """After the wearer said they took the band off, remind them it is still off after this long
    (then after twice as long each time, at most a day apart); 0: never
    (:mod:`service.alerts.off_reminders`)."""
    ack_timeout_s: Mapped[float] = mapped_column(Float)
    repeat_interval_s: Mapped[float] = mapped_column(Float)
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)
    """Local "HH:MM" start of quiet hours (warnings wait; critical alerts never do)."""
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    created_s: Mapped[float] = mapped_column(Float)
    detection_profile: Mapped[str] = mapped_column(
        String(16), default=DetectionProfile.BALANCED, server_default=DetectionProfile.BALANCED
    )
    """How eager the surge detection is (``models.profiles.DetectionProfile`` value)."""
    research_consent_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When the patient consented to their pseudonymised episodes and recordings going into
    research exports (``admin research export``); NULL = no consent (the default)."""

    devices: Mapped[list[Device]] = relationship(back_populates="patient")
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="patient", order_by="Contact.position"
    )


class Device(Base):
    """A wearable assigned to a patient."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200), default="")
    link_state: Mapped[str | None] = mapped_column(String(16), default=None)
    """Its link as its gateway last reported it (a ``LinkState`` value); NULL: never reported."""
    link_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    """Why the link changed, in the gateway's words (``pairing``, ``link_lost``…)."""
    link_since_s: Mapped[float | None] = mapped_column(Float, default=None)
    """Since when the link has been in ``link_state``."""
    reported_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When its gateway last reported on it."""
    battery_percent: Mapped[int | None] = mapped_column(Integer, default=None)
    contact_detected: Mapped[bool | None] = mapped_column(default=None)
    """Whether it reads skin contact (NULL: the band does not say)."""
    patient: Mapped[Patient] = relationship(back_populates="devices")


class Contact(Base):
    """A caregiver, the emergency contact or the patient's own channel on a care team."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.CAREGIVER)
    position: Mapped[int] = mapped_column(Integer, default=0)
    removed_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When the contact left the care team (``admin caregiver remove``); NULL = on the team.
    A removed contact is never notified again but its row stays: deliveries and the audit trail
    name it."""
    away_until_s: Mapped[float | None] = mapped_column(Float, default=None)
    """Until when the contact is away (``service.alerts.absence``); NULL = available. Away, they
    stand last in the escalation order: alerts go to everyone available first."""
    away_days: Mapped[str | None] = mapped_column(String(7), default=None)
    """Away every week on these ISO weekdays ("12345": Monday to Friday), from ``away_from`` to
    ``away_to`` on the patient's clock (``service.alerts.away_schedule``); NULL: no schedule."""
    away_from: Mapped[str | None] = mapped_column(String(5), default=None)
    away_to: Mapped[str | None] = mapped_column(String(5), default=None)
    """Before ``away_from``: the window ends the next day (a night shift)."""
    away_next_s: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    """When the next scheduled absence begins (NULL: none)."""
    patient: Mapped[Patient] = relationship(back_populates="contacts")
    channels: Mapped[list[Channel]] = relationship(
        back_populates="contact", order_by="Channel.position", cascade="all, delete-orphan"
    )
    """Every channel the contact had, those taken off too: a delivery's step names its channel
    by its index in this list (``delivery_queue.Step``), which a removal must not shift."""

    @property
    def live_channels(self) -> list[Channel]:
        """The channels messages go to, in order (those not taken off)."""
        return [channel for channel in self.channels if channel.removed_s is None]


class Channel(Base):
    """One Apprise URL of a contact; channels are tried in ``position`` order.

    The URL holds the channel's credentials (tokens, passwords): it is stored encrypted
    (``sealed_url``, see :mod:`service.db.channel_crypto`), shown only redacted and never logged.
    """

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    sealed_url: Mapped[str] = mapped_column(Text)
    """The Apprise URL sealed with the service key: read it with ``channel_crypto.open_url``."""
    position: Mapped[int] = mapped_column(Integer, default=0)
    checked_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When its owner last sent themselves a test message this way; NULL = never."""
    check_error: Mapped[str | None] = mapped_column(Text, default=None)
    """Why that test failed (scrubbed of secrets); NULL = it was sent."""
    removed_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When its owner took it off (``channel_changes.remove_channel``); NULL = in use. The row
    stays, its URL overwritten, for the deliveries that name it; messages pass it by."""
    contact: Mapped[Contact] = relationship(back_populates="channels")


class Episode(Base):
    """One physiological event of one patient, from the first alarm to recovery."""

    __tablename__ = "episodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=EpisodeState.OPEN, index=True)
    opened_s: Mapped[float] = mapped_column(Float)
    escalated_s: Mapped[float | None] = mapped_column(Float, default=None)
    closed_s: Mapped[float | None] = mapped_column(Float, default=None)
    model_version: Mapped[str] = mapped_column(String(100))
    signal_lost: Mapped[bool] = mapped_column(default=False)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Evidence of every alarm (peak values) and the latest vitals seen while open."""
    label: Mapped[str | None] = mapped_column(String(16), default=None)
    """An :class:`EpisodeLabel` value once someone reviewed the episode; NULL = unlabelled."""
    labelled_by: Mapped[str | None] = mapped_column(String(100), default=None)
    labelled_s: Mapped[float | None] = mapped_column(Float, default=None)
    first_sign_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When the reaction really began, as the care team knows it (at or before ``opened_s``, the
    alarm); NULL = not known. An episode added by hand (a reaction the detectors missed,
    ``model_version`` ``manual``) opens at it."""


class SignalState(Base):
    """Whether a patient's signal is currently lost for one reason (no data, no contact…)."""

    __tablename__ = "signal_states"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(default=False)
    since_s: Mapped[float] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(String(200), default="")


class Alert(Base):
    """What the care team is told about an episode or a lost signal, and how far it went.

    ``level`` is the escalation level reached (index into the ordered care team); ``round`` grows
    every time a worsening re-arms the alert or a care-team change renumbers its levels, so
    idempotency keys stay unique (a queued step keeps the round it was planned in).
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"), default=None)
    signal: Mapped[str | None] = mapped_column(String(32), default=None)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_s: Mapped[float] = mapped_column(Float)
    since_s: Mapped[float] = mapped_column(Float)
    cancel_until_s: Mapped[float | None] = mapped_column(Float, default=None)
    round: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[int] = mapped_column(Integer, default=-1)
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    level_notified_s: Mapped[float | None] = mapped_column(Float, default=None)
    next_action_s: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    acked_s: Mapped[float | None] = mapped_column(Float, default=None)
    acked_by: Mapped[str | None] = mapped_column(String(200), default=None)
    closed_s: Mapped[float | None] = mapped_column(Float, default=None)
    remind_s: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    """A lost signal the wearer answered "I took it off": when to remind them the band is still
    off (NULL: no reminder due)."""
    reminders: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    """How many reminders were sent so far."""
    notice_s: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    """When to tell the caregivers that the band is still off (NULL: not due, or told)."""


class Delivery(Base):
    """One message to one channel, created before it is sent so a restart resumes it.

    ``idempotency_key`` names the lifecycle step (alert, round, level, purpose, repeat, contact,
    channel); a step planned twice — e.g. replayed after a crash — hits the unique constraint
    instead of notifying twice.
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("idempotency_key", name="uq_delivery_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_s: Mapped[float] = mapped_column(Float, index=True)
    created_s: Mapped[float] = mapped_column(Float)
    sent_s: Mapped[float | None] = mapped_column(Float, default=None)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)


class AuditEvent(Base):
    """An append-only record of every decision, attempt, result and acknowledgement.

    ``detail`` never holds vital values or channel URLs (they are health data and secrets).
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time_s: Mapped[float] = mapped_column(Float, index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    alert_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    delivery_id: Mapped[int | None] = mapped_column(Integer, default=None)
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ResearchExport(Base):
    """One ``admin research export`` written: what recalling a patient from it needs.

    A research group keeps what it was given; when a patient withdraws their consent or is
    erased, the service must be able to say which exports held them, under which subject, and
    where each went (GDPR art. 17(2) and 19: the recipients are told).
    """

    __tablename__ = "research_exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Also in the export's ``export.json``: what a recall names to the recipient."""
    created_s: Mapped[float] = mapped_column(Float)
    since_s: Mapped[float] = mapped_column(Float)
    until_s: Mapped[float] = mapped_column(Float)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """``before_min``, ``after_min``, ``whole``: which recordings went out."""
    folder: Mapped[str] = mapped_column(Text)
    """Where it was written (absolute); whom it was handed to is the study's agreement."""
    episodes: Mapped[int] = mapped_column(Integer, default=0)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    subjects: Mapped[list[ResearchExportSubject]] = relationship(
        back_populates="export", order_by="ResearchExportSubject.subject"
    )


class ResearchExportSubject(Base):
    """One patient in one research export: their subject there, and whether a recall was asked.

    ``patient_id`` is how the service finds a patient's exports when they withdraw their
    consent; their erasure blanks it and keeps the subject, which is what the recipient deletes
    by (and all a later question about that recall needs).
    """

    __tablename__ = "research_export_subjects"

    export_id: Mapped[str] = mapped_column(ForeignKey("research_exports.id"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(16), primary_key=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    """NULL once the patient is erased (no foreign key: the row outlives the patient)."""
    recalled_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When the recipient was to be asked to delete the subject (consent withdrawn, or erased)."""
    export: Mapped[ResearchExport] = relationship(back_populates="subjects")


class Account(Base):
    """A person who signs in to the web app: a patient, a caregiver or a researcher.

    The password is stored only as an Argon2id hash (:mod:`service.passwords`). What the account
    sees follows its role (:mod:`service.access`); a caregiver's patients are the care teams its
    contacts stand on (:class:`AccountContact`), so taking them off a team takes the access too.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    patient_id: Mapped[str | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), default=None, index=True
    )
    """The patient a patient account is (NULL for the other roles)."""
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_s: Mapped[float] = mapped_column(Float)
    disabled_s: Mapped[float | None] = mapped_column(Float, default=None)
    """When it was disabled (``admin account disable``): it can no longer sign in."""
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    """Wrong passwords in a row since the last sign-in: past a few the account waits."""
    locked_until_s: Mapped[float | None] = mapped_column(Float, default=None)
    last_login_s: Mapped[float | None] = mapped_column(Float, default=None)
    help_link_hash: Mapped[str | None] = mapped_column(
        String(64), default=None, unique=True, index=True
    )
    """SHA-256 of a patient account's help link token (``/help/TOKEN``): the link alerts their
    care team without signing in; a new one replaces it (NULL: none)."""
    email: Mapped[str | None] = mapped_column(String(254), default=None, index=True)
    """Where a link to set a new password goes (lowercase; NULL: the administrator resets it)."""
    totp_secret: Mapped[str | None] = mapped_column(String(300), default=None)
    """The second factor's TOTP secret, sealed like channel URLs (NULL: password only)."""
    totp_enrolling: Mapped[str | None] = mapped_column(String(300), default=None)
    """A secret shown for enrolment, sealed, until a code from it confirms it."""
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    """The 30-s step of the last code taken: a code is good once (RFC 6238 §5.2)."""
    contacts: Mapped[list[AccountContact]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )


class AccountContact(Base):
    """A caregiver account standing as one contact on one patient's care team."""

    __tablename__ = "account_contacts"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    """A contact is one person: at most one account."""
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    account: Mapped[Account] = relationship(back_populates="contacts")
    contact: Mapped[Contact] = relationship()


class WebSession(Base):
    """One signed-in browser: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_s: Mapped[float] = mapped_column(Float)
    last_seen_s: Mapped[float] = mapped_column(Float)
    second_factor_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The password was right and a code is still asked: this browser sees nothing yet."""
    account: Mapped[Account] = relationship()


class PasswordReset(Base):
    """A link sent to an account's e-mail address to set a new password: good once, briefly.

    Only the SHA-256 of its token is kept, as for sessions.
    """

    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_s: Mapped[float] = mapped_column(Float)
    used_s: Mapped[float | None] = mapped_column(Float, default=None)
    expires_s: Mapped[float | None] = mapped_column(Float, default=None)
    """An invitation's end (the first password, set within days); NULL: a reset link, good for
    ``RESET_LINK_S`` from ``created_s``."""
    account: Mapped[Account] = relationship()


class RecoveryCode(Base):
    """One of an account's single-use codes for signing in without its authenticator.

    Only the SHA-256 of each is kept (49 random bits each, shown once, at enrolment).
    """

    __tablename__ = "recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    account: Mapped[Account] = relationship(back_populates="recovery_codes")


class DiaryEntry(Base):
    """One line of a patient's diary: what happened when, in the words of whoever wrote it.

    The text is health data: it is shown to whoever sees the patient and goes into the patient's
    own copy of their data, never into a log, the audit trail or a research export.
    """

    __tablename__ = "diary_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    time_s: Mapped[float] = mapped_column(Float, index=True)
    """When it happened (not when it was written)."""
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    written_by: Mapped[str] = mapped_column(String(200))
    written_s: Mapped[float] = mapped_column(Float)
