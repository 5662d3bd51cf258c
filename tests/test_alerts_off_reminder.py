"""A wearer who said "I took it off" is reminded that the band is still off; the caregivers are
told once, a day after it went silent.

Real deliveries (Apprise to a loopback HTTP receiver), SQLite and PostgreSQL, a fake clock. The
band goes silent at 16:00 UTC; the wearer answers "I took it off" four minutes later.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from flarewatch.errors import ConfigError
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.tokens import TokenAction
from service.db import AuditEvent
from service.db.care_teams import PolicyUpdate, get_patient, set_policy
from service.episodes import EpisodeEngine
from tests.alerting_helpers import (
    AlertingStack,
    FakeClock,
    HttpReceiver,
    Inbox,
    build_stack,
    register_team,
)

T0 = 1_764_000_000.0  # 16:00 UTC
ANSWERED_S = T0 + 240
HOUR = 3600.0


@pytest.fixture
def stack(service_db_url: str, http: HttpReceiver) -> Iterator[AlertingStack]:
    built = build_stack(service_db_url, FakeClock(T0))
    register_team(
        built.db,
        "p1",
        [("ann", [http.url("ann")])],
        wearer=[http.url("wearer")],
    )
    yield built
    built.close()


def _band_off(stack: AlertingStack, inbox: Inbox, engine: EpisodeEngine, t: float = T0) -> None:
    """The band goes silent at ``t``; the wearer answers "I took it off" four minutes later."""
    engine.on_alarm(Alarm("p1", t, AlarmKind.NO_DATA, Severity.WARNING, "fw-test-1"))
    stack.scheduler.run_until_idle()
    check = inbox.to("/wearer")[-1]
    assert check.title.startswith("Check your band")
    token = re.search(r"/im-ok/(\S+)", check.body)
    assert token is not None
    stack.run_until(t + 240)
    stack.manager.redeem(token.group(1), TokenAction.CANCEL, via="test")


def _audited_at(stack: AlertingStack, action: str) -> list[float]:
    with stack.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent.time_s).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def _reminded_at(stack: AlertingStack) -> list[float]:
    return _audited_at(stack, "off_reminder_queued")


def test_the_wearer_is_reminded_ever_less_often_until_the_band_is_back(
    stack: AlertingStack, inbox: Inbox
) -> None:
    engine = EpisodeEngine(stack.manager)
    _band_off(stack, inbox, engine)
    stack.run_until(ANSWERED_S + 2 * HOUR - 60)
    assert len(inbox.to("/wearer")) == 1, "nothing for the two hours a charge takes"

    stack.run_until(ANSWERED_S + 2 * HOUR)
    inbox.wait_for("/wearer", 2)
    reminder = inbox.to("/wearer")[-1]
    assert reminder.title == "Your band is still off - flarewatch is not watching over you"
    assert "You said you took your band off. It still shows no data from the band" in (
        reminder.body
    )
    assert "Since 16:00 UTC (2 hours 4 min ago)" in reminder.body
    assert "Your caregivers have not been told." in reminder.body
    assert "http" not in reminder.body, "nothing to answer: no link"

    # then after 4, 8, 16 hours, and once a day
    stack.run_until(ANSWERED_S + (2 + 4 + 8 + 16 + 24 + 24) * HOUR + 60, step_s=1800)
    gaps = [round((b - a) / HOUR, 1) for a, b in itertools.pairwise(_reminded_at(stack))]
    assert gaps == [4.0, 8.0, 16.0, 24.0, 24.0]
    # the caregivers hear of it once, a day after the band went silent, and never again
    [noticed_s] = _audited_at(stack, "off_notice_queued")
    assert T0 + 86_400 <= noticed_s < T0 + 86_400 + 1800
    [notice] = inbox.wait_for("/ann", 1)
    assert notice.title == "Alex's band has been off for long - check in with them"
    assert "Alex said they took it off, and it has not sent anything since." in notice.body
    assert "Since 16:00 UTC" in notice.body and "http" not in notice.body
    inbox.wait_for("/wearer", 7)
    last = inbox.to("/wearer")[-1].body
    assert "Your caregivers were told that it has been off for long." in last

    # the band reports again: no more reminders
    back_s = stack.fake_clock()
    engine.on_alarm(
        Alarm("p1", back_s, AlarmKind.NO_DATA, Severity.WARNING, "fw-test-1", resolved=True)
    )
    sent = len(_reminded_at(stack))
    stack.run_until(stack.fake_clock() + 3 * 24 * HOUR, step_s=3600)
    assert len(_reminded_at(stack)) == sent
    assert len(inbox.to("/wearer")) == 7


def test_a_reminder_due_in_quiet_hours_waits_until_they_end(
    stack: AlertingStack, inbox: Inbox
) -> None:
    with stack.db.session() as session:
        set_policy(
            get_patient(session, "p1"),
            PolicyUpdate(off_reminder_s=1800, quiet_hours="16:30-18:00"),
        )
    engine = EpisodeEngine(stack.manager)
    _band_off(stack, inbox, engine)  # answered 16:04: due 16:34, in quiet hours
    stack.run_until(T0 + 2 * HOUR - 1, step_s=60)
    assert _reminded_at(stack) == []
    stack.run_until(T0 + 2 * HOUR, step_s=60)
    assert _reminded_at(stack) == [T0 + 2 * HOUR]
    inbox.wait_for("/wearer", 2)


def test_no_reminder_when_the_patient_wants_none(stack: AlertingStack, inbox: Inbox) -> None:
    with stack.db.session() as session:
        set_policy(get_patient(session, "p1"), PolicyUpdate(off_reminder_s=0, off_notice_s=0))
    engine = EpisodeEngine(stack.manager)
    _band_off(stack, inbox, engine)
    stack.run_until(T0 + 3 * 24 * HOUR, step_s=3600)
    assert _reminded_at(stack) == [] and len(inbox.to("/wearer")) == 1
    assert _audited_at(stack, "off_notice_queued") == [] and inbox.to("/ann") == []


def test_a_new_loss_asks_anew_and_the_old_reminders_stop(
    stack: AlertingStack, inbox: Inbox
) -> None:
    engine = EpisodeEngine(stack.manager)
    _band_off(stack, inbox, engine)
    engine.on_alarm(
        Alarm("p1", T0 + 600, AlarmKind.NO_DATA, Severity.WARNING, "fw-test-1", resolved=True)
    )
    stack.run_until(T0 + 1200)
    _band_off(stack, inbox, engine, t=T0 + 1200)  # off again, answered again at 16:24
    stack.run_until(T0 + 1200 + 240 + 2 * HOUR)
    assert _reminded_at(stack) == [T0 + 1200 + 240 + 2 * HOUR], "one reminder, of the new loss"


def test_reminders_survive_a_restart(service_db_url: str, http: HttpReceiver, inbox: Inbox) -> None:
    first = build_stack(service_db_url, FakeClock(T0))
    register_team(first.db, "p1", [("ann", [http.url("ann")])], wearer=[http.url("wearer")])
    _band_off(first, inbox, EpisodeEngine(first.manager))
    first.close()
    again = build_stack(service_db_url, FakeClock(ANSWERED_S + 2 * HOUR + 30))
    try:
        again.scheduler.run_until_idle()
        again.scheduler.run_until_idle()
        inbox.wait_for("/wearer", 2)
        assert inbox.to("/wearer")[-1].title.startswith("Your band is still off")
    finally:
        again.close()


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_a_reminder_delay_must_be_a_length(stack: AlertingStack, value: float) -> None:
    with stack.db.session() as session, pytest.raises(ConfigError, match="off_reminder_s"):
        set_policy(get_patient(session, "p1"), PolicyUpdate(off_reminder_s=value))
