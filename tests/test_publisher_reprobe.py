"""A 3.1.1 session taken after one unanswered MQTT 5 CONNECT does not keep the gateway on 3.1.1.

One slow CONNACK (a broker busy starting) gives the gateway a provisional 3.1.1 session. Before,
MQTT 5 was tried again only once that session ended: a session that never dropped kept the gateway
on 3.1.1 for weeks, where Mosquitto acknowledges a publish its ACL denies and the gateway deletes
those samples. Now the gateway reconnects with MQTT 5 after ``mqtt5_reprobe_after_s`` of stable
3.1.1, at a moment without batches in flight, and a broker that truly lacks MQTT 5 makes 3.1.1
final after that one try. Real Mosquitto (with the ACL ``broker-auth`` writes) behind a relay
that leaves the first connection unanswered, and the embedded amqtt broker; the publisher's
monotonic clock is stepped, so the re-probe comes exactly when the test moves it past the interval.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.mqtt_connection import ProtocolChoice
from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from flarewatch.embedded_broker import EmbeddedBroker
from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import LinkState
from flarewatch.settings import MqttSettings
from tests.publisher_helpers import (
    ALLOWED,
    GATEWAY,
    MOVED,
    SERVICE,
    T0,
    SteppedClock,
    Subscriber,
    reading,
    wait_until,
)
from tests.test_publisher import Recorder
from tests.test_publisher_slow_connack import ADDRESS, Relay

REPROBE_S = 60.0
"""The re-probe interval given to the publishers here (stepped past on their clock)."""
CONNECT_TIMEOUT_S = 1.0
"""How long an unanswered CONNECT is waited for here (10 s in production)."""
REPROBE_LOG = "reconnecting to try MQTT 5 again"
BACKLOG = 5000
"""Readings of the allowed band submitted before the switch."""


def test_a_stable_3_1_1_session_goes_back_to_mqtt_5(
    secured: tuple[MosquittoServer, dict[str, str]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, passwords = secured
    caplog.set_level(logging.INFO, logger="collector")
    relay = Relay(server.port, silent=1)  # the first CONNECT unanswered: a broker busy starting
    service = Subscriber(server.port, SERVICE, passwords[SERVICE])
    clock = SteppedClock()
    outbox = Outbox(tmp_path / "outbox.db", clock_ms=lambda: T0)
    settings = MqttSettings(
        url=f"mqtt://127.0.0.1:{relay.port}",
        username=GATEWAY,
        password=SecretStr(passwords[GATEWAY]),
    )
    publisher = MqttPublisher(
        settings,
        outbox,
        gateway_id=GATEWAY,
        monotonic_s=clock,
        mqtt5_reprobe_after_s=REPROBE_S,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        batch_max_samples=10,  # a backlog is many batches, so some are in flight at the switch
    )
    try:
        with publisher:
            publisher.submit(*ALLOWED, [reading(i) for i in range(50)])
            assert publisher.wait_until_sent(10)
            assert publisher.status().mqtt_version == "3.1.1"
            # the 3.1.1 session is stable: it stays until the interval is over
            clock.step(REPROBE_S / 2)
            publisher.submit(*ALLOWED, [reading(i) for i in range(50, 100)])
            assert publisher.wait_until_sent(10)
            assert publisher.status().mqtt_version == "3.1.1"
            assert publisher.status().connects == 1 and REPROBE_LOG not in caplog.text
            # the interval ends while a backlog is being published: batches are in flight
            publisher.submit(*ALLOWED, [reading(i) for i in range(100, BACKLOG)])
            assert wait_until(lambda: publisher.status().inflight_batches > 0, poll_s=0.001)
            clock.step(REPROBE_S / 2)
            assert wait_until(lambda: publisher.status().connects == 2, 10)
            assert publisher.status().mqtt_version == "5"
            publisher.submit(*ALLOWED, [reading(i) for i in range(BACKLOG, BACKLOG + 50)])
            assert publisher.wait_until_sent(10)
            switched = publisher.status()
            assert switched.connects == 2 and relay.connections == 3  # no other reconnect
            states_after_switch = list(service.gateway_states)
            assert "lost the connection" not in caplog.text
            # a device moved to another patient, broker-auth not re-run: its samples stay
            publisher.submit(*MOVED, [reading(i) for i in range(10)])
            assert wait_until(lambda: publisher.status().refused_publishes >= 1)
            assert outbox.pending == 10  # (Mosquitto 2.0 may close the session after refusing)
        band = service.deliveries_of(ALLOWED[1])
        assert sorted(band) == list(range(T0, T0 + BACKLOG + 50))
        assert set(band.values()) == {1}  # every sample delivered exactly once
        assert service.deliveries_of(MOVED[1]) == Counter()
        assert switched.mqtt_version == "5"
        assert LinkState.OFFLINE not in states_after_switch  # a planned reconnect, not a loss
        messages = [r.getMessage() for r in caplog.records]
        assert sum(REPROBE_LOG in m for m in messages) == 1
        assert not any("does not speak MQTT 5" in m for m in messages)
        assert "heart_rate" not in caplog.text and passwords[GATEWAY] not in caplog.text
    finally:
        service.close()
        outbox.close()
        relay.close()


def test_a_broker_without_mqtt_5_makes_3_1_1_final_after_one_reprobe(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """amqtt leaves every MQTT 5 CONNECT unanswered: one re-probe, then 3.1.1 for good."""
    caplog.set_level(logging.INFO, logger="collector")
    clock = SteppedClock()
    with EmbeddedBroker() as broker:
        recorder = Recorder(broker.url)
        outbox = Outbox(tmp_path / "outbox.db", clock_ms=lambda: T0)
        publisher = MqttPublisher(
            MqttSettings(url=broker.url),
            outbox,
            gateway_id="gw-demo",
            monotonic_s=clock,
            mqtt5_reprobe_after_s=REPROBE_S,
            connect_timeout_s=CONNECT_TIMEOUT_S,
        )
        try:
            with publisher:
                publisher.submit(*ALLOWED, [reading(i) for i in range(100)])
                assert publisher.wait_until_sent(10)
                clock.step(REPROBE_S)
                assert wait_until(lambda: "does not speak MQTT 5" in caplog.text, 10)
                assert wait_until(lambda: publisher.status().connects == 2, 10)
                for hour in range(1, 4):  # hours later: no more re-probes, samples flow
                    clock.step(3600)
                    publisher.submit(*ALLOWED, [reading(100 * hour + i) for i in range(100)])
                    assert publisher.wait_until_sent(10)
                status = publisher.status()
            recorder.wait_for(400)
            order, duplicates = recorder.per_device()
            assert order[ALLOWED[1]] == list(range(T0, T0 + 400)) and duplicates == 0
            assert status.connects == 2 and status.mqtt_version == "3.1.1"
            messages = [r.getMessage() for r in caplog.records]
            assert sum(REPROBE_LOG in m for m in messages) == 1
            assert sum("does not speak MQTT 5" in m for m in messages) == 1
        finally:
            recorder.close()
            outbox.close()


def test_the_reprobe_is_due_only_on_a_provisional_3_1_1_session_that_lasted() -> None:
    choice = ProtocolChoice(MqttSettings(url="mqtt://broker.example:1883"), reprobe_after_s=60)
    assert choice.no_connack(ADDRESS) and choice.name == "3.1.1"
    choice.connected(ADDRESS, "gw", 100.0)
    assert not choice.reprobe_due(159.9) and choice.reprobe_due(160.0)
    assert choice.reprobes_v5(ADDRESS) and choice.name == "5"
    assert not choice.reprobe_due(10_000.0) and not choice.reprobes_v5(ADDRESS)
    assert choice.no_connack(ADDRESS) and choice.name == "3.1.1"  # unanswered again: final
    choice.connected(ADDRESS, "gw", 200.0)
    assert not choice.reprobe_due(10_000.0) and not choice.retries_v5()


def test_mqtt_5_accepted_or_forced_is_never_reprobed() -> None:
    answered = ProtocolChoice(MqttSettings(url="mqtt://broker.example:1883"), reprobe_after_s=60)
    answered.connected(ADDRESS, "gw", 0.0)
    forced = ProtocolChoice(
        MqttSettings(url="mqtt://broker.example:1883", protocol="3.1.1"), reprobe_after_s=60
    )
    forced.connected(ADDRESS, "gw", 0.0)
    for choice in (answered, forced):
        assert not choice.reprobe_due(10_000.0) and not choice.reprobes_v5(ADDRESS)
    refused = ProtocolChoice(MqttSettings(url="mqtt://broker.example:1883"), reprobe_after_s=60)
    assert refused.falls_back(132, ADDRESS)  # "unsupported protocol version": lacks 5 for good
    refused.connected(ADDRESS, "gw", 0.0)
    assert not refused.reprobe_due(10_000.0)
