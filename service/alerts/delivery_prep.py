"""What a due delivery carries to its send: its message, rendered, and its channel's URL.

Prepared inside the scheduler's transaction (it reads the alert, the patient, the episode and
the channel), sent outside it (:class:`ClaimedDelivery` holds no database object).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flarewatch.payloads import OFFLINE_PAIRING
from models.alarm import Severity
from service.alerts.delivery_queue import Step, was_sent
from service.alerts.lifecycle import Purpose
from service.alerts.manager import AlertManager
from service.alerts.notifier import Message
from service.alerts.render import LOST_SIGNAL, AlertFacts, render_message
from service.alerts.tokens import TokenAction
from service.alerts.transaction import AlertTransaction
from service.db.channel_crypto import open_url
from service.db.models import (
    Alert,
    Channel,
    Contact,
    Delivery,
    Device,
    Episode,
    Patient,
    SignalState,
)
from service.errors import ChannelKeyError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery marked ``sending``, with everything its send needs (no database)."""

    delivery_id: int
    url: str | None
    """``None`` when the stored URL cannot be decrypted (see :func:`channel_url`)."""
    message: Message
    severity: Severity


UNREADABLE_CHANNEL_REASON: Final = "channel URL cannot be decrypted with service.secret_key"


def channel_url(session: Session, channel: Channel) -> str | None:
    """The channel's URL, or ``None`` if it was stored under another key.

    The service checks the key at start, but a channel added meanwhile by an admin command run
    with another key must fail over to the next channel, not stop the scheduler.
    """
    try:
        return open_url(session, channel)
    except ChannelKeyError:
        log.error("channel %s cannot be decrypted with service.secret_key", channel.id)
        return None


def _lowest_battery(session: Session, patient_id: str) -> int | None:
    """The lowest battery the patient's bands last reported (None: none did)."""
    return session.scalar(
        select(func.min(Device.battery_percent)).where(Device.patient_id == patient_id)
    )


def _will_not_pair(session: Session, alert: Alert) -> bool:
    """Whether the alert's band is silent because the gateway cannot pair with it, now."""
    if alert.signal is None:
        return False
    state = session.get(SignalState, (alert.patient_id, alert.signal))
    return state is not None and state.active and state.detail == OFFLINE_PAIRING


def prepare_delivery(
    manager: AlertManager, txn: AlertTransaction, alert: Alert, delivery: Delivery
) -> ClaimedDelivery:
    """A claimed delivery's message, rendered from the alert's facts, with its channel URL."""
    session = txn.session
    patient = session.get_one(Patient, alert.patient_id)
    contact = session.get_one(Contact, delivery.contact_id)
    channel = next(c for c in contact.channels if c.id == delivery.channel_id)
    episode = session.get(Episode, alert.episode_id) if alert.episode_id else None
    vitals = (episode.summary.get("vitals", {}) if episode else {}) or {}
    onset = ((episode.summary.get("alarms") or [{}])[0] if episode else {}) or {}
    evidence = onset.get("evidence") or {}
    purpose = Purpose(delivery.purpose)
    facts = AlertFacts(
        patient_name=patient.display_name or patient.id,
        timezone=patient.timezone,
        emergency_plan=patient.emergency_plan,
        kind=alert.kind,
        severity=Severity(alert.severity),
        since_s=alert.since_s,
        now_s=txn.now_s,
        vitals=vitals,
        signal_lost=bool(episode and episode.signal_lost),
        acked_by=alert.acked_by,
        # alarms from before the detector said so (no key) count as known
        activity_known=evidence.get("activity_known", 1.0) != 0.0,
        after_exercise=evidence.get("recovery", 0.0) == 1.0,
        expired=bool(episode and episode.summary.get("expired")),
        wearer_unanswered=alert.kind in LOST_SIGNAL
        and was_sent(session, alert.id, Purpose.PATIENT_CHECK),
        escalated=Step.of(delivery.idempotency_key).level > 0,
        away=contact.away_until_s is not None,
        caregivers_noticed=alert.kind in LOST_SIGNAL
        and was_sent(session, alert.id, Purpose.OFF_NOTICE),
        band_will_not_pair=_will_not_pair(session, alert),
        battery_percent=(
            _lowest_battery(session, patient.id) if purpose is Purpose.BATTERY_LOW else None
        ),
    )
    link = None
    if purpose is Purpose.PATIENT_CHECK:
        link = manager.link(TokenAction.CANCEL, alert, contact.id)
    elif purpose in (Purpose.OFF_REMINDER, Purpose.OFF_NOTICE):
        pass  # nothing to answer: the band reporting again ends them
    elif purpose is not Purpose.RESOLVED:
        link = manager.link(TokenAction.ACK, alert, contact.id)
    elif alert.episode_id is not None and alert.kind not in LOST_SIGNAL:
        # the all-clear asks whether it was a real reaction: labels teach the detectors
        link = manager.link(TokenAction.LABEL, alert, contact.id)
    return ClaimedDelivery(
        delivery.id,
        channel_url(session, channel),
        render_message(facts, purpose, link),
        facts.severity,
    )
