"""A caregiver's own alert channels, as their account page shows them, and the test message.

A caregiver account stands on care teams through its contacts (:class:`AccountContact`); each
contact's channels are where that patient's alerts reach them, in order. The page lists them
redacted (no token or password), and **Send me a test message** sends one message, with no
health data, through every one of them, so that a caregiver learns a channel is broken before
an alert needs it. At most one test a minute per account (:data:`TEST_EVERY_S`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.alarm import Severity
from service.alerts.audit import record
from service.alerts.notifier import Message, Notifier, SendResult
from service.alerts.own_servers import describe
from service.db.channel_crypto import open_url
from service.db.models import Account, AccountRole, Channel, Contact, Role

TEST_EVERY_S: Final = 60.0
"""One test a minute per account: enough to try again after fixing a channel, too few to use
the service to flood someone's phone."""


@dataclass(frozen=True, slots=True)
class OwnChannels:
    """The channels of one of the account's contacts: where one patient's alerts reach them."""

    patient_id: str
    patient_name: str
    contact_id: int
    contact_name: str
    urls: tuple[str, ...]
    """In clear: to send, and to show redacted (never to show or log as they are)."""
    channel_ids: tuple[int, ...]
    """The channels of ``urls``, in the same order."""
    timezone: str = "UTC"
    """The patient's: times about these channels are told on the patient's clock."""
    role: Role = Role.CAREGIVER
    """The contact's: a patient's own channels bring messages about their band."""


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What became of the test message on one channel (redacted, with the reason of a failure)."""

    contact_id: int
    patient_name: str
    channel: str
    result: SendResult
    channel_id: int


def own_contacts(session: Session, account: Account) -> list[Contact]:
    """The account's contacts on their care teams: a caregiver's links, a patient's own.

    A patient's own contacts are where the messages for the wearer go (the band went quiet,
    is all well?).
    """
    if account.role == AccountRole.PATIENT:
        return list(
            session.scalars(
                select(Contact)
                .where(
                    Contact.patient_id == account.patient_id,
                    Contact.role == Role.PATIENT,
                    Contact.removed_s.is_(None),
                )
                .order_by(Contact.position, Contact.id)
            )
        )
    return [link.contact for link in account.contacts if link.contact.removed_s is None]


def own_channels(session: Session, account: Account) -> list[OwnChannels]:
    """The account's contacts still on their care teams, with their channels, by patient."""
    found = []
    for contact in own_contacts(session, account):
        patient = contact.patient
        live = contact.live_channels
        found.append(
            OwnChannels(
                patient.id,
                patient.display_name or patient.id,
                contact.id,
                contact.name,
                tuple(open_url(session, channel) for channel in live),
                tuple(channel.id for channel in live),
                patient.timezone,
                Role(contact.role),
            )
        )
    return sorted(found, key=lambda own: (own.patient_name, own.contact_id))


def owner_words(notifier: Notifier, url: str) -> str:
    """A channel as its owner reads it: their address or topic, else the URL redacted."""
    return describe(url) or notifier.redact(url)


def check_message(own: OwnChannels) -> Message:
    """The test: who it is for and whose alerts come this way; nothing about their health."""
    return Message(
        "flarewatch test",
        f"Test message for {own.contact_name}: {_what_comes(own)} reach you here. "
        "Nothing is wrong; there is nothing to do.",
        Severity.WARNING,
    )


def _what_comes(own: OwnChannels) -> str:
    if own.role == Role.PATIENT:
        return "flarewatch's messages about your band"
    return f"alerts about {own.patient_name}"


def send_checks(notifier: Notifier, channels: list[OwnChannels]) -> list[CheckOutcome]:
    """Send the test through every channel, one after the other (blocking: seconds each).

    A notifier that raises counts as a failed channel, as in the escalation scheduler.
    """
    outcomes = []
    for own in channels:
        message = check_message(own)
        for url, channel_id in zip(own.urls, own.channel_ids, strict=True):
            try:
                result = notifier.send(url, message)
            except Exception as exc:  # noqa: BLE001 - one broken channel must not hide the rest
                result = SendResult(False, reason=f"notifier error {type(exc).__name__}")
            outcomes.append(
                CheckOutcome(
                    own.contact_id, own.patient_name, owner_words(notifier, url), result, channel_id
                )
            )
    return outcomes


def record_checks(
    session: Session,
    account: Account,
    channels: list[OwnChannels],
    outcomes: list[CheckOutcome],
    now_s: float,
) -> None:
    """Keep each channel's outcome and put the test on each patient's trail.

    The outcome is what the patient's page and the account page say of the channel next
    (:mod:`service.accounts.channel_health`); the trail says who tested, how many channels, how
    many failed.
    """
    for outcome in outcomes:
        channel = session.get(Channel, outcome.channel_id)
        if channel is not None:  # None: removed while the test was being sent
            channel.checked_s = now_s
            channel.check_error = None if outcome.result.ok else outcome.result.reason[:300]
    for own in channels:
        mine = [o for o in outcomes if o.contact_id == own.contact_id]
        record(
            session,
            now_s,
            "channels_tested",
            patient_id=own.patient_id,
            username=account.username,
            contact_id=own.contact_id,
            channels=len(own.urls),
            failed=sum(not o.result.ok for o in mine),
        )
