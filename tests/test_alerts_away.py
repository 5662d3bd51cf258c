"""Care-team members away: alerts go to everyone available first, never to nobody.

Real deliveries to a local HTTP receiver; time is a fake clock.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from flarewatch.errors import ConfigError
from models.alarm import Severity
from service.alerts.absence import go_away, set_away
from service.alerts.const import MAX_AWAY_S
from service.db import Alert, AuditEvent
from service.db.models import Contact
from tests.alerting_helpers import FakeClock, HttpReceiver, build_stack, register_team
from tests.test_alerts_delivery import open_alert, step

HOUR = 3600.0


def heard(inbox, who: str) -> list[str]:
    """What ``who`` was sent, in order: the alert itself, a repeat, or the all-clear."""
    kinds = []
    for message in inbox.to(f"/{who}"):
        title = message.title
        kinds.append(
            "REPEAT" if title.startswith("REPEAT") else "clear" if "clear" in title else "first"
        )
    return kinds


def _away(stack, contact_ids: list[int], until_s: float | None, now_s: float) -> None:
    with stack.db.session() as session:
        contacts = [session.get_one(Contact, contact_id) for contact_id in contact_ids]
        set_away(session, contacts, until_s, now_s)


def _team(stack, http: HttpReceiver) -> dict[str, int]:
    return register_team(
        stack.db,
        "p1",
        [(name, [http.url(name)]) for name in ("ann", "bob")],
        emergency=("eve", [http.url("eve")]),
    )


def test_an_alert_passes_over_a_caregiver_away_and_reaches_them_last(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    ids = _team(stack, http)
    _away(stack, [ids["ann"]], clock() + 24 * HOUR, clock())
    open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    assert (heard(inbox, "bob"), heard(inbox, "ann")) == (["first"], []), "bob first, at once"
    step(stack, clock, 180)  # bob did not answer: the emergency contact, still before ann
    assert "first" in heard(inbox, "eve")
    assert heard(inbox, "ann") == []
    step(stack, clock, 180)  # nobody available answered: ann is told all the same
    assert heard(inbox, "ann") == ["first"]
    [told] = inbox.to("/ann")
    assert "nobody answered" in told.title
    assert "You are marked away, but the people alerted before you have not answered" in told.body
    stack.close()


def test_a_whole_team_away_is_told_as_if_nobody_were(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    ids = _team(stack, http)
    _away(stack, list(ids.values()), clock() + 8 * HOUR, clock())
    open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    assert (heard(inbox, "ann"), heard(inbox, "bob")) == (["first"], [])
    assert "You are marked away, and so is everyone else" in inbox.to("/ann")[0].body
    step(stack, clock, 180)
    assert heard(inbox, "bob")[0] == "first"
    stack.close()


def test_going_away_during_an_alert_passes_it_on_at_once(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """ann was told; away, she hears no more of it but its end, and bob is told now."""
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    ids = _team(stack, http)
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 30)
    assert (heard(inbox, "ann"), heard(inbox, "bob")) == (["first"], [])
    _away(stack, [ids["ann"]], clock() + HOUR, clock())
    step(stack, clock, 0)
    assert heard(inbox, "bob") == ["first"], "the alert waiting on ann goes on at once"
    step(stack, clock, 90)
    assert heard(inbox, "ann") == ["first"], "no repeats to someone away"
    assert heard(inbox, "bob") == ["first", "REPEAT"]
    assert heard(inbox, "eve") == [], "bob has his own time to answer"
    with stack.manager.transaction() as txn:
        stack.manager.resolve_alert(txn, txn.session.get_one(Alert, alert_id), "episode_closed")
    step(stack, clock, 0)
    assert heard(inbox, "ann")[-1] == "clear", "she was told of it: she hears it is over"
    assert heard(inbox, "bob")[-1] == "clear"
    assert heard(inbox, "eve") == []
    stack.close()


def test_back_at_the_end_of_the_absence_she_is_told_of_the_open_alert(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    ids = _team(stack, http)
    _away(stack, [ids["ann"]], clock() + 100, clock())
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    assert (heard(inbox, "ann"), heard(inbox, "bob")) == ([], ["first"])
    assert stack.scheduler.next_due_s() is not None
    step(stack, clock, 100)  # the absence ends by itself: nobody calls anything
    assert heard(inbox, "ann") == ["first"], "back first in line, told of the alert at once"
    step(stack, clock, 60)
    assert heard(inbox, "ann") == ["first", "REPEAT"]
    assert heard(inbox, "bob")[-1] == "REPEAT"
    with stack.db.session() as session:
        back = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact_back")).one()
        assert back.detail == {"contact_id": ids["ann"], "reason": "away_ended"}
        assert session.get_one(Contact, ids["ann"]).away_until_s is None
        renumbered = session.scalars(
            select(AuditEvent).where(
                AuditEvent.alert_id == alert_id, AuditEvent.action == "alert_level_renumbered"
            )
        ).one()
        assert renumbered.detail["reason"] == "contact_back"
    stack.close()


def test_back_by_hand_with_nothing_open_sends_nothing(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    ids = _team(stack, http)
    _away(stack, [ids["ann"], ids["bob"]], clock() + HOUR, clock())
    _away(stack, [ids["ann"], ids["bob"]], None, clock())
    step(stack, clock, 2 * HOUR)
    assert inbox.to("/ann") == inbox.to("/bob") == []
    open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    assert heard(inbox, "ann") == ["first"], "back in her place"
    stack.close()


def test_a_warning_held_for_quiet_hours_is_not_sent_to_someone_gone_away(
    service_db_url: str, inbox, http: HttpReceiver
) -> None:
    """A notice waiting for the end of quiet hours is skipped if its addressee leaves first."""
    from service.db.care_teams import PolicyUpdate

    clock = FakeClock()  # 16:00 UTC
    stack = build_stack(service_db_url, clock)
    policy = PolicyUpdate(
        cancel_window_s=60, ack_timeout_s=1800, repeat_interval_s=60, quiet_hours="16:00-07:00"
    )
    ids = register_team(stack.db, "p1", [(n, [http.url(n)]) for n in ("ann", "bob")], policy=policy)
    open_alert(stack, "p1", Severity.WARNING)
    step(stack, clock, 3600)
    _away(stack, [ids["ann"]], clock() + 24 * HOUR, clock())
    step(stack, clock, 15 * HOUR)  # 08:00, quiet hours over
    assert heard(inbox, "ann") == []
    assert heard(inbox, "bob") == ["first"]
    stack.close()


@pytest.mark.parametrize("until", [-1.0, 0.0, MAX_AWAY_S + 1, float("nan")])
def test_an_absence_ends_in_the_future_and_within_thirty_days(
    service_db_url: str, http: HttpReceiver, until: float
) -> None:
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    ids = _team(stack, http)
    with stack.db.session() as session, pytest.raises(ConfigError, match="absence"):
        go_away(session, session.get_one(Contact, ids["ann"]), clock() + until, clock())
    stack.close()
