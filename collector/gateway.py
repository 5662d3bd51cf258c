"""The ``flarewatch collect`` runtime: BLE wearables -> durable outbox -> MQTT broker.

Wiring only: the connection manager (``collector.ble.manager``) hands every parsed notification
to the MQTT publisher, whose ``submit`` writes it to the SQLite outbox before returning; the
publisher's own thread sends the outbox to the broker and deletes rows only after PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from collector.ble.backend import select_backend
from collector.ble.devices import ConfiguredDevice, load_devices
from collector.ble.manager import ConnectionManager, DeviceState
from collector.outbox import Outbox
from collector.profiles import default_registry
from collector.publisher import MqttPublisher
from flarewatch import __version__
from flarewatch.errors import ConfigError
from flarewatch.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 10.0
"""How often ``collect`` logs one line of progress (states, readings, outbox backlog)."""


def devices_of(settings: Settings, config_file: Path | None) -> list[ConfiguredDevice]:
    """The device registry named by ``collector.devices_file`` (relative to the config file)."""
    path = settings.collector.devices_file
    if path is None:
        raise ConfigError(
            'no wearables configured: set [collector] devices_file = "devices.toml" in the '
            "config file (see docs/ble.md for its [[devices]] tables)"
        )
    if not path.is_absolute() and config_file is not None:
        path = config_file.parent / path
    return load_devices(path)


async def run_gateway(
    settings: Settings,
    devices: Sequence[ConfiguredDevice],
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the gateway until ``stop`` is set (or the task is cancelled); flushes on the way out."""
    if settings.mqtt.url is None:
        raise ConfigError('collect needs a broker: set [mqtt] url = "mqtt://host:1883"')
    backend = select_backend(settings.collector.ble_backend, settings.collector.bonds_file)
    outbox = Outbox(settings.collector.outbox_path)
    publisher = MqttPublisher(
        settings.mqtt,
        outbox,
        gateway_id=settings.collector.gateway_id,
        software=f"flarewatch {__version__}",
    )
    manager = ConnectionManager(
        devices,
        publisher,
        default_registry(settings.collector.profile_plugins),
        backend=backend,
        max_connections=settings.collector.ble_max_connections,
        watchdog_timeout_s=settings.collector.ble_watchdog_timeout_s,
    )
    log.info(
        "collecting from %d device(s) through %s into %s",
        len(devices),
        backend.description,
        publisher.address,
    )
    publisher.start()
    try:
        runner = asyncio.create_task(manager.run(), name="ble-manager")
        waiter = asyncio.create_task((stop or asyncio.Event()).wait(), name="stop")
        while not runner.done() and not waiter.done():
            await asyncio.wait(
                {runner, waiter}, timeout=PROGRESS_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED
            )
            _log_progress(manager, publisher)
        runner.cancel()
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    finally:
        await asyncio.to_thread(publisher.stop)
        outbox.close()


def _log_progress(manager: ConnectionManager, publisher: MqttPublisher) -> None:
    states = ", ".join(
        # a band waiting after a failure says which: backoff(pairing) needs a person
        f"{d}={link.state}"
        + (f"({link.last_failure})" if link.state is DeviceState.BACKOFF else "")
        for d, link in manager.links.items()
    )
    status = publisher.status()
    log.info(
        "devices: %s | readings %d | outbox pending %d | broker %s",
        states,
        sum(link.readings for link in manager.links.values()),
        status.outbox.pending,
        "up" if status.connected else "down",
    )


def collect(settings: Settings, config_file: Path | None) -> int:
    """Blocking entry point of ``flarewatch collect``: stops cleanly on SIGINT/SIGTERM."""
    devices = devices_of(settings, config_file)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_gateway(settings, devices, stop=stop)

    asyncio.run(main())
    return 0
