"""Alert timers that follow the system clock when it is stepped back.

The alert clocks in the database are wall-clock times (they must survive a restart). When the
system clock is stepped back (NTP correcting a clock that ran ahead, a device without a
real-time clock that booted with a later time), every timer set before the step lies that much
further in the future: an unacknowledged critical alert stopped repeating, and escalating, for
as long as the step (an hour for a wrong time zone).

The alert manager's previous transaction lying ahead of the clock tells the step, and the first
transaction after it moves the timers, before anything is written at the new time (not the
database's times: an admin command run on a machine whose clock is a little ahead writes those
too). The timers of live alerts and queued deliveries are then moved back with the clock, so
that each keeps the time it had left; times that record what happened (created, sent,
acknowledged) are left as they are, and so is the end of quiet hours a delivery (and the
wearer's window after it) waits for. A step while the service is stopped is not seen.
"""

from __future__ import annotations

import logging

from sqlalchemy import and_, case, not_, select, update

from service.alerts.audit import record
from service.alerts.const import CLOCK_STEP_TOLERANCE_S
from service.alerts.transaction import AlertTransaction
from service.db.models import Alert, AlertState, Delivery, DeliveryState

log = logging.getLogger(__name__)

_LIVE = (AlertState.CANCEL_WINDOW, AlertState.ACTIVE)


def follow_clock_step(txn: AlertTransaction, previous_s: float | None) -> float:
    """Move the live timers back by the clock's step, if it went back; returns the step (s)."""
    step = 0.0 if previous_s is None else previous_s - txn.now_s
    if step <= CLOCK_STEP_TOLERANCE_S:
        return 0.0
    # A delivery held for the end of quiet hours (queued for later, never tried) waits for a time
    # the wall clock reads, not for a span of it; so does the wearer's window of its alert, which
    # runs from then. Moved back, the wearer of a band charging overnight was woken in them.
    held = and_(Delivery.attempts == 0, Delivery.next_attempt_s > Delivery.created_s)
    held_windows = select(Delivery.alert_id).where(Delivery.state == DeliveryState.PENDING, held)
    live = and_(
        Alert.state.in_(_LIVE),
        not_(and_(Alert.state == AlertState.CANCEL_WINDOW, Alert.id.in_(held_windows))),
    )
    txn.session.execute(
        update(Alert)
        .where(live)
        .values(
            level_notified_s=Alert.level_notified_s - step,
            next_action_s=Alert.next_action_s - step,
            cancel_until_s=Alert.cancel_until_s - step,
        )
        .execution_options(synchronize_session=False)
    )
    txn.session.execute(
        update(Delivery)
        .where(
            Delivery.state == DeliveryState.PENDING,
            Delivery.next_attempt_s > txn.now_s,
            not_(held),
        )
        .values(
            next_attempt_s=case(
                (Delivery.next_attempt_s - step > txn.now_s, Delivery.next_attempt_s - step),
                else_=txn.now_s,
            )
        )
        .execution_options(synchronize_session=False)
    )
    log.warning(
        "the system clock went back by %.0f s; the alert timers were moved back with it", step
    )
    record(txn.session, txn.now_s, "clock_stepped_back", step_s=round(step, 3))
    return step
