"""Two gateways under one gateway_id: the gateway says so and stops fighting for the session."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from collector.session_watch import SessionWatch
from flarewatch.localservers import MosquittoServer
from flarewatch.settings import MqttSettings

CLASH_WATCH_S = 6.0


def _clash_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "collector.session_watch"]


def test_short_sessions_keep_the_backoff_and_warn_once_per_streak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = SessionWatch("flarewatch-gateway-gw1", short_s=10.0, warn_after=3)
    caplog.set_level(logging.WARNING, logger="collector.session_watch")
    now = 0.0
    for _ in range(5):
        watch.opened(now)
        assert not watch.settled(now + 2.0)  # a session taken away at once: keep backing off
        watch.closed(now + 2.0)
        now += 5.0
    assert watch.short_in_row == 5
    assert len(_clash_warnings(caplog)) == 1  # once per streak, not at every drop
    assert "flarewatch-gateway-gw1" in _clash_warnings(caplog)[0]

    watch.opened(now)
    assert watch.settled(now + 10.0)  # a session that lasts: the backoff starts afresh
    watch.closed(now + 60.0)
    assert watch.short_in_row == 0
    watch.closed(now + 61.0)  # a failed connect attempt (no session) counts for nothing
    assert watch.short_in_row == 0


def test_two_gateways_with_one_id_are_named_and_back_off(
    mosquitto: MosquittoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.session_watch")
    settings = MqttSettings(url=mosquitto.url)
    gateways = [
        MqttPublisher(settings, Outbox(tmp_path / f"outbox{i}.db"), gateway_id="gw-kitchen")
        for i in range(2)
    ]
    try:
        for gateway in gateways:
            gateway.start()
        deadline = time.monotonic() + 30.0
        while not _clash_warnings(caplog) and time.monotonic() < deadline:
            time.sleep(0.05)
        warnings = _clash_warnings(caplog)
        assert warnings, "no warning about the shared gateway id"
        assert "'flarewatch-gateway-gw-kitchen'" in warnings[0]
        assert "gateway_id" in warnings[0]
        # with the backoff reset at every accepted session they took the session from each
        # other about four times a second; backing off, a few times in the same span
        before = sum(g.status().connects for g in gateways)
        time.sleep(CLASH_WATCH_S)
        during = sum(g.status().connects for g in gateways) - before
        assert during <= CLASH_WATCH_S, f"{during} connections in {CLASH_WATCH_S:.0f} s"
    finally:
        for gateway in gateways:
            gateway.stop()
