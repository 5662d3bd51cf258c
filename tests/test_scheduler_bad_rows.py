"""One bad row does not stop every patient's escalations.

An alert or delivery row the scheduler cannot process (a value no version of the code knows,
written by hand or by an older version; a delivery pointing at a channel its contact does not
have) used to fail the whole pass, at every pass: nobody else's alert escalated and no message
went out. Now each row is worked in a savepoint of its own; a bad one is set aside, counted,
logged once (ids and the error's class, never its values) and marked in the audit trail, and
the others go on. Real SQLite or PostgreSQL, real HTTP receiver, fake clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models.alarm import Severity
from service.alerts.care_team import policy_of
from service.alerts.lifecycle import plan_alert
from service.alerts.manager import clock_of
from service.db import Alert, AuditEvent, Delivery, Patient
from service.db.models import Channel, Contact, DeliveryState
from tests.alerting_helpers import AlertingStack, FakeClock, HttpReceiver, Inbox, build_stack
from tests.alerting_helpers import register_team as register

SCHEDULER_LOG = "service.alerts.scheduler"
ACK_TIMEOUT_S = 180.0
"""The care teams' acknowledgement timeout (``register_team``'s policy)."""


@pytest.fixture
def stack(service_db_url: str, http: HttpReceiver) -> Iterator[AlertingStack]:
    """Healthy p1 (ann, then bob) and p2 (cat with two channels, then dan), on a fake clock."""
    built = build_stack(service_db_url, FakeClock())
    register(built.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])])
    register(
        built.db,
        "p2",
        [("cat", [http.url("cat-1"), http.url("cat-2")]), ("dan", [http.url("dan")])],
    )
    built.clock = built.manager.clock
    yield built
    built.close()


def open_critical(stack: AlertingStack, patient_id: str, *, notified: bool = False) -> int:
    """A critical alert, due now; ``notified``: its first message already queued, as a pass does."""
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, patient_id)
        alert = stack.manager.open_alert(
            txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s
        )
        if notified:
            plan = plan_alert(clock_of(alert), policy_of(patient), 2, txn.now_s)
            stack.manager.apply_plan(txn, alert, plan)
        return alert.id


def actions(stack: AlertingStack, alert_id: int) -> list[str]:
    with stack.db.session() as session:
        query = select(AuditEvent.action).where(AuditEvent.alert_id == alert_id)
        return list(session.scalars(query.order_by(AuditEvent.id)))


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SCHEDULER_LOG and r.levelno >= logging.WARNING]


def passes(stack: AlertingStack, count: int) -> None:
    for _ in range(count):
        stack.scheduler.run_due(wait=True)


def test_a_bad_alert_row_does_not_stop_another_patients_escalation(
    stack: AlertingStack, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=SCHEDULER_LOG)
    clock: FakeClock = stack.clock
    bad = open_critical(stack, "p2")
    with stack.db.session() as session:
        # a severity no version knows (an older version's, or typed by hand), due now
        session.get_one(Alert, bad).severity = "bogus-severity"
    healthy = open_critical(stack, "p1")

    stack.scheduler.run_until_idle()
    told_ann = inbox.wait_for("ann", 1)
    assert len(told_ann) == 1 and told_ann[0].title.startswith("CRITICAL"), told_ann
    clock.advance(ACK_TIMEOUT_S)  # nobody acknowledged: bob's turn, on time
    stack.scheduler.run_until_idle()
    assert len(inbox.wait_for("bob", 1)) == 1
    assert "escalated" in actions(stack, healthy)
    passes(stack, 20)  # the bad row is met at many passes ...

    told = loud(caplog)  # ... and told once, with its ids and the error's class only
    assert len(told) == 1, [r.getMessage() for r in told]
    text = logging.Formatter().format(told[0])
    assert told[0].levelno == logging.ERROR
    assert f"alert {bad} of patient p2 set aside (ValueError" in text, text
    assert 'File "' in text and "clock_of" in text, text  # where, for whoever fixes it
    assert "bogus" not in text and "Alex" not in text, text  # never the row's values
    assert actions(stack, bad).count("alert_set_aside") == 1
    assert stack.scheduler.rows_set_aside == 1
    next_s = stack.scheduler.next_due_s()  # the bad row is not due at every pass: no busy loop
    assert next_s is None or next_s > clock(), next_s

    # mended by hand: it is taken up again at the next retry
    with stack.db.session() as session:
        session.get_one(Alert, bad).severity = Severity.CRITICAL
    clock.advance(60.0)
    stack.scheduler.run_until_idle()
    assert inbox.wait_for("cat-1", 1)
    assert inbox.to("ann") and len(inbox.to("bob")) >= 1


@pytest.mark.parametrize("poison", ["purpose", "channel"])
def test_a_bad_delivery_row_fails_over_and_others_are_sent(
    stack: AlertingStack, inbox: Inbox, caplog: pytest.LogCaptureFixture, poison: str
) -> None:
    caplog.set_level(logging.DEBUG, logger=SCHEDULER_LOG)
    bad_alert = open_critical(stack, "p2", notified=True)
    with stack.db.session() as session:
        delivery = session.scalars(select(Delivery).where(Delivery.alert_id == bad_alert)).one()
        if poison == "purpose":
            delivery.purpose = "pager"  # a purpose this version does not know
        else:
            # a channel its contact does not have (another contact's): it cannot be opened
            other = session.scalars(
                select(Channel).join(Contact).where(Contact.patient_id == "p1")
            ).first()
            assert other is not None
            delivery.channel_id = other.id
        bad = delivery.id
    open_critical(stack, "p1")

    stack.scheduler.run_until_idle()
    assert len(inbox.wait_for("ann", 1)) == 1  # the other patient's message went out
    if poison == "purpose":  # the same step went on to cat's next channel at once
        assert len(inbox.wait_for("cat-2", 1)) == 1
    assert not inbox.to("cat-1")
    if poison == "channel":
        # no next channel follows one that is not hers: the alert's own timer goes on to dan
        stack.clock.advance(ACK_TIMEOUT_S)
        stack.scheduler.run_until_idle()
        assert len(inbox.wait_for("dan", 1)) == 1
    passes(stack, 10)

    with stack.db.session() as session:
        assert session.get_one(Delivery, bad).state == DeliveryState.FAILED
        last_error = session.get_one(Delivery, bad).last_error
    assert last_error == "could not be prepared (a bug or a bad row): ValueError" or (
        last_error == "could not be prepared (a bug or a bad row): StopIteration"
    )
    assert actions(stack, bad_alert).count("delivery_set_aside") == 1
    told = loud(caplog)
    assert len(told) == 1, [r.getMessage() for r in told]
    assert f"delivery {bad} of alert {bad_alert} set aside (" in told[0].getMessage()
    assert "pager" not in logging.Formatter().format(told[0])
    assert stack.scheduler.rows_set_aside == 1
