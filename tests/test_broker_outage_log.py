"""A service whose broker is unreachable says so: one warning per outage naming the broker (no
credentials) and why, and one line when it is connected again (real refused port, real Mosquitto
started later on it)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pytest
from pydantic import SecretStr

from flarewatch.localservers import MosquittoServer
from flarewatch.settings import load_settings
from service.alerts.runtime import AlertingRuntime
from service.ingest import IngestService
from tests.ingest_helpers import wait_for

PASSWORD = "s3cret-broker-password-4711"


def _lines(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


def test_unreachable_broker_is_reported_once_per_outage_and_its_return_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    (tmp_path / "mosquitto").mkdir()
    broker = MosquittoServer(tmp_path / "mosquitto")  # its port is chosen, nothing listens yet
    settings = load_settings(
        mqtt={"url": broker.url, "username": "flarewatch-service", "password": PASSWORD},
        store={"kind": "sqlite", "sqlite_path": tmp_path / "samples.sqlite3"},
        service={"database_url": f"sqlite:///{tmp_path}/service.sqlite3"},
    )
    assert isinstance(settings.mqtt.password, SecretStr)
    runtime = AlertingRuntime(settings, serve_api=False)
    ingest = IngestService.from_settings(settings, processor=runtime.processor)
    runtime.start()
    ingest.start()
    address = f"mqtt://127.0.0.1:{broker.port}"
    try:

        def warned(role: str) -> bool:
            return bool(_lines(caplog, logging.WARNING, f"{role}: cannot use MQTT"))

        for role in ("ingest", "alerts"):
            wait_for(partial(warned, role), 30, f"the {role} warning")
        warnings = _lines(caplog, logging.WARNING, "cannot use MQTT broker")
        assert all(address in w and "connection refused" in w for w in warnings), warnings
        with broker:
            assert ingest.wait_ready(30)
            assert runtime.bridge is not None and runtime.bridge.wait_ready(30)
            back = _lines(caplog, logging.INFO, "connected again to MQTT broker")
            assert sorted(line.split(":")[0] for line in back) == ["alerts", "ingest"], back
            # paho retried several times while the broker was down: still one warning each
            assert len(_lines(caplog, logging.WARNING, "cannot use MQTT broker")) == 2
            assert ingest.stats().connected
        # a second outage: the broker goes away while the service runs
        wait_for(lambda: not ingest.stats().connected, 30, "the ingest to notice")
        wait_for(
            lambda: len(_lines(caplog, logging.WARNING, "connection lost")) == 2, 30, "warnings"
        )
        broker.start()
        wait_for(lambda: ingest.stats().connected, 30, "the ingest to reconnect")
        wait_for(lambda: len(_lines(caplog, logging.INFO, "connected again")) == 4, 30, "both back")
    finally:
        ingest.stop()
        runtime.stop()
        broker.stop()
    outage_lines = _lines(caplog, logging.WARNING, "MQTT broker")
    assert len(outage_lines) == 4, outage_lines  # two outages, two connections
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]
