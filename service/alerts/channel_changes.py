"""A care-team member's own channels: adding one, taking one off, without the administrator.

A caregiver whose push app changed, who wants alerts by e-mail too, or a patient who wants the
band's messages on a new phone, sets it up on their account page. What they may add is what the
operator offers (:class:`ChannelOffer`): an e-mail address sent through the service's mail
server, a private topic on its ntfy server (:mod:`service.alerts.own_servers`), and only if the
operator allows it, any Apprise URL (it makes the service call whatever host it names).

A new channel comes after the contact's others: a message goes to the first channel that takes
it, the next one only when it fails. A channel taken off stays as a row (its URL overwritten,
like a removed contact's): the deliveries that went through it name it, and a step names its
channel by its place in the list (:class:`~service.alerts.delivery_queue.Step`). A message still
waiting to go out through it goes on to the contact's next channel at once, as if it had failed
there. The last channel of a contact cannot be taken off: alerts would no longer reach them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.accounts.password_reset import normalise_email
from service.alerts.audit import record
from service.alerts.care_team import escalation_levels
from service.alerts.delivery_outcome import pass_on
from service.alerts.notifier import Notifier
from service.alerts.own_servers import (
    MAIL_SCHEME,
    NTFY_SCHEME,
    OwnServers,
    mail_channel,
    new_topic,
    ntfy_channel,
    own_part,
)
from service.alerts.team_changes import keep_told_ahead, skip_pending, wake_stalled_alerts
from service.alerts.transaction import AlertTransaction
from service.db.care_teams import REMOVED_CHANNEL_URL
from service.db.channel_crypto import open_url, seal_url
from service.db.models import Alert, Channel, Contact, Role

LIVE_CHANNELS_MAX: Final = 5
"""Channels in use per contact: more would only spread an alert over more places to miss it."""


class ChannelKind(StrEnum):
    """What a person may add as a channel of their own."""

    EMAIL = "email"
    """An address: sent with ``service.mail_url``."""
    NTFY = "ntfy"
    """A private topic the service makes on ``service.ntfy_url``."""
    URL = "url"
    """Any Apprise URL (only with ``service.own_channel_urls``)."""


@dataclass(frozen=True, slots=True)
class ChannelOffer:
    """The kinds of channel this service lets people add themselves."""

    servers: OwnServers
    any_url: bool = False
    """``service.own_channel_urls``: any Apprise URL too."""

    @property
    def kinds(self) -> tuple[ChannelKind, ...]:
        """What is offered, in the order the page shows it (none: the administrator adds)."""
        offered = {
            ChannelKind.EMAIL: self.servers.offered(MAIL_SCHEME),
            ChannelKind.NTFY: self.servers.offered(NTFY_SCHEME),
            ChannelKind.URL: self.any_url,
        }
        return tuple(kind for kind, yes in offered.items() if yes)

    def channel_url(self, kind: ChannelKind, value: str, notifier: Notifier) -> str:
        """The channel URL of what was asked for; :class:`ConfigError` saying why not.

        ``value``: the address (``email``), the Apprise URL (``url``); ignored for ``ntfy``,
        whose topic is new.
        """
        if kind not in self.kinds:
            setting = {ChannelKind.EMAIL: "mail_url", ChannelKind.NTFY: "ntfy_url"}
            because = f" (service.{setting[kind]} is not set)" if kind in setting else ""
            raise ConfigError(f"this service does not offer {kind} channels{because}")
        if kind is ChannelKind.EMAIL:
            return mail_channel(normalise_email(value))
        if kind is ChannelKind.NTFY:
            return ntfy_channel(new_topic())
        url = value.strip()
        if own_part(url) is not None or url.startswith(REMOVED_CHANNEL_URL):
            raise ConfigError("that is not an Apprise URL")
        problem = notifier.validate(url)
        if problem:
            raise ConfigError(problem)
        return url


def channel_kind(url: str) -> str:
    """What the audit trail says a channel is (``email``, ``ntfy``, ``apprise:SCHEME``)."""
    own = own_part(url)
    if own is not None:
        return ChannelKind.EMAIL if own[0] == MAIL_SCHEME else ChannelKind.NTFY
    return f"apprise:{url.partition('://')[0][:20]}"


def add_channel(
    session: Session, contact: Contact, url: str, now_s: float, *, by: str, via: str
) -> Channel:
    """Give ``contact`` the channel ``url``, after its others; audited as ``channel_added``.

    A member's first channel puts them on the escalation order (invited, they had none): as a
    contact added, an open alert that reached someone after them tells them now, and one with
    nobody left to tell goes on to them.
    """
    if contact.removed_s is not None:
        raise ConfigError("they are no longer on the care team")
    if len(contact.live_channels) >= LIVE_CHANNELS_MAX:
        raise ConfigError(
            f"{LIVE_CHANNELS_MAX} channels is the most: take one off before adding another"
        )
    joining = not contact.live_channels and contact.role != Role.PATIENT
    told_before = [c.id for c in escalation_levels(session, contact.patient_id)]
    channel = Channel(
        sealed_url=seal_url(session, url),
        position=max((c.position for c in contact.channels), default=-1) + 1,
    )
    contact.channels.append(channel)
    session.flush()
    if joining:
        keep_told_ahead(session, contact.patient_id, told_before, now_s, reason="contact_added")
        wake_stalled_alerts(session, contact.patient_id, now_s)
        session.flush()
    record(
        session,
        now_s,
        "channel_added",
        patient_id=contact.patient_id,
        contact_id=contact.id,
        channel_id=channel.id,
        kind=channel_kind(url),
        by=by,
        via=via,
    )
    return channel


def own_patient_contact(session: Session, patient_id: str, name: str, now_s: float) -> Contact:
    """The patient's own contact, made for their first channel (the wearer's messages).

    Without one, a band gone quiet is told to the caregivers without asking the wearer first.
    """
    contact = Contact(patient_id=patient_id, name=name[:200], role=Role.PATIENT, position=0)
    session.add(contact)
    session.flush()
    record(
        session,
        now_s,
        "contact_added",
        patient_id=patient_id,
        contact_id=contact.id,
        role=Role.PATIENT,
        via="web",
    )
    return contact


def remove_channel(
    txn: AlertTransaction, contact: Contact, channel: Channel, *, by: str, via: str
) -> int:
    """Take ``channel`` off ``contact``: messages waiting for it go on to the next channel.

    Returns how many messages were moved on. Refused (:class:`ConfigError`) for the contact's
    last channel in use.
    """
    session = txn.session
    if channel.contact_id != contact.id or channel.removed_s is not None:
        raise ConfigError("no such channel")
    if len(contact.live_channels) <= 1:
        raise ConfigError(
            "it is the only channel alerts reach them by: add another before taking it off"
        )
    kind = channel_kind(open_url(session, channel))
    channel.removed_s = txn.now_s
    channel.sealed_url = seal_url(session, REMOVED_CHANNEL_URL)
    channel.check_error = None
    session.flush()
    waiting = skip_pending(
        session, contact, txn.now_s, reason="channel_removed", channel_id=channel.id
    )
    for delivery in waiting:
        alert = session.get_one(Alert, delivery.alert_id)
        pass_on(txn, alert, delivery)
    record(
        session,
        txn.now_s,
        "channel_removed",
        patient_id=contact.patient_id,
        contact_id=contact.id,
        channel_id=channel.id,
        kind=kind,
        moved_on=len(waiting),
        by=by,
        via=via,
    )
    return len(waiting)
