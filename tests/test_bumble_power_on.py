"""A Bluetooth controller that never answers (a hung dongle) is a timeout, not a silent stall.

The "controller" is a real TCP socket that accepts the HCI transport and never replies, as a USB
dongle in a bad state does: Bumble alone would wait forever for the HCI reset.
"""

from __future__ import annotations

import asyncio

import pytest

from collector.ble.bumble_backend.central import BumbleCentral


async def test_a_silent_controller_times_out_and_each_attempt_closes_its_transport() -> None:
    accepted = 0
    closed = 0

    async def silent_controller(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted, closed
        accepted += 1
        await reader.read()  # swallows the HCI reset; returns at EOF, once the gateway hangs up
        closed += 1
        writer.close()

    server = await asyncio.start_server(silent_controller, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    central = BumbleCentral(f"tcp-client:127.0.0.1:{port}", power_on_timeout_s=0.3)
    try:
        for _ in range(2):  # as the reopen loop retries: no transport may be left open
            with pytest.raises(TimeoutError, match="no answer from the Bluetooth controller"):
                await central.start()
        async with asyncio.timeout(5):
            while closed < 2:  # noqa: ASYNC110 - waits for the server task to see EOF
                await asyncio.sleep(0.02)
        assert accepted == 2 and central.device is None
    finally:
        server.close()
        await server.wait_closed()
