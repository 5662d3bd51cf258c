"""Telling the wearer to charge their band before it runs flat.

A band that runs flat silences flarewatch: no alarm can be raised, no alert reaches the
caregivers, and the "no data" alert that follows asks the wearer about a band they did not take
off. So when a band reports its battery low (``service.episodes.processor``), the wearer is told
once, on their own channels only: charging is theirs to do, the caregivers hear nothing of it.
Never in quiet hours (held until they end: a band low at 23:00 is charged in the morning). The
band reporting a charged battery ends the low spell; the next one tells them again.

The message is a step of an alert of its own, over from the start (as a band-off reminder is a
step of its cancelled alert): queued with the change, retried, sent through the wearer's next
channel if the first fails, and resumed after a restart.
"""

from __future__ import annotations

from typing import Final

from models.alarm import Severity
from service.alerts.audit import record
from service.alerts.care_team import policy_of
from service.alerts.delivery_queue import enqueue
from service.alerts.lifecycle import Purpose, Send
from service.alerts.policy import quiet_until_s
from service.alerts.transaction import AlertTransaction
from service.db.models import Alert, AlertState, Patient

BATTERY_LOW: Final = "battery_low"
"""The alert kind (and signal) of a battery notice."""


def tell_battery_low(txn: AlertTransaction, patient: Patient, since_s: float) -> int:
    """Queue the wearer's notice that their band's battery is low; how many messages."""
    at_s = quiet_until_s(policy_of(patient), txn.now_s) or txn.now_s
    alert = Alert(
        patient_id=patient.id,
        signal=BATTERY_LOW,
        kind=BATTERY_LOW,
        severity=Severity.WARNING,
        state=AlertState.RESOLVED,  # nothing to answer, nobody to escalate to
        created_s=txn.now_s,
        since_s=since_s,
        closed_s=txn.now_s,
        round=0,
        level=-1,
        repeat_count=0,
    )
    txn.session.add(alert)
    txn.session.flush()
    queued = enqueue(txn, alert, Send(Purpose.BATTERY_LOW, 0, 0, True), at_s)
    record(
        txn.session, txn.now_s, "battery_notice_queued", patient_id=patient.id,
        alert_id=alert.id, messages=queued,
    )  # fmt: skip
    txn.wake = True
    return queued
