"""A caregiver added during an alert that already reached the emergency contact.

Caregivers come before emergency contacts in escalation order, so the new caregiver takes the
level the emergency contact was told at. Before, the alert's level then named the newcomer: its
repeats went to someone never told (a "REPEAT" of an alert never heard of), the emergency contact
who was told stopped hearing of it, and an escalation told the emergency contact again while the
newcomer never got the alert itself. Real deliveries to a local HTTP receiver; a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.alarm import Severity
from service.db.care_teams import add_contact
from tests.alerting_helpers import (
    AlertingStack,
    FakeClock,
    HttpReceiver,
    build_stack,
    register_team,
)
from tests.test_alerts_delivery import open_alert, step
from tests.test_alerts_team_reorder import titles


@pytest.fixture
def stack(service_db_url: str) -> Iterator[AlertingStack]:
    built = build_stack(service_db_url, FakeClock())
    yield built
    built.close()


def test_a_caregiver_added_after_the_emergency_contact_was_told_is_told_and_repeats_go_on(
    stack: AlertingStack, inbox, http: HttpReceiver
) -> None:
    clock = stack.manager.clock
    assert isinstance(clock, FakeClock)
    register_team(
        stack.db, "p1", [("ann", [http.url("ann")])], emergency=("ems", [http.url("ems")])
    )
    open_alert(stack, "p1", Severity.CRITICAL)
    step(stack, clock, 0)
    step(stack, clock, 180)  # ann's acknowledgement timeout: the emergency contact is told
    assert titles(inbox, "ems") == ["first"]

    with stack.db.session() as session:
        add_contact(session, "p1", "cat", [http.url("cat")], now_s=clock())
    step(stack, clock, 0)
    assert titles(inbox, "cat") == ["first"], "cat, now before ems, is told the alert itself"
    step(stack, clock, 60)
    assert titles(inbox, "ems") == ["first", "REPEAT"], "ems, told, keeps hearing of it"
    assert titles(inbox, "cat") == ["first", "REPEAT"]
    assert titles(inbox, "ann")[-1] == "REPEAT"


def test_a_warning_past_its_last_level_reaches_a_caregiver_added_before_the_emergency_contact(
    stack: AlertingStack, inbox, http: HttpReceiver
) -> None:
    """The documented promise of `caregiver add`: as if the newcomer had been on the team."""
    clock = stack.manager.clock
    assert isinstance(clock, FakeClock)
    register_team(
        stack.db, "p1", [("ann", [http.url("ann")])], emergency=("ems", [http.url("ems")])
    )
    open_alert(stack, "p1", Severity.WARNING, kind="flush")
    step(stack, clock, 60)  # the wearer's window is over: ann
    step(stack, clock, 180)  # then ems, the last level: nothing left to do
    assert (titles(inbox, "ann"), titles(inbox, "ems")) == (["first"], ["first"])

    with stack.db.session() as session:
        add_contact(session, "p1", "cat", [http.url("cat")], now_s=clock())
    step(stack, clock, 0)
    assert titles(inbox, "cat") == ["first"], "the added caregiver never heard of the warning"
    step(stack, clock, 600)
    assert titles(inbox, "ems") == ["first"], "ems was told the same warning twice"
