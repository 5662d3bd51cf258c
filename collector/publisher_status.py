"""What :meth:`collector.publisher.MqttPublisher.status` reports: connection, counters, outbox."""

from __future__ import annotations

from dataclasses import dataclass

from collector.mqtt_reconnect import ConnectFailure
from collector.outbox import OutboxStats


@dataclass(frozen=True, slots=True)
class PublisherStatus:
    """Snapshot of the publisher for progress displays and tests."""

    connected: bool
    outbox: OutboxStats
    published_batches: int
    acked_samples: int
    inflight_batches: int
    connects: int
    last_failure: ConnectFailure | None
    failed_rounds: int
    """Publishing rounds that raised (each logged and retried after a back-off)."""
    refused_publishes: int = 0
    """Publishes the broker refused in its PUBACK (MQTT 5 reason >= 0x80); their samples stay."""
    held_topics: tuple[str, ...] = ()
    """Topics held back after a refusal, probed again with a growing back-off."""
    mqtt_version: str = "5"
    """The MQTT version spoken (or tried next): ``"5"`` or ``"3.1.1"``."""
