"""Open alerts kept right when their patient's care team changes.

An alert's ``level`` counts the care-team members told so far, in escalation order (caregivers,
then emergency contacts): those told keep being told (repeats, worsening, the all-clear), the next
one is told after the acknowledgement timeout. Adding, removing or reordering members must keep
that true for the alerts already open.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.alarm import Severity
from service.alerts.audit import record
from service.alerts.care_team import escalation_levels, policy_of
from service.alerts.delivery_queue import enqueue_channel
from service.alerts.lifecycle import Purpose, Send
from service.alerts.policy import quiet_until_s
from service.alerts.transaction import AlertTransaction
from service.db.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertState,
    Contact,
    Delivery,
    DeliveryState,
    Patient,
)


def wake_stalled_alerts(session: Session, patient_id: str, now_s: float | None = None) -> None:
    """Make the patient's live alerts that had nobody left to tell due again.

    An alert raised while the care team was empty, or one that reached its last level, has no
    next action; without this the contact just added would never hear of it. The scheduler (the
    service's, which polls the database) plans them on its next pass. With ``now_s``, alerts
    due later are due then too: a critical one that reached its last level repeats there, and
    its escalation to the newcomer, whose timeout has long run out, must not wait for the next
    repeat.
    """
    live = select(Alert).where(
        Alert.patient_id == patient_id,
        Alert.state.in_((AlertState.CANCEL_WINDOW, AlertState.ACTIVE)),
    )
    for alert in session.scalars(live):
        if alert.next_action_s is None:
            alert.next_action_s = alert.created_s  # due since it was raised: at once
        elif now_s is not None and alert.next_action_s > now_s:
            alert.next_action_s = now_s


def close_level(
    session: Session,
    contact: Contact,
    index: int,
    remaining: int,
    now_s: float,
    reason: str = "contact_removed",
) -> None:
    """Renumber the open alerts of ``contact``'s patient after it left escalation level ``index``.

    An alert's ``level`` counts the care-team members told so far; they keep being the ones
    told (repeats, all-clear), so a level past ``index`` moves down by one. An alert waiting on
    the contact goes to the next member at once. ``remaining`` is the number of levels now;
    ``reason`` is audited (the contact was removed, or went away and stands last). A new
    ``round`` keeps the idempotency keys of the renumbered levels from matching messages sent
    before.
    """
    patient = session.get_one(Patient, contact.patient_id)
    alerts = session.scalars(
        select(Alert).where(
            Alert.patient_id == contact.patient_id,
            Alert.state.in_(OPEN_ALERT_STATES),
            Alert.level >= index,
        )
    ).all()
    for alert in alerts:
        waited_on = alert.level == index
        alert.level -= 1
        alert.round += 1
        if waited_on and alert.state == AlertState.ACTIVE and index < remaining:
            # as if the acknowledgement timeout ran out: the next member is alerted now
            alert.level_notified_s = now_s - patient.ack_timeout_s
            alert.next_action_s = now_s
        record(
            session,
            now_s,
            "alert_level_renumbered",
            patient_id=alert.patient_id,
            alert_id=alert.id,
            level=alert.level,
            round=alert.round,
            reason=reason,
        )


def keep_told_ahead(
    session: Session,
    patient_id: str,
    levels_before: Sequence[int],
    now_s: float,
    reason: str = "contacts_reordered",
) -> int:
    """After the order changed, tell now whoever was put ahead of someone an open alert told.

    The order changes by a reorder, or by a caregiver added while an alert had reached an
    emergency contact (caregivers come first). Each open alert's level becomes the new position
    of the last member it told, so that its repeats still reach all of them; members now before
    that position who were not told get the alert at once (before, the one put ahead got a
    "REPEAT" of an alert never heard of, and a member moved down stopped hearing of one they had
    been told of). An active alert then waits the acknowledgement timeout from now before it
    goes further. A warning is told once quiet hours end, as the lifecycle holds it back (a
    critical alert at once). ``levels_before`` is the escalation order before the change;
    ``reason`` is audited. Returns how many were told.
    """
    policy = policy_of(session.get_one(Patient, patient_id))
    levels = escalation_levels(session, patient_id)
    order = [c.id for c in levels]
    alerts = session.scalars(
        select(Alert).where(
            Alert.patient_id == patient_id,
            Alert.state.in_(OPEN_ALERT_STATES),
            Alert.state != AlertState.CANCEL_WINDOW,  # nobody was told yet
        )
    ).all()
    txn = AlertTransaction(session, now_s)
    told_now = 0
    for alert in alerts:
        told = set(levels_before[: alert.level + 1]) & set(order)
        if not told:
            continue
        level = max(order.index(contact_id) for contact_id in told)
        if level == alert.level and told == set(order[: level + 1]):
            continue
        alert.level = level
        alert.round += 1  # the renumbered levels' keys must not match messages sent before
        if alert.state == AlertState.ACTIVE:
            alert.level_notified_s = now_s
            alert.repeat_count = 0
            alert.next_action_s = now_s
        record(
            session,
            now_s,
            "alert_level_renumbered",
            patient_id=patient_id,
            alert_id=alert.id,
            level=level,
            round=alert.round,
            reason=reason,
        )
        warning = Severity(alert.severity) is Severity.WARNING
        at_s = quiet_until_s(policy, now_s) if warning else None
        for index, contact in enumerate(levels[: level + 1]):
            if contact.id not in told:
                send = Send(Purpose.NOTIFY, index, repeat=0, only_level=True)
                told_now += enqueue_channel(txn, alert, send, contact, 0, at_s)
    return told_now


def skip_pending(
    session: Session,
    contact: Contact,
    now_s: float,
    *,
    reason: str,
    purposes: Sequence[Purpose] | None = None,
    channel_id: int | None = None,
) -> list[Delivery]:
    """Skip the messages still waiting to reach ``contact`` (of ``purposes``, default all).

    Through ``channel_id`` only, if given. Each is audited as ``delivery_skipped`` with
    ``reason`` (the contact was removed or went away, the channel was taken off). Returns them.
    """
    query = select(Delivery).where(
        Delivery.contact_id == contact.id, Delivery.state == DeliveryState.PENDING
    )
    if purposes is not None:
        query = query.where(Delivery.purpose.in_(purposes))
    if channel_id is not None:
        query = query.where(Delivery.channel_id == channel_id)
    pending = session.scalars(query).all()
    for delivery in pending:
        delivery.state = DeliveryState.SKIPPED
        record(
            session,
            now_s,
            "delivery_skipped",
            patient_id=contact.patient_id,
            alert_id=delivery.alert_id,
            delivery_id=delivery.id,
            reason=reason,
        )
    return list(pending)
