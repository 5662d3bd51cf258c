"""Reordering a care team during an open alert: nobody told stops hearing, nobody is skipped.

An alert's level counts the members told so far, in escalation order. Before, a reorder
mid-alert sent the member moved first a "REPEAT" of an alert they had never been told of, and
the member moved down stopped getting its repeats; the all-clear went to whoever the reorder put
ahead even if their notice never went out, and a message being retried when the reorder renumbered
the alert never fell through to the contact's next channel. Real deliveries to a local HTTP
receiver; time is a fake clock.
"""

from __future__ import annotations

from models.alarm import Severity
from service.db import Alert
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


def _reorder(stack, ids: dict[str, int], names: tuple[str, ...], now_s: float) -> None:
    with stack.db.session() as session:
        reorder_contacts(session, "p1", [ids[name] for name in names], now_s)


def _resolve(stack, alert_id: int) -> None:
    with stack.manager.transaction() as txn:
        stack.manager.resolve_alert(txn, txn.session.get_one(Alert, alert_id), "episode_closed")


def test_the_all_clear_of_an_acknowledged_alert_skips_whoever_a_reorder_put_ahead(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """bob, put ahead after ann acknowledged, was never told: he must not get the all-clear."""
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    ids = register_team(stack.db, "p1", [(name, [http.url(name)]) for name in ("ann", "bob")])
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    stack.manager.acknowledge(alert_id, by="ann", via="test")
    _reorder(stack, ids, ("bob", "ann"), clock())
    step(stack, clock, 30)
    _resolve(stack, alert_id)
    step(stack, clock, 0)
    assert [m.title.split(" - ")[0] for m in inbox.to("/ann")] == [
        "CRITICAL: Alex",
        "All clear: Alex",
    ]
    assert inbox.to("/bob") == [], "bob was told the all-clear of an alert he never heard of"
    stack.close()


def test_the_all_clear_in_quiet_hours_skips_whoever_still_waits_for_them_to_end(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """A warning's notice to the one put ahead waits for the end of quiet hours; it ends first."""
    clock = FakeClock()  # 16:00 UTC
    stack = build_stack(service_db_url, clock)
    policy = PolicyUpdate(
        cancel_window_s=60, ack_timeout_s=1800, repeat_interval_s=60, quiet_hours="16:05-07:00"
    )
    team = [(name, [http.url(name)]) for name in ("ann", "bob")]
    ids = register_team(stack.db, "p1", team, policy=policy)
    alert_id = open_alert(stack, "p1", Severity.WARNING)
    step(stack, clock, 60)  # 16:01: ann is told
    step(stack, clock, 600)  # 16:11, quiet hours
    _reorder(stack, ids, ("bob", "ann"), clock())
    step(stack, clock, 60)
    _resolve(stack, alert_id)
    step(stack, clock, 0)
    assert titles(inbox, "ann") == ["first", "first"]  # the warning, then its all-clear
    assert inbox.to("/ann")[-1].title.startswith("All clear")
    assert inbox.to("/bob") == [], "bob got the all-clear of a warning held back from him"
    step(stack, clock, 15 * 3600)  # past 07:00: the held notice of a resolved alert stays unsent
    assert inbox.to("/bob") == []
    stack.close()


def test_a_delivery_retrying_across_a_reorder_still_falls_through_to_the_next_channel(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """ann's first channel answers 500; the reorder renumbers the alert while she is retried."""
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    team = [("ann", [http.url("ann-fail"), http.url("ann-ok")]), ("bob", [http.url("bob")])]
    ids = register_team(stack.db, "p1", [*team, ("cat", [http.url("cat")])])
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    assert http.hits == {"/ann-fail": 1}  # retried in 1 s
    _reorder(stack, ids, ("bob", "ann", "cat"), clock())
    step(stack, clock, 0)
    for _ in range(3):  # 1 s, 2 s: three attempts, then the next channel
        step(stack, clock, 2)
    assert http.hits["/ann-fail"] == 3
    assert len(inbox.to("/ann-ok")) == 1, "ann's second channel never got the alert"
    assert inbox.to("/cat") == [], "cat is next only once ann is unreachable"
    _resolve(stack, alert_id)
    for _ in range(3):
        step(stack, clock, 2)
    assert inbox.to("/ann-ok")[-1].title.startswith("All clear"), "ann was told: all-clear too"
    assert inbox.to("/bob")[-1].title.startswith("All clear") and inbox.to("/cat") == []
    stack.close()


def test_a_contact_unreachable_across_a_reorder_passes_the_alert_on_at_once(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    team = [("ann", [http.url("ann-fail"), http.url("ann-fail-2")]), ("bob", [http.url("bob")])]
    ids = register_team(stack.db, "p1", [*team, ("cat", [http.url("cat")])])
    open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    _reorder(stack, ids, ("bob", "ann", "cat"), clock())
    for _ in range(6):
        step(stack, clock, 2)
    assert (http.hits["/ann-fail"], http.hits.get("/ann-fail-2")) == (3, 3)
    assert len(inbox.to("/cat")) == 1, "cat must not wait for the acknowledgement timeout"
    stack.close()
