"""What a delivery's outcome does to it and its alert: sent, tried again later, or passed on.

A channel that gives up (a permanent refusal, or retries run out) passes the step to the
contact's next channel, else past the contact to the next level, so the patient is never left
with nobody told. The scheduler (:mod:`service.alerts.scheduler`) calls these inside its own
transactions; everything here is one transaction's writes and its audit trail.
"""

from __future__ import annotations

from service.alerts.audit import record
from service.alerts.backoff import retry_delay_s
from service.alerts.care_team import escalation_levels
from service.alerts.delivery_prep import ClaimedDelivery
from service.alerts.delivery_queue import TELLING, enqueue_all_clear, enqueue_next_channel
from service.alerts.lifecycle import Purpose
from service.alerts.notifier import SendResult
from service.alerts.transaction import AlertTransaction
from service.db.models import Alert, AlertState, Contact, Delivery, DeliveryState, Patient


def apply_result(txn: AlertTransaction, item: ClaimedDelivery, result: SendResult) -> None:
    """Record one send of ``item``: sent, pending after a back-off, or failed and passed on."""
    delivery = txn.session.get_one(Delivery, item.delivery_id)
    if delivery.state != DeliveryState.SENDING:
        return  # settled already (a commit that reported an error)
    alert = txn.session.get_one(Alert, delivery.alert_id)
    record(
        txn.session,
        txn.now_s,
        "delivery_attempt",
        patient_id=alert.patient_id,
        alert_id=alert.id,
        delivery_id=delivery.id,
        attempt=delivery.attempts,
        ok=result.ok,
        purpose=delivery.purpose,
        contact_id=delivery.contact_id,
        channel_id=delivery.channel_id,
        error=result.reason or None,
    )
    if result.ok:
        delivery.state = DeliveryState.SENT
        delivery.sent_s = txn.now_s
        if alert.state == AlertState.RESOLVED and delivery.purpose in TELLING:
            # it was on its way when the alert ended: now told, so owed the all-clear
            enqueue_all_clear(txn, alert, only=delivery.contact_id)
        return
    delivery.last_error = result.reason[:300]
    delay = (
        retry_delay_s(delivery.attempts, result.failure, item.severity)
        if result.failure is not None
        else None
    )
    if delay is not None:
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_s = txn.now_s + delay
        return
    delivery.state = DeliveryState.FAILED
    pass_on(txn, alert, delivery)


def fail_unprepared(
    txn: AlertTransaction, delivery_id: int, exc: Exception, *, then_pass_on: bool
) -> None:
    """Mark a delivery that could not even be prepared failed; pass it on if ``then_pass_on``."""
    delivery = txn.session.get_one(Delivery, delivery_id)
    alert = txn.session.get_one(Alert, delivery.alert_id)
    delivery.state = DeliveryState.FAILED
    delivery.last_error = f"could not be prepared (a bug or a bad row): {type(exc).__name__}"
    record(
        txn.session,
        txn.now_s,
        "delivery_set_aside",
        patient_id=alert.patient_id,
        alert_id=alert.id,
        delivery_id=delivery_id,
        error=type(exc).__name__,
        fell_through=then_pass_on,
    )
    if then_pass_on:
        pass_on(txn, alert, delivery)


def pass_on(txn: AlertTransaction, alert: Alert, delivery: Delivery) -> None:
    """A channel gave up: try the contact's next channel, else escalate past the contact."""
    contact = txn.session.get_one(Contact, delivery.contact_id)
    index = next(i for i, c in enumerate(contact.channels) if c.id == delivery.channel_id)
    record(
        txn.session,
        txn.now_s,
        "channel_gave_up",
        patient_id=alert.patient_id,
        alert_id=alert.id,
        delivery_id=delivery.id,
        contact_id=contact.id,
        channel_index=index,
    )
    # the same step, in the round it was planned in (the alert may have been renumbered since)
    if enqueue_next_channel(txn, alert, delivery, contact, index):
        return
    record(
        txn.session,
        txn.now_s,
        "contact_unreachable",
        patient_id=alert.patient_id,
        alert_id=alert.id,
        contact_id=contact.id,
    )
    levels = escalation_levels(txn.session, alert.patient_id)
    # a finished alert keeps its level while the care team may have shrunk under it
    at_level = 0 <= alert.level < len(levels) and levels[alert.level].id == contact.id
    if alert.state == AlertState.ACTIVE and at_level and delivery.purpose != Purpose.RESOLVED:
        patient = txn.session.get_one(Patient, alert.patient_id)
        # Pretend the acknowledgement timeout ran out: the next level is alerted now.
        alert.level_notified_s = txn.now_s - patient.ack_timeout_s
        alert.next_action_s = txn.now_s
        txn.wake = True
