"""A publish the broker denies keeps its samples in the outbox until the broker accepts them.

Real Mosquitto with a password file and the ACL that ``flarewatch admin broker-auth`` writes: the
gateway speaks MQTT 5, so a denied QoS 1 publish comes back as PUBACK 0x87 (Not authorized)
instead of a plain acknowledgement. A 3.1.1-only broker (the demo's embedded amqtt) still gets
everything through the automatic fallback.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.mqtt_reconnect import refused_retry_delay_s
from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from flarewatch import topics
from flarewatch.embedded_broker import EmbeddedBroker
from flarewatch.localservers import MosquittoServer
from flarewatch.settings import MqttSettings
from service.broker_auth import DeviceRoute
from tests.publisher_helpers import (
    ALLOWED,
    GATEWAY,
    MOVED,
    SERVICE,
    T0,
    SteppedClock,
    Subscriber,
    expected,
    reading,
    wait_until,
    write_auth,
)


def test_denied_samples_stay_in_the_outbox_until_the_acl_allows_them(
    secured: tuple[MosquittoServer, dict[str, str]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, passwords = secured
    caplog.set_level(logging.INFO, logger="collector")
    service = Subscriber(server.port, SERVICE, passwords[SERVICE])
    clock = SteppedClock()
    outbox = Outbox(tmp_path / "outbox.db", clock_ms=lambda: T0)
    settings = MqttSettings(
        url=server.url, username=GATEWAY, password=SecretStr(passwords[GATEWAY])
    )
    publisher = MqttPublisher(settings, outbox, gateway_id=GATEWAY, monotonic_s=clock)
    denied_topic = topics.samples_topic(*MOVED)
    try:
        with publisher:
            publisher.submit(*ALLOWED, [reading(i) for i in range(40)])
            publisher.submit(*MOVED, [reading(i) for i in range(40)])
            assert wait_until(lambda: len(service.of(ALLOWED[1])) == 40)
            assert wait_until(lambda: publisher.status().refused_publishes >= 1)
            # more readings while the topic is held: the allowed band's still flow
            publisher.submit(*ALLOWED, [reading(i) for i in range(40, 70)])
            publisher.submit(*MOVED, [reading(i) for i in range(40, 70)])
            assert wait_until(lambda: len(service.of(ALLOWED[1])) == 70)
            assert service.of(ALLOWED[1]) == expected(T0, range(70))
            # every denied sample kept, none lost (the allowed ones' rows go once acknowledged)
            assert wait_until(lambda: outbox.pending == 70), outbox.pending
            time.sleep(0.3)  # a wrongly delivered denied batch gets the same chance to arrive
            assert service.of(MOVED[1]) == {}
            status = publisher.status()
            assert status.mqtt_version == "5"
            assert denied_topic in status.held_topics
            assert topics.samples_topic(*ALLOWED) not in status.held_topics
            refusals = [
                r.getMessage()
                for r in caplog.records
                if r.levelno == logging.ERROR and denied_topic in r.getMessage()
            ]
            assert len(refusals) == 1  # at most once a minute per topic
            assert "Not authorized" in refusals[0] and "broker-auth" in refusals[0]
            assert "heart_rate" not in caplog.text and "33.1" not in caplog.text

            # the wait ends while the ACL still denies: one batch probes the topic, is refused
            before = publisher.status()
            clock.offset_s += 3600
            assert wait_until(
                lambda: publisher.status().refused_publishes > before.refused_publishes
            )
            time.sleep(0.3)
            after = publisher.status()
            assert after.published_batches - before.published_batches <= 2  # a probe, no backlog
            assert denied_topic in after.held_topics
            assert outbox.pending == 70 and service.of(MOVED[1]) == {}

            # broker-auth run again with the band's new patient; Mosquitto reloads on SIGHUP
            write_auth(tmp_path, passwords, [DeviceRoute(*ALLOWED), DeviceRoute(*MOVED)])
            assert server.proc is not None
            server.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)  # let the broker read the new ACL before the probe goes out
            clock.offset_s += 3600  # the retry wait is over
            assert wait_until(lambda: len(service.of(MOVED[1])) == 70), len(service.of(MOVED[1]))
            assert publisher.wait_until_sent(10)
            # the held status topic is probed by the device status's next refresh (30 s)
            assert wait_until(lambda: clock.step(5) or publisher.status().held_topics == ())
        assert service.of(MOVED[1]) == expected(T0, range(70))
        assert service.of(ALLOWED[1]) == expected(T0, range(70))
        assert service.altered == []
        assert outbox.stats().dropped_over_budget == 0
    finally:
        service.close()
        outbox.close()


def test_a_broker_without_mqtt_5_still_gets_every_sample(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The embedded amqtt broker leaves an MQTT 5 CONNECT unanswered: 3.1.1 by itself."""
    caplog.set_level(logging.INFO, logger="collector")
    with EmbeddedBroker() as broker:
        service = Subscriber(broker.port, "", "")
        outbox = Outbox(tmp_path / "outbox.db", clock_ms=lambda: T0)
        publisher = MqttPublisher(MqttSettings(url=broker.url), outbox, gateway_id="gw-demo")
        try:
            with publisher:
                publisher.submit(*ALLOWED, [reading(i) for i in range(300)])
                assert publisher.wait_until_sent(20)
                assert publisher.status().mqtt_version == "3.1.1"
                assert wait_until(lambda: len(service.of(ALLOWED[1])) == 300)
            assert service.of(ALLOWED[1]) == expected(T0, range(300))
            fallbacks = [r for r in caplog.records if "did not answer an MQTT 5" in r.getMessage()]
            assert len(fallbacks) == 1
            assert any("speaking MQTT 3.1.1" in r.getMessage() for r in caplog.records)
        finally:
            service.close()
            outbox.close()


def test_a_refused_topic_is_probed_after_a_doubling_delay_capped_at_a_minute() -> None:
    assert [refused_retry_delay_s(n) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert refused_retry_delay_s(10_000) == 60.0  # no overflow after days of refusals
