"""Alert timers follow a system clock stepped back, while the service runs.

The timers are wall-clock times in the database. Before, a clock stepped back (NTP correcting a
clock that ran ahead) left every timer that much further ahead: an unacknowledged critical alert
stopped repeating and escalating for as long as the step. Real deliveries to a local HTTP
receiver; time is a fake clock.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models.alarm import Severity
from service.alerts.scheduler import EscalationScheduler
from service.db import AuditEvent
from tests.alerting_helpers import FakeClock, HttpReceiver, build_stack, register_team
from tests.test_alerts_delivery import open_alert, step

HOUR_S = 3600.0


def test_a_critical_alert_keeps_repeating_after_the_clock_goes_back_an_hour(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])])
    open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    step(stack, clock, 60)
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (2, 0)

    clock.advance(-HOUR_S)
    step(stack, clock, 1)
    step(stack, clock, 60)  # one repeat interval after the last repeat: repeated
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (3, 0)
    step(stack, clock, 60)  # the ack timeout (180 s) after ann was told: bob too
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (3, 1)
    with stack.db.session() as session:
        steps = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "clock_stepped_back")
        ).all()
    assert len(steps) == 1 and steps[0]["step_s"] == pytest.approx(HOUR_S - 1, abs=1)
    stack.close()


def test_a_clock_going_forward_or_a_restart_is_no_step_back(
    service_db_url: str, inbox, http
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")])])
    open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    step(stack, clock, HOUR_S)  # a pause: one catch-up repeat, timers untouched
    step(stack, clock, 60)
    assert len(inbox.to("/ann")) == 3
    stack.scheduler.stop()
    stack.scheduler = EscalationScheduler(stack.manager, stack.scheduler.notifier)
    step(stack, clock, 60)
    assert len(inbox.to("/ann")) == 4
    with stack.db.session() as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "clock_stepped_back" not in actions
    stack.close()
