"""Fixtures shared by every test: real Mosquitto and InfluxDB on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flarewatch.localservers import InfluxServer, MosquittoServer


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
