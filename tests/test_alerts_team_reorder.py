"""Reordering a care team during an open alert: nobody told stops hearing, nobody is skipped.

An alert's level counts the members told so far, in escalation order. Before, a reorder
mid-alert sent the member moved first a "REPEAT" of an alert they had never been told of, and
the member moved down stopped getting its repeats. Real deliveries to a local HTTP receiver;
time is a fake clock.
"""

from __future__ import annotations

from models.alarm import Severity
from service.db.care_teams import reorder_contacts
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
