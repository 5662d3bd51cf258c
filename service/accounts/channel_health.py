"""Whether the care team's channels deliver: the last message of each, sent or failed.

A channel breaks silently: a phone's push token expires, an ntfy topic is renamed, a mailbox
fills up. The scheduler then passes each message on to the next channel or person
(:mod:`service.alerts.delivery_outcome`), so the alert still reaches someone, but the person
whose channel broke hears of nothing, and nobody tells them. The patient's page marks a care-team
member whose last message failed, and a caregiver's account page says of each of their channels
when its last message arrived or failed, and why. Read from the deliveries of the last
:data:`~service.const.CHANNEL_HEALTH_DAYS` days; a channel that has not been used says nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts.render import on_patient_clock
from service.const import CHANNEL_HEALTH_DAYS
from service.db.models import Channel, Delivery, DeliveryState


@dataclass(frozen=True, slots=True)
class ChannelState:
    """The last message of one channel: when it was sent, when one failed, and why."""

    channel_id: int
    contact_id: int
    last_sent_s: float | None
    last_failed_s: float | None
    last_error: str | None
    last_was_test: bool = False
    """The latest of the two was its owner's test message, not an alert's."""

    @property
    def failing(self) -> bool:
        """Its last message failed (no message got through since)."""
        return self.last_failed_s is not None and (
            self.last_sent_s is None or self.last_failed_s > self.last_sent_s
        )


@dataclass(slots=True)
class _Outcomes:
    """The latest sent and failed message of each channel, alert or test, as they are read."""

    owner: dict[int, int] = field(default_factory=dict)
    sent: dict[int, float] = field(default_factory=dict)
    failed: dict[int, float] = field(default_factory=dict)
    tests: dict[int, tuple[float, str | None]] = field(default_factory=dict)

    def add(self, channel_id: int, contact_id: int, time_s: float, ok: bool) -> None:
        self.owner[channel_id] = contact_id
        latest = self.sent if ok else self.failed
        latest[channel_id] = max(time_s, latest.get(channel_id, time_s))


def channel_states(
    session: Session, contact_ids: Collection[int], now_s: float
) -> dict[int, ChannelState]:
    """The state of each used channel of ``contact_ids``, by channel id.

    Alert messages and their owner's test messages both count: a test that arrives clears a
    channel marked broken (the mailbox emptied, the app reinstalled), one that fails marks it.
    A failed delivery's time is that of its last attempt (``next_attempt_s``, when it was made).
    """
    if not contact_ids:
        return {}
    since_s = now_s - CHANNEL_HEALTH_DAYS * 86_400
    rows = session.execute(
        select(
            Delivery.channel_id,
            Delivery.contact_id,
            Delivery.state,
            func.max(func.coalesce(Delivery.sent_s, Delivery.next_attempt_s)),
        )
        .where(
            Delivery.contact_id.in_(contact_ids),
            Delivery.created_s >= since_s,
            Delivery.state.in_((DeliveryState.SENT, DeliveryState.FAILED)),
        )
        .group_by(Delivery.channel_id, Delivery.contact_id, Delivery.state)
    ).all()
    found = _Outcomes()
    for channel_id, contact_id, state, time_s in rows:
        found.add(channel_id, contact_id, float(time_s), state == DeliveryState.SENT)
    checks = session.execute(
        select(Channel.id, Channel.contact_id, Channel.checked_s, Channel.check_error).where(
            Channel.contact_id.in_(contact_ids), Channel.checked_s >= since_s
        )
    ).all()
    for channel_id, contact_id, checked_s, error in checks:
        tested_s = float(checked_s or 0.0)  # never NULL here: the query compares it
        found.add(channel_id, contact_id, tested_s, error is None)
        found.tests[channel_id] = (tested_s, error)
    return {
        channel_id: _state_of(session, found, channel_id, contact_id)
        for channel_id, contact_id in found.owner.items()
    }


def _state_of(session: Session, found: _Outcomes, channel_id: int, contact_id: int) -> ChannelState:
    sent_s, failed_s = found.sent.get(channel_id), found.failed.get(channel_id)
    latest_s = max(t for t in (sent_s, failed_s) if t is not None)
    test_s, test_error = found.tests.get(channel_id, (None, None))
    was_test = test_s == latest_s
    error = None
    if failed_s is not None:
        error = test_error if was_test and test_error else _last_error(session, channel_id)
    return ChannelState(channel_id, contact_id, sent_s, failed_s, error, was_test)


def _last_error(session: Session, channel_id: int) -> str | None:
    """Why the channel's latest failed message failed (scrubbed of secrets when recorded)."""
    return session.scalar(
        select(Delivery.last_error)
        .where(Delivery.channel_id == channel_id, Delivery.state == DeliveryState.FAILED)
        .order_by(Delivery.next_attempt_s.desc(), Delivery.id.desc())
        .limit(1)
    )


def failing_since(states: dict[int, ChannelState], channels: Collection[Channel]) -> float | None:
    """When the last message of one of ``channels`` failed, if one's last message failed."""
    times = [
        state.last_failed_s
        for channel in channels
        if (state := states.get(channel.id)) is not None
        and state.failing
        and state.last_failed_s is not None
    ]
    return max(times) if times else None


def channel_words(state: ChannelState | None, now_s: float, timezone: str) -> str:
    """What a channel's owner is told of it: its last message, arrived or failed and why."""
    if state is None:
        return f"no alert sent this way in the last {CHANNEL_HEALTH_DAYS} days"
    which = "your test message" if state.last_was_test else "the last message"
    if state.failing and state.last_failed_s is not None:
        why = f": {state.last_error}" if state.last_error else ""
        return f"{which} FAILED {on_patient_clock(state.last_failed_s, now_s, timezone)}{why}"
    if state.last_sent_s is not None:
        return f"{which} arrived {on_patient_clock(state.last_sent_s, now_s, timezone)}"
    return f"no alert sent this way in the last {CHANNEL_HEALTH_DAYS} days"
