"""An in-process MQTT broker (amqtt) for ``flarewatch demo`` when no broker is configured.

amqtt is pure Python and speaks MQTT 3.1.1 with QoS 1, retained messages and Last Will, which is
all the core uses; it handled ~2.5k messages/s in one process here, plenty for a demo (GUIDE §2).
It keeps sessions in memory only, so it is never used where data must survive a restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any, Final, Self

from flarewatch.errors import ConfigError
from flarewatch.lifecycle import StartStop
from flarewatch.localservers import free_port

log = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 10.0


class EmbeddedBroker(StartStop):
    """amqtt running on its own event loop in a daemon thread, on a free loopback port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the broker thread and wait until it listens."""
        started: Future[None] = Future()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="embedded-mqtt-broker", daemon=True
        )
        self._thread.start()
        try:
            started.result(START_TIMEOUT_S)
        except Exception as exc:  # any start-up failure becomes a ConfigError
            raise ConfigError(f"embedded MQTT broker failed to start: {exc}") from exc
        return self

    def _run(self, started: Future[None]) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start_broker())
        except Exception as exc:  # noqa: BLE001 - reported to the starting thread
            started.set_exception(exc)
            return
        started.set_result(None)
        self._loop.run_forever()

    async def _start_broker(self) -> None:
        from amqtt.broker import Broker  # imported lazily: only the demo needs it

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        await self._broker.start()

    def stop(self) -> None:
        """Shut the broker down and join its thread."""
        if self._loop is None or self._thread is None:
            return
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                future.result(START_TIMEOUT_S)
            except Exception:  # best effort on the way out
                log.warning("embedded broker did not shut down cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self._loop.close()
        self._loop = None
