"""Topics the broker refuses publishes on: held back, then tried again one message at a time.

Under MQTT 5 a broker answers a QoS 1 publish it denies with a PUBACK whose reason code is 0x80 or
more (MQTT 5.0 §3.4.2.1); Mosquitto 2.x sends 0x87 "Not authorized" when its ACL lacks the topic,
as after a device moved to another patient without ``flarewatch admin broker-auth`` being run
again. The samples of a refused batch stay in the outbox. Publishing the rest of that topic's
backlog would only be refused as well (and Mosquitto 2.0.11 closes the connection after each
refusal), so the topic is *held*: after :func:`collector.mqtt_reconnect.refused_retry_delay_s` one
message probes it, and once the broker accepts one, everything held flows again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from collector.mqtt_reconnect import refused_retry_delay_s
from flarewatch.log_throttle import LogThrottle

log = logging.getLogger(__name__)

_NOT_AUTHORIZED = 0x87


@dataclass(slots=True)
class _Hold:
    """A refused topic: refusals in a row, when to probe it again, and the probe's state."""

    refusals: int
    retry_at_s: float
    due_taken: bool = False
    """:meth:`RefusedTopics.take_due` returned the topic for this wait already."""
    probing: bool = False
    """A probe is published and its PUBACK not yet received."""


class RefusedTopics:
    """Which topics are held after a refused publish, and when each may be probed again.

    Times come from the caller's monotonic clock. Every refusal is counted in
    :attr:`refused_total`; the error is logged at most once per ``throttle`` interval and topic.
    """

    def __init__(self, throttle: LogThrottle | None = None) -> None:
        self.refused_total = 0
        self._holds: dict[str, _Hold] = {}
        self._throttle = throttle or LogThrottle()

    @property
    def held(self) -> tuple[str, ...]:
        """Topics held now (refused and not accepted since)."""
        return tuple(self._holds)

    def refused(self, topic: str, reason: str, reason_code: int, now_s: float) -> None:
        """The broker refused a publish on ``topic``: hold it (longer after a refused probe)."""
        self.refused_total += 1
        hold = self._holds.get(topic)
        if hold is None:
            hold = self._holds[topic] = _Hold(refusals=1, retry_at_s=0.0)
        elif hold.probing:
            hold.refusals += 1
        else:
            return  # another batch sent before the hold: the wait already runs
        delay_s = refused_retry_delay_s(hold.refusals)
        hold.retry_at_s = now_s + delay_s
        hold.due_taken = hold.probing = False
        held_back = self._throttle.allow(topic)
        if held_back is None:
            return
        log.error(
            "the broker refused a publish on %s (%s)%s; its data stay in the outbox and the topic "
            "is tried again in %.0f s%s",
            topic,
            reason,
            f" [{held_back} more refusals on it since the last report]" if held_back else "",
            delay_s,
            "; if the device moved to another patient, run `flarewatch admin broker-auth` again "
            "and reload the broker"
            if reason_code == _NOT_AUTHORIZED
            else "",
        )

    def accepted(self, topic: str) -> bool:
        """The broker accepted a publish on ``topic``; True if that ends a hold."""
        hold = self._holds.pop(topic, None)
        if hold is not None:
            log.info("the broker accepts publishes on %s again; sending what was held", topic)
        return hold is not None

    def may_publish(self, topic: str, now_s: float) -> bool:
        """Whether to publish on ``topic`` now: it is not held, or this is its probe."""
        hold = self._holds.get(topic)
        if hold is None:
            return True
        if hold.probing or now_s < hold.retry_at_s:
            return False
        hold.probing = True
        return True

    def take_due(self, now_s: float) -> list[str]:
        """Held topics whose wait ended since the last call (the caller fetches their probes)."""
        due = [
            topic
            for topic, hold in self._holds.items()
            if not hold.due_taken and not hold.probing and now_s >= hold.retry_at_s
        ]
        for topic in due:
            self._holds[topic].due_taken = True
        return due

    def forget_probes(self) -> None:
        """Probes in flight will not be answered (a new client): probe again when due."""
        for hold in self._holds.values():
            hold.probing = hold.due_taken = False
