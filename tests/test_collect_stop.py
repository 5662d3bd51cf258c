"""``flarewatch collect`` stops as soon as it is asked to (Ctrl-C, SIGTERM), not at its next
progress line."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import collector.gateway
from collector.ble.devices import ConfiguredDevice
from collector.gateway import run_gateway
from collector.virtual.control import WorldProcess
from flarewatch.localservers import MosquittoServer
from flarewatch.settings import load_settings


@pytest.fixture
def world() -> Iterator[WorldProcess]:
    with WorldProcess(1) as world:
        yield world


async def test_a_stop_request_ends_the_gateway_before_its_next_progress_line(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    world: WorldProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An hour between progress lines: a stop that waited for the next one would not end the test.
    monkeypatch.setattr(collector.gateway, "PROGRESS_INTERVAL_S", 3600.0)
    settings = load_settings(
        mqtt={"url": mosquitto.url},
        collector={
            "gateway_id": "gw-stop",
            "outbox_path": tmp_path / "outbox.sqlite3",
            "ble_backend": f"bumble:{world.hci_transport}",
        },
    )
    (band,) = world.ready["devices"]
    devices = [ConfiguredDevice(str(band["name"]), "anna", str(band["address"]))]
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(run_gateway(settings, devices, stop=stop), timeout=60)
