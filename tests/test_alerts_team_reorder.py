"""Reordering a care team during an open alert: nobody told stops hearing, nobody is skipped.

An alert's level counts the members told so far, in escalation order. Before, a reorder
mid-alert sent the member moved first a "REPEAT" of an alert they had never been told of, and
the member moved down stopped getting its repeats. Real deliveries to a local HTTP receiver;
time is a fake clock.
"""

from __future__ import annotations

from models.alarm import Severity
from service.db.care_teams import PolicyUpdate, reorder_contacts
from tests.alerting_helpers import FakeClock, HttpReceiver, build_stack, register_team
from tests.test_alerts_delivery import open_alert, step


def titles(inbox, who: str) -> list[str]:
    return ["REPEAT" if m.title.startswith("REPEAT") else "first" for m in inbox.to(f"/{who}")]


def test_a_caregiver_moved_ahead_of_the_one_told_is_told_and_repeats_go_on(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    team = [(name, [http.url(name)]) for name in ("ann", "bob", "cat")]
    ids = register_team(stack.db, "p1", team)
    open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    step(stack, clock, 30)
    assert (titles(inbox, "ann"), titles(inbox, "bob")) == (["first"], [])

    with stack.db.session() as session:
        reorder_contacts(session, "p1", [ids["bob"], ids["ann"], ids["cat"]], clock())
    step(stack, clock, 0)
    assert titles(inbox, "bob") == ["first"], "bob, now first, is told the alert itself"
    step(stack, clock, 60)
    assert titles(inbox, "ann") == ["first", "REPEAT"], "ann, told, keeps hearing of it"
    assert titles(inbox, "bob") == ["first", "REPEAT"]
    assert titles(inbox, "cat") == []
    step(stack, clock, 120)  # the acknowledgement timeout from the reorder: the next one
    assert titles(inbox, "cat") == ["first"]
    stack.close()


def test_an_order_that_keeps_the_told_ones_first_changes_nothing(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    team = [(name, [http.url(name)]) for name in ("ann", "bob", "cat")]
    ids = register_team(stack.db, "p1", team)
    open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    with stack.db.session() as session:
        reorder_contacts(session, "p1", [ids["ann"], ids["cat"], ids["bob"]], clock())
    step(stack, clock, 60)
    assert titles(inbox, "ann") == ["first", "REPEAT"]
    step(stack, clock, 120)  # the usual acknowledgement timeout: the new second one
    assert (titles(inbox, "cat"), titles(inbox, "bob")) == (["first"], [])
    stack.close()


def test_a_warning_told_before_quiet_hours_reaches_whoever_was_put_ahead_when_they_end(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """Quiet hours hold back warnings: a reorder during them must not wake the one put first."""
    clock = FakeClock()  # 16:00 UTC
    stack = build_stack(service_db_url, clock)
    team = [(name, [http.url(name)]) for name in ("ann", "bob", "cat")]
    policy = PolicyUpdate(
        cancel_window_s=60, ack_timeout_s=1800, repeat_interval_s=60, quiet_hours="16:05-07:00"
    )
    ids = register_team(stack.db, "p1", team, policy=policy)
    open_alert(stack, "p1", Severity.WARNING)
    stack.scheduler.run_until_idle()
    step(stack, clock, 60)  # the wearer's window is over (16:01): ann is told
    assert titles(inbox, "ann") == ["first"]
    step(stack, clock, 600)  # 16:11, in quiet hours
    with stack.db.session() as session:
        reorder_contacts(session, "p1", [ids["bob"], ids["ann"], ids["cat"]], clock())
    step(stack, clock, 0)
    step(stack, clock, 3600)
    assert titles(inbox, "bob") == [], "bob is not woken by a warning in quiet hours"
    step(stack, clock, 15 * 3600 - 4260)  # 07:00, quiet hours over
    assert titles(inbox, "bob") == ["first"]
    assert titles(inbox, "ann") == ["first"]
    stack.close()
