"""Away on a schedule: a caregiver away at the same hours every week, without saying so each time.

Real deliveries to a local HTTP receiver, SQLite and PostgreSQL, a fake clock starting on Monday
24 November 2025 at 16:00 UTC (the patient's clock is UTC). Ann then Bob are on Alex's team.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flarewatch.errors import ConfigError
from models.alarm import Severity
from service.alerts.absence import come_back, go_away
from service.alerts.away_schedule import AwaySchedule, parse_days, set_away_schedule
from service.db.models import Contact
from tests.alerting_helpers import (
    AlertingStack,
    FakeClock,
    HttpReceiver,
    Inbox,
    build_stack,
    register_team,
)
from tests.test_alerts_away import heard
from tests.test_alerts_delivery import open_alert, step

T0 = 1_764_000_000.0  # Monday 16:00 UTC
HOUR = 3600.0
DAY = 86_400.0
AT_WORK = AwaySchedule("12345", "16:30", "17:30")


@pytest.fixture
def team(service_db_url: str, http: HttpReceiver) -> Iterator[tuple[AlertingStack, int]]:
    stack = build_stack(service_db_url, FakeClock(T0))
    ids = register_team(stack.db, "p1", [(name, [http.url(name)]) for name in ("ann", "bob")])
    yield stack, ids["ann"]
    stack.close()


def _schedule(stack: AlertingStack, contact_id: int, schedule: AwaySchedule | None) -> None:
    with stack.db.session() as session:
        contact = session.get_one(Contact, contact_id)
        set_away_schedule(session, contact, schedule, stack.fake_clock(), by="Ann", via="test")


def _away_until(stack: AlertingStack, contact_id: int) -> float | None:
    with stack.db.session() as session:
        return session.get_one(Contact, contact_id).away_until_s


def test_away_in_each_window_of_the_week_and_passed_over_then(
    team: tuple[AlertingStack, int], inbox: Inbox
) -> None:
    stack, ann = team
    _schedule(stack, ann, AT_WORK)
    assert _away_until(stack, ann) is None, "not yet: the window starts at 16:30"
    stack.run_until(T0 + 1800)
    assert _away_until(stack, ann) == T0 + 1.5 * HOUR, "away until 17:30"

    open_alert(stack, "p1", Severity.CRITICAL)  # at 16:30: Bob first, Ann passed over
    step(stack, stack.fake_clock, 0)
    assert (heard(inbox, "bob"), heard(inbox, "ann")) == (["first"], [])
    stack.run_until(T0 + 1.5 * HOUR, step_s=60)
    assert _away_until(stack, ann) is None, "back at 17:30"

    # every weekday at 16:30, never on the weekend: Tuesday to Friday, then next Monday
    starts = []
    while stack.fake_clock() < T0 + 7 * DAY + HOUR:
        stack.run_until(stack.fake_clock() + 1800, step_s=1800)
        until_s = _away_until(stack, ann)
        if until_s is not None and (not starts or until_s != starts[-1]):
            starts.append(until_s)
    assert [round((s - T0) / DAY, 3) for s in starts] == [
        round((d * DAY + 1.5 * HOUR) / DAY, 3) for d in (1, 2, 3, 4, 7)
    ]


def test_back_by_hand_ends_one_window_and_a_longer_absence_is_kept(
    team: tuple[AlertingStack, int],
) -> None:
    stack, ann = team
    _schedule(stack, ann, AT_WORK)
    stack.run_until(T0 + 2400)  # 16:40, in the window
    with stack.db.session() as session:
        come_back(session, session.get_one(Contact, ann), stack.fake_clock(), reason="by_hand")
    stack.run_until(T0 + DAY)  # Tuesday 16:00
    assert _away_until(stack, ann) is None
    with stack.db.session() as session:  # off to a conference until Tuesday 20:00
        go_away(session, session.get_one(Contact, ann), T0 + DAY + 4 * HOUR, stack.fake_clock())
    stack.run_until(
        T0 + DAY + 1800, step_s=600
    )  # Tuesday's window begins: the longer absence stays
    assert _away_until(stack, ann) == T0 + DAY + 4 * HOUR


def test_a_night_window_set_during_it_is_away_at_once_until_the_morning(
    team: tuple[AlertingStack, int],
) -> None:
    stack, ann = team
    stack.run_until(T0 + 7 * HOUR)  # Monday 23:00
    _schedule(stack, ann, AwaySchedule("1234567", "22:00", "06:00"))
    assert _away_until(stack, ann) == T0 + 14 * HOUR, "until Tuesday 06:00"
    stack.run_until(T0 + 14 * HOUR)
    assert _away_until(stack, ann) is None
    stack.run_until(T0 + 30 * HOUR)  # Tuesday 22:00
    assert _away_until(stack, ann) == T0 + 38 * HOUR
    _schedule(stack, ann, None)  # no weekly absence: tonight's keeps its end, no more after
    stack.run_until(T0 + 2 * DAY + 7 * HOUR)
    assert _away_until(stack, ann) is None


def test_the_schedule_goes_on_after_a_restart(service_db_url: str, http: HttpReceiver) -> None:
    first = build_stack(service_db_url, FakeClock(T0))
    ids = register_team(first.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])])
    _schedule(first, ids["ann"], AT_WORK)
    first.close()
    again = build_stack(service_db_url, FakeClock(T0 + 1860))
    try:
        again.scheduler.run_until_idle()
        again.scheduler.run_until_idle()
        assert _away_until(again, ids["ann"]) == T0 + 1.5 * HOUR
    finally:
        again.close()


@pytest.mark.parametrize(
    ("text", "days"),
    [("mon-fri", "12345"), ("Mon, Wed, Fri", "135"), ("weekends", "67"), ("daily", "1234567")],
)
def test_days_of_the_week_are_read(text: str, days: str) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["funday", "fri-mon", "", "mon-"])
def test_what_is_not_days_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_days(text)


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        (AwaySchedule("", "08:00", "17:00"), "at least one day"),
        (AwaySchedule("12345", "08:00", "08:00"), "ends when it starts"),
        (AwaySchedule("12345", "25:00", "08:00"), "HH:MM"),
        (AwaySchedule("19", "08:00", "17:00"), "at least one day"),
    ],
)
def test_a_schedule_that_is_none_is_refused(
    team: tuple[AlertingStack, int], schedule: AwaySchedule, says: str
) -> None:
    stack, ann = team
    with pytest.raises(ConfigError, match=says):
        _schedule(stack, ann, schedule)
