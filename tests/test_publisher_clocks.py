"""The publisher against a real Mosquitto when clocks misbehave or a round fails.

A gateway without a real-time clock starts in 1970 until NTP sets it; NTP may step it back later;
and any unexpected error in a publishing round must not end the network thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.const import DEVICE_STATUS_INTERVAL_S, GATEWAY_STATUS_INTERVAL_S
from collector.mqtt_reconnect import round_retry_delay_s
from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from flarewatch import topics
from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import LinkState, decode_device_status, decode_gateway_status
from flarewatch.settings import MqttSettings
from tests.alerting_helpers import FakeClock as MonotonicClock
from tests.test_outbox import FakeClock as WallClock
from tests.test_publisher import T0, Recorder, reading

GATEWAY_TOPIC = topics.gateway_status_topic("gw-1")
DEVICE_TOPIC = topics.device_status_topic("p1", "d1")


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def publisher_for(
    mosquitto: MosquittoServer,
    tmp_path: Path,
    wall: Callable[[], int],
    monotonic: MonotonicClock | None = None,
) -> MqttPublisher:
    return MqttPublisher(
        MqttSettings(url=mosquitto.url),
        Outbox(tmp_path / "o.db", clock_ms=lambda: T0),
        gateway_id="gw-1",
        clock_ms=wall,
        monotonic_s=monotonic or MonotonicClock(),
    )


def test_samples_flow_while_the_wall_clock_is_unset_and_statuses_follow_once_set(
    mosquitto: MosquittoServer, recorder: Recorder, tmp_path: Path
) -> None:
    wall = WallClock(0)  # a Raspberry Pi without RTC before NTP: 1970
    publisher = publisher_for(mosquitto, tmp_path, wall)
    with publisher:
        assert publisher.submit("p1", "d1", [reading(i) for i in range(10)]) == 10
        assert publisher.wait_until_sent(10), publisher.status()
        recorder.wait_for(10)
        # the online state is announced without a time (as the Last Will is); device statuses,
        # which need one, wait for the clock
        assert wait_until(lambda: GATEWAY_TOPIC in recorder.statuses)
        gateway = decode_gateway_status(recorder.statuses[GATEWAY_TOPIC])
        assert gateway.state is LinkState.ONLINE and gateway.time_ms is None
        assert DEVICE_TOPIC not in recorder.statuses

        wall.now_ms = T0  # NTP has set the clock
        assert publisher.submit("p1", "d1", [reading(i) for i in range(10, 20)]) == 10
        assert publisher.wait_until_sent(10), publisher.status()
        assert wait_until(lambda: DEVICE_TOPIC in recorder.statuses)
        device = decode_device_status(recorder.statuses[DEVICE_TOPIC])
        assert device.time_ms == T0 and device.last_seq == T0 + 19
        status = publisher.status()
        assert status.connected and status.failed_rounds == 0
    order, duplicates = recorder.per_device()
    assert order == {"d1": list(range(T0, T0 + 20))} and duplicates == 0


class BrokenWallClock:
    """A wall clock that raises while ``broken`` (any unexpected error inside a round)."""

    def __init__(self) -> None:
        self.broken = True

    def __call__(self) -> int:
        if self.broken:
            raise RuntimeError("heart_rate_bpm 171.5 in the message")
        return T0


def test_a_failed_round_is_logged_and_retried_after_a_back_off(
    mosquitto: MosquittoServer,
    recorder: Recorder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wall = BrokenWallClock()
    monotonic = MonotonicClock()
    publisher = publisher_for(mosquitto, tmp_path, wall, monotonic)
    with caplog.at_level(logging.ERROR, logger="collector.publisher"), publisher:
        assert publisher.submit("p1", "d1", [reading(i) for i in range(10)]) == 10
        assert wait_until(lambda: publisher.status().failed_rounds >= 1), publisher.status()
        time.sleep(0.3)  # ~15 passes of the network loop: none retries before the back-off ends
        assert publisher.status().failed_rounds == 1
        assert publisher.status().outbox.pending == 10
        wall.broken = False
        monotonic.advance(round_retry_delay_s(1))
        assert publisher.wait_until_sent(10), publisher.status()
        status = publisher.status()
        assert status.connected and status.failed_rounds == 1
    recorder.wait_for(10)
    assert recorder.per_device() == ({"d1": list(range(T0, T0 + 10))}, 0)
    assert "publishing round failed (RuntimeError)" in caplog.text
    assert "171.5" not in caplog.text  # the exception's text may carry vitals: never logged


def test_status_refreshes_continue_after_the_wall_clock_steps_back(
    mosquitto: MosquittoServer, recorder: Recorder, tmp_path: Path
) -> None:
    wall = WallClock(T0 + 3_600_000)
    monotonic = MonotonicClock()
    publisher = publisher_for(mosquitto, tmp_path, wall, monotonic)
    with publisher:
        assert publisher.submit("p1", "d1", [reading(0)]) == 1
        assert publisher.wait_until_sent(10), publisher.status()
        assert wait_until(lambda: {GATEWAY_TOPIC, DEVICE_TOPIC} <= recorder.statuses.keys())
        wall.now_ms = T0  # NTP steps the clock back by an hour
        monotonic.advance(max(DEVICE_STATUS_INTERVAL_S, GATEWAY_STATUS_INTERVAL_S))

        def refreshed() -> bool:
            gateway = decode_gateway_status(recorder.statuses[GATEWAY_TOPIC])
            device = decode_device_status(recorder.statuses[DEVICE_TOPIC])
            return gateway.time_ms == T0 and device.time_ms == T0

        assert wait_until(refreshed, timeout_s=5)


@pytest.mark.parametrize(
    ("failures", "delay_s"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (10**6, 60.0)]
)
def test_round_retry_delay_table(failures: int, delay_s: float) -> None:
    assert round_retry_delay_s(failures) == pytest.approx(delay_s)
