"""The alert lifecycle as pure functions: what must be sent now and when to look again.

States: ``cancel_window`` (warnings only: the wearer may press "I'm OK") → ``active`` (caregiver
at ``level`` notified; critical alerts repeat every ``repeat_interval_s``; after
``ack_timeout_s`` without acknowledgement the next level is added) → ``acknowledged`` /
``resolved``; or ``cancelled`` from the window. Quiet hours hold back warnings, never critical.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from models.alarm import Severity
from service.alerts.policy import Policy, quiet_until_s
from service.db.models import AlertState


class Purpose(StrEnum):
    """Why a message is sent; part of the delivery's idempotency key."""

    NOTIFY = "notify"
    REPEAT = "repeat"
    WORSENED = "worsened"
    RESOLVED = "resolved"
    PATIENT_CHECK = "patient_check"
    OFF_REMINDER = "off_reminder"
    """To the wearer: the band they said they took off is still off (no link, no caregiver)."""
    OFF_NOTICE = "off_notice"
    """To the caregivers, once: the band the wearer took off has been silent for long."""
    BATTERY_LOW = "battery_low"
    """To the wearer, once per low spell: charge the band before it runs flat."""


@dataclass(frozen=True, slots=True)
class AlertClock:
    """The scheduling-relevant part of an alert (a plain value, copied from and to the row)."""

    state: AlertState
    severity: Severity
    level: int
    repeat_count: int
    level_notified_s: float | None
    cancel_until_s: float | None


@dataclass(frozen=True, slots=True)
class Send:
    """Notify the contacts of levels ``0..level`` (``only_level``: only ``level``)."""

    purpose: Purpose
    level: int
    repeat: int
    only_level: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What :func:`plan_alert` decided: the new clock, messages to send, next wake-up, a note."""

    clock: AlertClock
    sends: tuple[Send, ...]
    next_action_s: float | None
    note: str | None = None


def _next_due(clock: AlertClock, policy: Policy, levels: int) -> float | None:
    if clock.level_notified_s is None:
        return None
    candidates = []
    if clock.level + 1 < levels:
        candidates.append(clock.level_notified_s + policy.ack_timeout_s)
    if clock.severity is Severity.CRITICAL:
        candidates.append(_repeat_s(clock.level_notified_s, clock.repeat_count + 1, policy))
    return min(candidates) if candidates else None


def _repeat_s(notified_s: float, repeat: int, policy: Policy) -> float:
    """When repeat number ``repeat`` of a level notified at ``notified_s`` is due."""
    return notified_s + repeat * policy.repeat_interval_s


def _repeats_due(notified_s: float, policy: Policy, now_s: float) -> int:
    """The number of the last repeat due by ``now_s`` (the inverse of :func:`_repeat_s`)."""
    return int((now_s - notified_s) // policy.repeat_interval_s)


def plan_alert(clock: AlertClock, policy: Policy, levels: int, now_s: float) -> Plan:
    """Advance an alert to ``now_s``: at most one escalation or repeat per call.

    ``levels`` is the number of escalation levels (caregivers in order, then emergency contacts).
    Repeats missed while the service was paused are not sent one after another: one repeat
    goes out, numbered by the time elapsed, and the cadence continues from the notification.
    Escalation only depends on the time since the level was notified, never on repeats.
    """
    if clock.state is AlertState.CANCEL_WINDOW:
        if clock.cancel_until_s is not None and now_s < clock.cancel_until_s:
            return Plan(clock, (), clock.cancel_until_s)
        clock = replace(clock, state=AlertState.ACTIVE)
    if clock.state is not AlertState.ACTIVE:
        return Plan(clock, (), None)
    if levels == 0:
        return Plan(clock, (), None, note="no_care_team")
    if clock.severity is Severity.WARNING:
        quiet_end = quiet_until_s(policy, now_s)
        if quiet_end is not None:
            return Plan(clock, (), quiet_end, note="held_quiet_hours")
    if clock.level < 0:
        clock = replace(clock, level=0, repeat_count=0, level_notified_s=now_s)
        return Plan(clock, (Send(Purpose.NOTIFY, 0, 0, True),), _next_due(clock, policy, levels))
    notified_s = clock.level_notified_s if clock.level_notified_s is not None else now_s
    if clock.level + 1 < levels and now_s >= notified_s + policy.ack_timeout_s:
        level = clock.level + 1
        clock = replace(clock, level=level, repeat_count=0, level_notified_s=now_s)
        send = Send(Purpose.NOTIFY, level, 0, True)
        return Plan(clock, (send,), _next_due(clock, policy, levels), note="escalated")
    due = _next_due(clock, policy, levels)
    if clock.severity is Severity.CRITICAL and now_s >= _repeat_s(
        notified_s, clock.repeat_count + 1, policy
    ):
        repeat = max(clock.repeat_count + 1, _repeats_due(notified_s, policy, now_s))
        clock = replace(clock, repeat_count=repeat)
        send = Send(Purpose.REPEAT, clock.level, clock.repeat_count, False)
        return Plan(clock, (send,), _next_due(clock, policy, levels))
    return Plan(clock, (), due)


def worsen(clock: AlertClock, severity: Severity, now_s: float) -> Plan:
    """Re-arm an alert whose episode got worse.

    The cancel window ends, the acknowledgement is cleared, everyone already notified hears it
    again at once and the escalation timer restarts.
    """
    level = max(clock.level, 0)
    clock = replace(
        clock,
        state=AlertState.ACTIVE,
        severity=severity,
        level=level,
        repeat_count=0,
        level_notified_s=now_s,
        cancel_until_s=None,
    )
    return Plan(clock, (Send(Purpose.WORSENED, level, 0, False),), now_s)
