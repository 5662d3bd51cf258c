"""Queueing an alert's messages: one idempotent delivery row per contact channel and step.

The rows are what the escalation scheduler (:mod:`service.alerts.scheduler`) sends; queueing one
wakes it once the transaction commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.alerts.audit import record
from service.alerts.care_team import escalation_levels, patient_contacts
from service.alerts.lifecycle import Purpose, Send
from service.alerts.transaction import AlertTransaction
from service.db.models import Alert, Contact, Delivery, DeliveryState


def enqueue(txn: AlertTransaction, alert: Alert, send: Send, at_s: float | None = None) -> int:
    """Queue the first channel of every contact ``send`` addresses; returns how many.

    ``at_s`` holds the messages back until then (default: send now).
    """
    session = txn.session
    if send.purpose is Purpose.PATIENT_CHECK:
        contacts = patient_contacts(session, alert.patient_id)
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

    Nothing is queued if the contact has no such channel or the same step was queued before
    (idempotency key).
    """
    if index >= len(contact.channels):
        return 0
    channel = contact.channels[index]
    key = f"{alert.id}/{alert.round}/{send.purpose}/{send.level}/{send.repeat}/{contact.id}/{index}"
    session = txn.session
    if session.scalar(select(Delivery.id).where(Delivery.idempotency_key == key)):
        record(session, txn.now_s, "delivery_duplicate_skipped", alert_id=alert.id, key=key)
        return 0
    delivery = Delivery(
        alert_id=alert.id,
        contact_id=contact.id,
        channel_id=channel.id,
        idempotency_key=key,
        purpose=send.purpose,
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
        purpose=str(send.purpose),
        level=send.level,
        repeat=send.repeat,
        contact_id=contact.id,
        channel_index=index,
    )
    txn.wake = True
    return 1


def wearer_was_asked(session: Session, alert_id: int) -> bool:
    """A check of this alert reached the wearer (a lost signal's "Check your band")."""
    sent = session.scalar(
        select(Delivery.id).where(
            Delivery.alert_id == alert_id,
            Delivery.purpose == Purpose.PATIENT_CHECK,
            Delivery.state == DeliveryState.SENT,
        )
    )
    return sent is not None
