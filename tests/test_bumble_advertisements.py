"""Malformed advertisements from any device in range are read as far as they are usable.

A neighbour's phone whose shortened name ends in the middle of a UTF-8 character, or a beacon
with a one-byte manufacturer field, made Bumble's decoder raise inside its HCI packet handler for
every advertisement (a logged traceback about ten times a second) and the device was never seen.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from collector.ble.backend import select_backend
from collector.virtual.world import VirtualWorld

JUNK_ADDRESS = "C0:5E:00:00:FF:01"
JUNK_ADVERTISEMENT = bytes(
    [
        *(0x02, 0x01, 0x06),  # flags
        *(0x04, 0x09, 0xFF, 0xFE, 0x41),  # complete local name: invalid UTF-8, then "A"
        *(0x02, 0xFF, 0x01),  # manufacturer specific data: one byte, no company id
        *(0x02, 0x16, 0x01),  # service data: a one-byte UUID
    ]
)


async def test_a_malformed_advertiser_is_seen_without_errors(
    world: VirtualWorld, caplog: pytest.LogCaptureFixture
) -> None:
    await world.add_wearable("band-1")
    junk = await world.add_advertiser(JUNK_ADDRESS, JUNK_ADVERTISEMENT)
    seen: dict[str, AdvertisementData] = {}

    def detected(device: BLEDevice, adv: AdvertisementData) -> None:
        seen[device.address] = adv

    backend = select_backend("bumble:" + world.hci_transport)
    scanner = BleakScanner(detected, backend=backend.scanner)
    with caplog.at_level(logging.WARNING):
        await scanner.start()
        try:
            async with asyncio.timeout(10):
                while not {JUNK_ADDRESS, world.wearables["band-1"].address} <= set(seen):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a few more advertisements of both
        finally:
            await scanner.stop()
            await junk.stop_advertising()
    assert seen[world.wearables["band-1"].address].local_name == "band-1"
    junk_adv = seen[JUNK_ADDRESS]
    assert junk_adv.local_name == "\ufffd\ufffdA"
    assert junk_adv.manufacturer_data == {} and junk_adv.service_data == {}
    assert "Exception in on_packet" not in caplog.text
