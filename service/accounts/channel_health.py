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
from dataclasses import dataclass

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

    @property
    def failing(self) -> bool:
        """Its last message failed (no message got through since)."""
        return self.last_failed_s is not None and (
            self.last_sent_s is None or self.last_failed_s > self.last_sent_s
        )


def channel_states(
    session: Session, contact_ids: Collection[int], now_s: float
) -> dict[int, ChannelState]:
    """The state of each used channel of ``contact_ids``, by channel id.

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
    sent: dict[int, float] = {}
    failed: dict[int, float] = {}
    owner: dict[int, int] = {}
    for channel_id, contact_id, state, time_s in rows:
        owner[channel_id] = contact_id
        (sent if state == DeliveryState.SENT else failed)[channel_id] = float(time_s)
    states = {}
    for channel_id, contact_id in owner.items():
        failed_s = failed.get(channel_id)
        error = _last_error(session, channel_id) if failed_s is not None else None
        states[channel_id] = ChannelState(
            channel_id, contact_id, sent.get(channel_id), failed_s, error
        )
    return states


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
    if state.failing and state.last_failed_s is not None:
        why = f": {state.last_error}" if state.last_error else ""
        return (
            f"the last message FAILED {on_patient_clock(state.last_failed_s, now_s, timezone)}{why}"
        )
    if state.last_sent_s is not None:
        return f"the last message arrived {on_patient_clock(state.last_sent_s, now_s, timezone)}"
    return f"no alert sent this way in the last {CHANNEL_HEALTH_DAYS} days"
