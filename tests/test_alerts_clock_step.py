"""Alert timers follow a system clock stepped back, while the service runs.

The timers are wall-clock times in the database. Before, a clock stepped back (NTP correcting a
clock that ran ahead) left every timer that much further ahead: an unacknowledged critical alert
stopped repeating and escalating for as long as the step. Real deliveries to a local HTTP
receiver; time is a fake clock.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from models.alarm import Severity
from service.alerts.scheduler import EscalationScheduler
from service.db import AuditEvent
from service.db.care_teams import PolicyUpdate
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


def test_a_band_check_held_for_the_end_of_quiet_hours_is_not_moved_into_them(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """The end of quiet hours is a time on the wall clock, not a span of it.

    A band charging overnight: its lost signal asks the wearer when quiet hours end, and the
    wearer's window runs from then. Moved back with the clock, the wearer was woken an hour
    early, and the caregivers' wait was cut.
    """
    clock = FakeClock()  # 16:00 UTC
    stack = build_stack(service_db_url, clock)
    policy = PolicyUpdate(
        signal_window_s=600, ack_timeout_s=180, repeat_interval_s=60, quiet_hours="14:00-18:00"
    )
    team = [("ann", [http.url("ann")])]
    register_team(stack.db, "p1", team, wearer=[http.url("wearer")], policy=policy)
    open_alert(stack, "p1", Severity.WARNING, kind="no_data")  # asked at 18:00
    stack.scheduler.run_until_idle()
    step(stack, clock, 60)
    clock.advance(-HOUR_S - 60)  # 15:00
    step(stack, clock, 1)
    step(stack, clock, 1.5 * HOUR_S - 1)  # 16:30
    step(stack, clock, HOUR_S)  # 17:30
    assert inbox.to("/wearer") == [], "the wearer is not asked in quiet hours"
    step(stack, clock, 1800)  # 18:00: quiet hours end
    assert len(inbox.to("/wearer")) == 1
    step(stack, clock, 590)
    assert inbox.to("/ann") == [], "the wearer has the whole window"
    step(stack, clock, 10)
    assert len(inbox.to("/ann")) == 1
    stack.close()


def test_a_step_whose_move_the_database_did_not_commit_is_followed_on_the_next_pass(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """A commit lost (a database restarting, a connection cut) must not lose the step.

    The pass fails and is retried (the scheduler's loop logs it); the timers it meant to move
    back are still an hour ahead, so the next pass must see the step again.
    """
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])])
    open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    step(stack, clock, 60)
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (2, 0)

    def commit_lost(_connection: object) -> None:
        event.remove(stack.db.engine, "commit", commit_lost)
        raise OperationalError("COMMIT", None, ConnectionError("server closed the connection"))

    clock.advance(-HOUR_S)
    event.listen(stack.db.engine, "commit", commit_lost)
    with pytest.raises(OperationalError):
        stack.scheduler.run_due()
    step(stack, clock, 1)
    step(stack, clock, 60)  # one repeat interval after the last repeat: repeated
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (3, 0)
    step(stack, clock, 60)  # the ack timeout (180 s) after ann was told: bob too
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (3, 1)
    stack.close()


def test_an_alert_raised_right_after_the_step_keeps_its_cancel_window(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """The first transaction at the new time moves the old timers, not the ones it writes.

    Found by the scheduler's next pass instead, a warning raised in between had its wearer's
    window moved back with the old timers and reached the caregiver at once.
    """
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")])])
    open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    assert len(inbox.to("/ann")) == 1
    clock.advance(-HOUR_S)
    open_alert(stack, "p1", Severity.WARNING, kind="flush")  # before any scheduler pass
    step(stack, clock, 30)
    assert [m.title for m in inbox.to("/ann") if "flush" in m.title.lower()] == []
    step(stack, clock, 30)  # the window (60 s) is over
    assert [m.title for m in inbox.to("/ann") if "flush" in m.title.lower()] != []
    stack.close()
