"""``flarewatch scan`` lists the wearables in range, what it reads of each, and their entries.

Virtual wearables on Bumble, a gadget that advertises only a battery and a nameless beacon share
the radio; the command runs in its own process through the Bumble backend, as on a gateway.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bumble.keys import PairingKeys

from collector.ble import scan
from collector.ble.backend import select_backend
from collector.ble.bumble_backend import BondStore
from collector.ble.devices import ConfiguredDevice, parse_devices
from collector.ble.scan import SeenWearable, proposed_id, reads, scan_wearables
from collector.profiles.registry import default_registry
from collector.virtual.world import VirtualWorld

GADGET_ADDRESS = "C0:5E:00:00:F0:01"
BEACON_ADDRESS = "C0:5E:00:00:F0:02"
GADGET_ADVERTISEMENT = bytes(
    [
        *(0x02, 0x01, 0x06),  # flags
        *(0x03, 0x03, 0x0F, 0x18),  # complete list of 16-bit services: Battery 0x180F
        *(0x07, 0x09, *b"mouse1"),  # complete local name
    ]
)
BEACON_ADVERTISEMENT = bytes([0x02, 0x01, 0x06, 0x05, 0xFF, 0x4C, 0x00, 0x02, 0x15])


@pytest.fixture
async def radio(world: VirtualWorld) -> AsyncIterator[VirtualWorld]:
    """Two bands, a gadget with a battery service only, and a beacon with neither name nor
    service."""
    await world.add_wearable("band-1")
    await world.add_wearable("band-2")
    await world.add_advertiser(GADGET_ADDRESS, GADGET_ADVERTISEMENT)
    await world.add_advertiser(BEACON_ADDRESS, BEACON_ADVERTISEMENT)
    yield world


async def test_the_scan_tells_bands_from_gadgets_and_knows_the_configured_ones(
    radio: VirtualWorld,
) -> None:
    band_1 = radio.wearables["band-1"].address
    configured = [ConfiguredDevice("strap-anna", "anna", address=band_1)]
    backend = select_backend("bumble:" + radio.hci_transport)
    ticks: list[float] = []
    heard = await scan_wearables(backend, 2.0, default_registry(), configured, ticks.append)
    by_address = {w.address: w for w in heard}
    assert set(by_address) == {
        band_1,
        radio.wearables["band-2"].address,
        GADGET_ADDRESS,
        BEACON_ADDRESS,
    }
    # the bands first (readable), then the others
    assert [w.readable for w in heard] == [True, True, False, False]
    assert by_address[band_1].profiles == ("health_thermometer", "heart_rate")
    assert by_address[band_1].configured_as == "strap-anna"
    assert by_address[radio.wearables["band-2"].address].configured_as is None
    gadget = by_address[GADGET_ADDRESS]
    assert (gadget.name, gadget.profiles, gadget.readable) == ("mouse1", (), False)
    assert "0000180f-0000-1000-8000-00805f9b34fb" in gadget.service_uuids
    beacon = by_address[BEACON_ADDRESS]
    assert (beacon.name, beacon.manufacturer_ids) == (None, {0x004C})
    assert all(w.rssi is not None for w in heard)
    assert ticks[0] == pytest.approx(0.0, abs=0.1) and ticks[-1] == 2.0


async def _flarewatch(*argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flarewatch.cli",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_scan_writes_the_entries_the_gateway_reads(
    radio: VirtualWorld, tmp_path: Path
) -> None:
    """``--toml`` proposes the bands that devices.toml lacks, as tables the gateway accepts."""
    devices = tmp_path / "devices.toml"
    band_1 = radio.wearables["band-1"].address
    devices.write_text(f'[[devices]]\nid = "strap-anna"\npatient = "anna"\naddress = "{band_1}"\n')
    config = tmp_path / "flarewatch.toml"
    config.write_text(
        "[collector]\n"
        'devices_file = "devices.toml"\n'
        f'ble_backend = "bumble:{radio.hci_transport}"\n'
        f'bonds_file = "{tmp_path / "bonds.json"}"\n'
    )
    keys = PairingKeys(ltk=PairingKeys.Key(bytes(16)))  # the gateway paired band-1 once
    await BondStore(tmp_path / "bonds.json").update(band_1, keys)
    code, stdout, stderr = await _flarewatch("scan", "--config", str(config), "--seconds", "2")
    assert code == 0, stderr
    table = stdout.splitlines()
    assert table[0].split() == ["address", "name", "dBm", "reads", "in", "devices.toml", "bonded"]
    assert band_1 in table[1] and "strap-anna" in table[1]  # readable first; ties by address
    assert table[1].split()[-1] == "yes" and table[2].split()[-1] == "-"
    assert "mouse1" in table[3] and "connect to tell" in table[3]
    assert BEACON_ADDRESS not in stdout  # no name, nothing readable: only with --all
    assert "4 advertiser(s) heard in 2 s, 2 readable; 1 without a name or profile hidden" in stderr

    code, stdout, stderr = await _flarewatch(
        "scan", "--config", str(config), "--seconds", "2", "--toml", "bob"
    )
    assert code == 0, stderr
    proposed = parse_devices(tomllib.loads(stdout))
    assert proposed == [
        ConfiguredDevice("band-2", "bob", address=radio.wearables["band-2"].address)
    ]

    code, stdout, _ = await _flarewatch(
        "scan", "--config", str(config), "--seconds", "1", "--all", "--json"
    )
    records = {r["address"]: r for r in map(json.loads, stdout.splitlines())}
    assert set(records) == {
        band_1,
        radio.wearables["band-2"].address,
        GADGET_ADDRESS,
        BEACON_ADDRESS,
    }
    assert records[band_1]["devices_toml_id"] == "strap-anna"
    assert records[band_1]["bonded"] is True
    assert records[radio.wearables["band-2"].address]["bonded"] is False
    assert records[band_1]["profiles"] == ["health_thermometer", "heart_rate"]


async def test_connect_reads_the_services_a_band_does_not_advertise(world: VirtualWorld) -> None:
    """Many bands advertise their name only: ``--connect`` reads their services, one at a time,
    and a gadget that offers nothing flarewatch reads says so."""
    await world.add_wearable("band-quiet", advertise_services=False)
    await world.add_advertiser(GADGET_ADDRESS, GADGET_ADVERTISEMENT)
    await world.add_advertiser(BEACON_ADDRESS, BEACON_ADVERTISEMENT)
    band = world.wearables["band-quiet"].address
    backend = select_backend("bumble:" + world.hci_transport)
    listened = await scan_wearables(backend, 1.5, default_registry())
    assert {w.address: reads(w) for w in listened} == {
        band: "connect to tell (--connect)",
        GADGET_ADDRESS: "connect to tell (--connect)",
        BEACON_ADDRESS: "connect to tell (--connect)",
    }
    progress: list[tuple[int, int]] = []
    heard = await scan_wearables(
        backend, 1.5, default_registry(), connect=True, on_connected=lambda *p: progress.append(p)
    )
    assert [(w.address, reads(w)) for w in heard] == [
        (band, "health_thermometer, heart_rate"),  # readable now: first
        *sorted(
            [
                (GADGET_ADDRESS, "nothing flarewatch reads"),
                (BEACON_ADDRESS, "connect to tell (--connect)"),  # no name: not connected to
            ]
        ),
    ]
    assert progress == [(1, 2), (2, 2)]


async def test_a_band_gone_before_its_turn_is_said_and_the_next_is_read(
    world: VirtualWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A band that walked out of range after it was heard times out; the controller is left
    free for the next device, which is read (nearest first, then by address: the band first)."""
    monkeypatch.setattr(scan, "CONNECT_TIMEOUT_S", 1.0)
    monkeypatch.setattr(scan, "READ_TIMEOUT_S", 5.0)
    await world.add_wearable("band-quiet", advertise_services=False)
    await world.add_advertiser(GADGET_ADDRESS, GADGET_ADVERTISEMENT)
    band = world.wearables["band-quiet"].address

    def walk_away(elapsed: float) -> None:
        if elapsed >= 1.0:
            world.take_out_of_range("band-quiet")

    backend = select_backend("bumble:" + world.hci_transport)
    heard = await scan_wearables(
        backend, 1.5, default_registry(), on_progress=walk_away, connect=True
    )
    assert {w.address: reads(w) for w in heard} == {
        band: "could not connect (timed out)",
        GADGET_ADDRESS: "nothing flarewatch reads",
    }


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--seconds", "0"], "--seconds must be from 1 to 120"),
        (["--toml", "bob smith"], "a patient id is letters, digits"),
        (["--ble-backend", "bumble:tcp-client:127.0.0.1:1"], "cannot scan for wearables"),
    ],
)
async def test_a_scan_that_cannot_run_says_why(argv: list[str], said: str) -> None:
    code, stdout, stderr = await _flarewatch("scan", "--seconds", "1", *argv)
    assert (code, stdout) == (1, "")
    assert said in stderr
    assert "Traceback" not in stderr


def test_proposed_ids_are_valid_and_unique() -> None:
    taken: list[str] = []
    for name in ["Polar H10 1234ABCD", "Polar H10 1234ABCD", "ÄÖ ☺", None, "x" * 80]:
        device_id = proposed_id(SeenWearable("C0:5E:00:00:12:AB", name=name), taken)
        parse_devices(
            {"devices": [{"id": device_id, "patient": "p", "address": "C0:5E:00:00:12:AB"}]}
        )
        assert device_id not in taken
        taken.append(device_id)
    assert taken[:2] == ["polar-h10-1234abcd", "polar-h10-1234abcd-0012ab"]
    assert taken[2] == "band-0012ab"
