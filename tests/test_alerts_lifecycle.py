"""Pure parts of alerting: lifecycle planning, backoff table, quiet hours, messages.

Tokens have their own file, tests/test_alerts_tokens.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from models.alarm import Severity
from service.alerts.backoff import FailureKind, retry_delay_s
from service.alerts.lifecycle import AlertClock, Purpose, Send, plan_alert, worsen
from service.alerts.policy import Policy, quiet_until_s
from service.alerts.render import AlertFacts, render_message
from service.db.models import AlertState

POLICY = Policy(cancel_window_s=60, ack_timeout_s=180, repeat_interval_s=60)
T0 = 1_764_000_000.0


def fresh(severity: Severity, state: AlertState = AlertState.ACTIVE) -> AlertClock:
    cancel = T0 + 60 if state is AlertState.CANCEL_WINDOW else None
    return AlertClock(state, severity, -1, 0, None, cancel)


@pytest.mark.parametrize(
    ("attempts", "failure", "severity", "expected"),
    [
        (1, FailureKind.TRANSIENT, Severity.CRITICAL, 1.0),
        (2, FailureKind.TRANSIENT, Severity.CRITICAL, 2.0),
        (3, FailureKind.TRANSIENT, Severity.CRITICAL, None),  # fall through after 3 attempts
        (1, FailureKind.TRANSIENT, Severity.WARNING, 2.0),
        (2, FailureKind.TRANSIENT, Severity.WARNING, 4.0),
        (3, FailureKind.TRANSIENT, Severity.WARNING, 8.0),
        (4, FailureKind.TRANSIENT, Severity.WARNING, None),
        (1, FailureKind.PERMANENT, Severity.CRITICAL, None),  # retrying bad credentials is futile
        (1, FailureKind.PERMANENT, Severity.WARNING, None),
        (0, FailureKind.TRANSIENT, Severity.WARNING, None),
    ],
)
def test_backoff_table(attempts, failure, severity, expected):
    assert retry_delay_s(attempts, failure, severity) == expected


def test_backoff_is_capped():
    from service.alerts import backoff

    original = backoff.WARNING_MAX_ATTEMPTS
    try:
        backoff.WARNING_MAX_ATTEMPTS = 100
        assert retry_delay_s(50, FailureKind.TRANSIENT, Severity.WARNING) == 30.0
    finally:
        backoff.WARNING_MAX_ATTEMPTS = original


def test_warning_waits_out_cancel_window_then_notifies_first_caregiver():
    clock = fresh(Severity.WARNING, AlertState.CANCEL_WINDOW)
    plan = plan_alert(clock, POLICY, 2, T0 + 30)
    assert plan.sends == () and plan.next_action_s == T0 + 60
    plan = plan_alert(clock, POLICY, 2, T0 + 60)
    assert plan.clock.state is AlertState.ACTIVE
    assert plan.sends == (Send(Purpose.NOTIFY, 0, 0, True),)
    assert plan.next_action_s == T0 + 60 + 180  # warnings escalate but do not repeat


def test_critical_repeats_then_escalates_to_each_level_in_turn():
    plan = plan_alert(fresh(Severity.CRITICAL), POLICY, 3, T0)
    assert plan.sends == (Send(Purpose.NOTIFY, 0, 0, True),)
    assert plan.next_action_s == T0 + 60
    sends = []
    clock = plan.clock
    for t in range(60, 421, 60):
        plan = plan_alert(clock, POLICY, 3, T0 + t)
        clock = plan.clock
        sends.append((t, plan.sends))
    assert sends[0] == (60, (Send(Purpose.REPEAT, 0, 1, False),))
    assert sends[1] == (120, (Send(Purpose.REPEAT, 0, 2, False),))
    assert sends[2] == (180, (Send(Purpose.NOTIFY, 1, 0, True),))  # escalation wins over a repeat
    assert sends[3] == (240, (Send(Purpose.REPEAT, 1, 1, False),))
    assert sends[5] == (360, (Send(Purpose.NOTIFY, 2, 0, True),))
    assert clock.level == 2
    plan = plan_alert(clock, POLICY, 3, T0 + 420)  # last level: only repeats from now on
    assert plan.next_action_s == T0 + 480


def test_a_pause_sends_one_repeat_not_every_missed_one():
    """The service was down 10 min: the last level hears one repeat, then the usual cadence."""
    clock = plan_alert(fresh(Severity.CRITICAL), POLICY, 1, T0).clock
    plan = plan_alert(clock, POLICY, 1, T0 + 630)
    assert plan.sends == (Send(Purpose.REPEAT, 0, 10, False),)
    assert plan.next_action_s == T0 + 660
    again = plan_alert(plan.clock, POLICY, 1, T0 + 630)  # the scheduler's next pass, same instant
    assert again.sends == () and again.next_action_s == T0 + 660
    plan = plan_alert(plan.clock, POLICY, 1, T0 + 660)
    assert plan.sends == (Send(Purpose.REPEAT, 0, 11, False),)
    assert plan.next_action_s == T0 + 720


def test_a_pause_still_escalates_on_the_ack_timeout_clock():
    """After a pause the next level is alerted first; its own repeats and timeout then follow."""
    clock = plan_alert(fresh(Severity.CRITICAL), POLICY, 3, T0).clock
    plan = plan_alert(clock, POLICY, 3, T0 + 630)
    assert plan.sends == (Send(Purpose.NOTIFY, 1, 0, True),) and plan.note == "escalated"
    sends = []
    for t in (630, 690, 750, 810):
        plan = plan_alert(plan.clock, POLICY, 3, T0 + t)
        sends.append(plan.sends)
    assert sends == [
        (),
        (Send(Purpose.REPEAT, 1, 1, False),),
        (Send(Purpose.REPEAT, 1, 2, False),),
        (Send(Purpose.NOTIFY, 2, 0, True),),
    ]
    # a pause shorter than the ack timeout: one repeat, and the timeout still runs from T0
    clock = plan_alert(fresh(Severity.CRITICAL), POLICY, 3, T0).clock
    plan = plan_alert(clock, POLICY, 3, T0 + 170)
    assert plan.sends == (Send(Purpose.REPEAT, 0, 2, False),) and plan.next_action_s == T0 + 180
    assert plan_alert(plan.clock, POLICY, 3, T0 + 180).sends == (Send(Purpose.NOTIFY, 1, 0, True),)


def test_no_care_team_is_noted_not_crashed():
    plan = plan_alert(fresh(Severity.CRITICAL), POLICY, 0, T0)
    assert plan.sends == () and plan.note == "no_care_team"


@pytest.mark.parametrize(
    "state", [AlertState.ACKNOWLEDGED, AlertState.CANCELLED, AlertState.RESOLVED]
)
def test_finished_alerts_send_nothing(state):
    clock = AlertClock(state, Severity.CRITICAL, 0, 0, T0, None)
    assert plan_alert(clock, POLICY, 3, T0 + 1000) == plan_alert(clock, POLICY, 3, T0 + 1000)
    assert plan_alert(clock, POLICY, 3, T0 + 1000).sends == ()


def test_quiet_hours_hold_warnings_but_never_critical():
    zone = ZoneInfo("Europe/Berlin")
    night = dt.datetime(2026, 1, 10, 23, 30, tzinfo=zone).timestamp()
    morning = dt.datetime(2026, 1, 11, 7, 0, tzinfo=zone).timestamp()
    policy = Policy(60, 180, 60, "Europe/Berlin", "22:00", "07:00")
    assert quiet_until_s(policy, night) == morning
    assert quiet_until_s(policy, morning) is None
    assert quiet_until_s(policy, dt.datetime(2026, 1, 11, 3, 0, tzinfo=zone).timestamp()) == morning
    warning = plan_alert(fresh(Severity.WARNING), policy, 2, night)
    assert warning.sends == () and warning.next_action_s == morning
    assert warning.note == "held_quiet_hours"
    critical = plan_alert(fresh(Severity.CRITICAL), policy, 2, night)
    assert critical.sends == (Send(Purpose.NOTIFY, 0, 0, True),)


BERLIN_NIGHT = Policy(60, 180, 60, "Europe/Berlin", "22:00", "02:30")


def utc_s(*fields: int) -> float:
    return dt.datetime(*fields, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("now_s", "end_s"),
    [
        # 25 Oct 2026, clocks go back at 03:00 CEST = 01:00 UTC: 02:00-03:00 happens twice
        (utc_s(2026, 10, 25, 0, 15), utc_s(2026, 10, 25, 0, 30)),  # the first 02:15 (CEST)
        (utc_s(2026, 10, 25, 0, 45), None),  # 02:45 CEST: the clock has passed 02:30
        (utc_s(2026, 10, 25, 1, 15), utc_s(2026, 10, 25, 1, 30)),  # the second 02:15 (CET)
        (utc_s(2026, 10, 25, 1, 30), None),
        # 29 Mar 2026, clocks jump from 02:00 CET to 03:00 CEST at 01:00 UTC: no 02:30 that night
        (utc_s(2026, 3, 29, 0, 45), utc_s(2026, 3, 29, 1, 0)),  # 01:45 CET: ends at the jump
        (utc_s(2026, 3, 29, 1, 0), None),  # 03:00 CEST
        (utc_s(2026, 3, 28, 21, 30), utc_s(2026, 3, 29, 1, 0)),  # 22:30 CET the evening before
    ],
    ids=["back-first", "back-between", "back-second", "back-after", "forward", "jump", "eve"],
)
def test_quiet_hours_end_on_the_wall_clock_across_daylight_saving_changes(now_s, end_s):
    assert quiet_until_s(BERLIN_NIGHT, now_s) == end_s
    if end_s is not None:  # a held warning wakes the scheduler later, not over and over now
        held = plan_alert(fresh(Severity.WARNING), BERLIN_NIGHT, 2, now_s)
        assert held.note == "held_quiet_hours" and held.next_action_s == end_s > now_s


def test_worsening_rearms_an_acknowledged_alert_for_everyone_notified():
    acked = AlertClock(AlertState.ACKNOWLEDGED, Severity.WARNING, 1, 0, T0, None)
    plan = worsen(acked, Severity.CRITICAL, T0 + 500)
    assert plan.clock.state is AlertState.ACTIVE and plan.clock.severity is Severity.CRITICAL
    assert plan.sends == (Send(Purpose.WORSENED, 1, 0, False),)
    assert plan.clock.level_notified_s == T0 + 500


def test_message_says_what_how_severe_since_when_vitals_and_what_to_do():
    facts = AlertFacts(
        patient_name="Alex",
        timezone="UTC",
        emergency_plan="Use the EpiPen, call 112.",
        kind="anaphylaxis",
        severity=Severity.CRITICAL,
        since_s=T0,
        now_s=T0 + 125,
        vitals={"heart_rate_bpm": 131.4, "skin_temperature_c": 35.25, "unknown": 1.0},
    )
    message = render_message(facts, Purpose.NOTIFY, "http://x/ack/TOKEN")
    assert "CRITICAL" in message.title and "anaphylaxis" in message.title
    assert "2 min" in message.body
    # the heart rate helps; a wrist's skin temperature means nothing without its baseline
    assert "heart rate 131 beats a minute" in message.body and "35.2" not in message.body
    assert "Use the EpiPen, call 112." in message.body
    assert "http://x/ack/TOKEN" in message.body
    check = render_message(facts, Purpose.PATIENT_CHECK, "http://x/im-ok/T")
    assert "I'm OK: http://x/im-ok/T" in check.body
    assert "exercise cannot be ruled out" not in message.body
    blind = dataclasses.replace(facts, activity_known=False)
    assert "exercise cannot be ruled out" in render_message(blind, Purpose.NOTIFY, None).body
    # a flush is skin warming: whether the band counts steps does not change what it means
    flush = dataclasses.replace(blind, kind="flush")
    assert "exercise" not in render_message(flush, Purpose.NOTIFY, None).body
    assert "did not slow down" not in message.body
    after_walk = dataclasses.replace(facts, after_exercise=True)
    after_body = render_message(after_walk, Purpose.NOTIFY, None).body
    assert "did not slow down once they stopped" in after_body
