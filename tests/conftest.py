"""Fixtures shared by every test: real Mosquitto and InfluxDB on free loopback ports, and the
local push receivers (HTTP and SMTP) that alert deliveries reach for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flarewatch.localservers import InfluxServer, MosquittoServer
from tests.alerting_helpers import HttpReceiver, Inbox, SmtpReceiver


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A fresh real Mosquitto broker (persistence on, no queue limits) for one test."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    with server:
        yield server


@pytest.fixture
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A fresh real InfluxDB 1.x server for one test."""
    server = InfluxServer(tmp_path_factory.mktemp("influxdb"))
    with server:
        yield server


@pytest.fixture
def inbox() -> Inbox:
    """Every push delivery received by the local HTTP and SMTP receivers, in arrival order."""
    return Inbox()


@pytest.fixture
def http(inbox: Inbox) -> Iterator[HttpReceiver]:
    """A local HTTP receiver (Apprise ``json://``) on a free port."""
    with HttpReceiver(inbox) as receiver:
        yield receiver


@pytest.fixture
def smtp(inbox: Inbox) -> Iterator[SmtpReceiver]:
    """A local SMTP server (aiosmtpd) on a free port."""
    with SmtpReceiver(inbox) as receiver:
        yield receiver
