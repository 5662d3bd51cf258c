"""Queueing an alert's messages: one idempotent delivery row per contact channel and step.

The rows are what the escalation scheduler (:mod:`service.alerts.scheduler`) sends; queueing one
wakes it once the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.alerts.audit import record
from service.alerts.care_team import escalation_levels, patient_contacts
from service.alerts.lifecycle import Purpose, Send
from service.alerts.transaction import AlertTransaction
from service.db.models import Alert, Contact, Delivery, DeliveryState, Role

TELLING: Final = (Purpose.NOTIFY, Purpose.REPEAT, Purpose.WORSENED)
"""Messages that tell a caregiver of an alert: whoever one reached gets its all-clear."""


@dataclass(frozen=True, slots=True)
class Step:
    """What a delivery's idempotency key names: one step of an alert, to one contact's channel.

    ``round`` and ``level`` are the alert's numbering when the step was planned. A renumbering
    (a worsening, a care-team reorder or removal) starts a new round, so a step keeps its own
    round: the same step on the contact's next channel is this key with the next channel index.
    """

    alert_id: int
    round: int
    purpose: Purpose
    level: int
    repeat: int
    contact_id: int
    channel_index: int

    @property
    def key(self) -> str:
        """The idempotency key: ``alert/round/purpose/level/repeat/contact/channel``."""
        return (
            f"{self.alert_id}/{self.round}/{self.purpose}/{self.level}/{self.repeat}"
            f"/{self.contact_id}/{self.channel_index}"
        )

    @classmethod
    def of(cls, key: str) -> Step:
        """The step a stored idempotency key names."""
        alert_id, round_, purpose, level, repeat, contact_id, index = key.split("/")
        return cls(
            int(alert_id),
            int(round_),
            Purpose(purpose),
            int(level),
            int(repeat),
            int(contact_id),
            int(index),
        )


def enqueue(txn: AlertTransaction, alert: Alert, send: Send, at_s: float | None = None) -> int:
    """Queue the first channel of every contact ``send`` addresses; returns how many.

    ``at_s`` holds the messages back until then (default: send now).
    """
    session = txn.session
    if send.purpose in (Purpose.PATIENT_CHECK, Purpose.OFF_REMINDER, Purpose.BATTERY_LOW):
        contacts = patient_contacts(session, alert.patient_id)
    elif send.purpose is Purpose.OFF_NOTICE:  # the family, not an emergency line
        levels = escalation_levels(session, alert.patient_id)
        contacts = [c for c in levels if c.role == Role.CAREGIVER]
    else:
        levels = escalation_levels(session, alert.patient_id)
        first = send.level if send.only_level else 0
        contacts = levels[first : send.level + 1]
    queued = 0
    for contact in contacts:
        queued += enqueue_channel(txn, alert, send, contact, 0, at_s)
    return queued


def enqueue_channel(
    txn: AlertTransaction,
    alert: Alert,
    send: Send,
    contact: Contact,
    index: int,
    at_s: float | None = None,
) -> int:
    """Queue ``contact``'s channel number ``index`` (0 = first); returns 1 if queued.

    Nothing is queued if the contact has no such channel, was taken off the care team (a step
    of theirs still failing over, say) or the same step was queued before (idempotency key).
    """
    step = Step(alert.id, alert.round, send.purpose, send.level, send.repeat, contact.id, index)
    return _enqueue_step(txn, alert, step, contact, at_s)


def enqueue_next_channel(
    txn: AlertTransaction, alert: Alert, delivery: Delivery, contact: Contact, index: int
) -> int:
    """Queue the step ``delivery`` gave up on again, on ``contact``'s channel after ``index``.

    The step keeps the round it was planned in: the key of the alert's current round would name
    another step after a renumbering (or one never planned), and the fall-through was lost.
    """
    step = replace(Step.of(delivery.idempotency_key), channel_index=index + 1)
    return _enqueue_step(txn, alert, step, contact, None)


def _enqueue_step(
    txn: AlertTransaction, alert: Alert, step: Step, contact: Contact, at_s: float | None
) -> int:
    # a channel its owner took off is passed by: the step goes to the next one in use
    index = step.channel_index
    while index < len(contact.channels) and contact.channels[index].removed_s is not None:
        index += 1
    if contact.removed_s is not None or index >= len(contact.channels):
        return 0
    step = replace(step, channel_index=index)
    channel = contact.channels[index]
    key = step.key
    session = txn.session
    if session.scalar(select(Delivery.id).where(Delivery.idempotency_key == key)):
        record(session, txn.now_s, "delivery_duplicate_skipped", alert_id=alert.id, key=key)
        return 0
    delivery = Delivery(
        alert_id=alert.id,
        contact_id=contact.id,
        channel_id=channel.id,
        idempotency_key=key,
        purpose=step.purpose,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_s=txn.now_s if at_s is None else max(at_s, txn.now_s),
        created_s=txn.now_s,
    )
    session.add(delivery)
    session.flush()
    record(
        session,
        txn.now_s,
        "delivery_queued",
        patient_id=alert.patient_id,
        alert_id=alert.id,
        delivery_id=delivery.id,
        purpose=str(step.purpose),
        level=step.level,
        repeat=step.repeat,
        contact_id=contact.id,
        channel_index=step.channel_index,
    )
    txn.wake = True
    return 1


def enqueue_all_clear(txn: AlertTransaction, alert: Alert, only: int | None = None) -> int:
    """Queue the all-clear of a resolved ``alert`` to every member it told; returns how many.

    Told means that a message of the alert reached them (:data:`TELLING`, sent), not that their
    level was reached: a notice still held for quiet hours, still retried, or skipped once the
    alert was acknowledged (as for whoever a reorder put ahead of the ones told) told nobody, and
    an all-clear of an alert never heard of is itself an alarm. A notice on its way when the
    alert ends counts once it lands (the scheduler calls this again with ``only``, its contact).
    Members taken off the team are never told again. Each member gets it once.
    """
    session = txn.session
    reached = set(
        session.scalars(
            select(Delivery.contact_id).where(
                Delivery.alert_id == alert.id,
                Delivery.purpose.in_(TELLING),
                Delivery.state == DeliveryState.SENT,
            )
        )
    )
    cleared = set(
        session.scalars(
            select(Delivery.contact_id).where(
                Delivery.alert_id == alert.id, Delivery.purpose == Purpose.RESOLVED
            )
        )
    )
    send = Send(Purpose.RESOLVED, alert.level, 0, False)
    queued = 0
    for contact in escalation_levels(session, alert.patient_id):
        if contact.id in reached - cleared and only in (None, contact.id):
            queued += enqueue_channel(txn, alert, send, contact, 0)
    return queued


def was_sent(session: Session, alert_id: int, purpose: Purpose) -> bool:
    """A message of this alert for ``purpose`` reached someone.

    A lost signal's "Check your band" the wearer (``patient_check``), the caregivers' notice of
    a band off for long (``off_notice``).
    """
    sent = session.scalar(
        select(Delivery.id).where(
            Delivery.alert_id == alert_id,
            Delivery.purpose == purpose,
            Delivery.state == DeliveryState.SENT,
        )
    )
    return sent is not None
