"""Bands that need pairing, end to end: `flarewatch pair` (a person types the passkey the band
shows), `bonds`, `unpair`, and `flarewatch collect` streaming bonded bands to Mosquitto across a
SIGKILL and a band reset, with every heart-rate notification the world delivered arriving once.

The world (`flarewatch ble-sim --security ...`) and each command run as their own processes,
connected by an HCI transport over TCP, as a gateway drives a USB dongle.
"""

from __future__ import annotations

import functools
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.virtual.control import WorldProcess
from flarewatch.localservers import MosquittoServer
from tests.test_collect_e2e import (
    Collector,
    Subscriber,
    assert_arrived_once_in_order,
    in_flight_at_kill,
    stop_and_drain,
    wait_for,
)


def write_config(
    tmp_path: Path, world: WorldProcess, broker: MosquittoServer | None, *, by_name: bool = False
) -> Path:
    devices = tmp_path / "devices.toml"
    devices.write_text(
        "".join(
            f'[[devices]]\nid = "{d["name"]}"\npatient = "patient-{i}"\n'
            f'address = "{d["address"]}"\n' + (f'name = "{d["name"]}"\n' if by_name else "")
            for i, d in enumerate(world.ready["devices"], start=1)
        )
    )
    config = tmp_path / "flarewatch.toml"
    mqtt = f'[mqtt]\nurl = "{broker.url}"\n\n' if broker is not None else ""
    config.write_text(
        f'{mqtt}[collector]\ngateway_id = "gw-bonded"\n'
        f'outbox_path = "{tmp_path / "outbox.sqlite3"}"\n'
        f'bonds_file = "{tmp_path / "var" / "bonds.json"}"\n'
        f'devices_file = "devices.toml"\nble_backend = "bumble:{world.hci_transport}"\n'
        "ble_watchdog_timeout_s = 1.5\n"
    )
    return config


FLAREWATCH = (sys.executable, "-m", "flarewatch.cli")


def flarewatch(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLAREWATCH, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(180)
def test_a_person_pairs_a_passkey_band_once_then_the_gateway_streams_it(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with WorldProcess(1, extra_args=("--security", "passkey", "--rate-hz", "5")) as world:
        assert world.client is not None
        control = world.client
        config = write_config(tmp_path, world, mosquitto)
        bonds_file = tmp_path / "var" / "bonds.json"

        # Enter alone gives up: nothing is kept
        gave_up = flarewatch("pair", "band-1", "--config", str(config), stdin="\n")
        assert gave_up.returncode == 1, gave_up.stderr
        assert "shows a passkey" in gave_up.stderr and "pairing" in gave_up.stderr
        assert not bonds_file.exists() or json.loads(bonds_file.read_text())["bonds"] == {}

        # the person reads the passkey off the band and types it
        pairing = subprocess.Popen(
            [*FLAREWATCH, "--log-level", "DEBUG", "pair", "band-1", "--config", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert pairing.stdin is not None
        deadline = time.monotonic() + 60
        while (passkey := control.shown_passkey("band-1")) is None:
            assert time.monotonic() < deadline, "the band never showed a passkey"
            assert pairing.poll() is None, pairing.communicate()
            time.sleep(0.1)
        out, err = pairing.communicate(f"{passkey:06d}\n", timeout=60)
        assert pairing.returncode == 0, err[-3000:]
        assert "paired with its passkey" in out
        assert "A measurement arrived over the encrypted link" in out
        assert control.pairings("band-1") == 1

        # the bond: only the gateway's user reads it, and no key is in the debug log
        assert stat.S_IMODE(bonds_file.stat().st_mode) == 0o600
        (entry,) = json.loads(bonds_file.read_text())["bonds"].values()
        assert entry["keys"]["ltk"]["value"] not in err
        listed = flarewatch("bonds", "--json", "--config", str(config))
        assert listed.returncode == 0, listed.stderr
        (bond,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert bond["device"] == "band-1" and bond["how"] == "passkey"

        # the gateway, another process, encrypts with that bond: no person, no pairing
        subscriber = Subscriber(mosquitto.url)
        collector = Collector(config)
        collector.start()
        try:
            wait_for(
                lambda: len(subscriber.heart_rate_counters().get("band-1", [])) >= 5,
                40,
                "band-1 streaming through the gateway",
            )
        finally:
            collector.stop()
            subscriber.close()
        assert control.pairings("band-1") == 1
        assert "Traceback" not in collector.log.read_text(errors="replace")

        forgot = flarewatch("unpair", "band-1", "--config", str(config))
        assert forgot.returncode == 0 and "bond forgotten" in forgot.stdout
        assert json.loads(bonds_file.read_text())["bonds"] == {}
        again = flarewatch("unpair", "band-1", "--config", str(config))
        assert again.returncode == 1 and "no bond" in again.stderr
        unknown = flarewatch("pair", "band-9", "--config", str(config))
        assert unknown.returncode == 1 and "neither a device of devices.toml" in unknown.stderr


@pytest.mark.timeout(180)
def test_a_band_with_a_private_address_is_paired_by_name_then_streamed_as_it_changes(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    extra = ("--security", "encryption", "--privacy", "--rate-hz", "5")
    with WorldProcess(1, extra_args=extra) as world:
        assert world.client is not None
        control = world.client
        identity = world.ready["devices"][0]["address"]
        config = write_config(tmp_path, world, mosquitto, by_name=True)
        # before pairing it is heard only from a private address: the gateway cannot know it
        paired = flarewatch("pair", "band-1", "--config", str(config))
        assert paired.returncode == 0, paired.stderr
        assert f"band-1 ({identity}) paired (Just Works" in paired.stdout

        subscriber = Subscriber(mosquitto.url)
        collector = Collector(config)
        collector.start()
        try:
            for address in (1, 2, 3):
                wanted = 10 * address
                wait_for(
                    lambda n=wanted: len(subscriber.heart_rate_counters().get("band-1", [])) >= n,
                    40,
                    f"band-1 streaming from private address {address}",
                )
                control.take_out_of_range("band-1")
                control.rotate("band-1")  # back from another address, as phones do
                control.bring_back("band-1")
        finally:
            collector.stop()
            subscriber.close()
        assert control.pairings("band-1") == 1

        wrong = tmp_path / "devices.toml"
        wrong.write_text(wrong.read_text().replace(identity, "C0:5E:00:00:00:99"))
        misnamed = flarewatch("pair", "band-1", "--config", str(config))
        assert misnamed.returncode == 1
        assert f'set address = "{identity}"' in misnamed.stderr


@pytest.mark.timeout(240)
def test_bonded_bands_stream_without_loss_across_a_gateway_kill_and_a_band_reset(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with WorldProcess(2, extra_args=("--security", "encryption", "--rate-hz", "5")) as world:
        assert world.client is not None
        control = world.client
        subscriber = Subscriber(mosquitto.url)
        collector = Collector(write_config(tmp_path, world, mosquitto))

        def streaming(n: int) -> bool:
            counters = subscriber.heart_rate_counters()
            return all(len(counters.get(f"band-{i}", [])) >= n for i in (1, 2))

        collector.start()
        try:
            wait_for(lambda: streaming(5), 40, "both bands paired and streaming")
            assert [control.pairings(f"band-{i}") for i in (1, 2)] == [1, 1]

            before_kill = control.delivered()
            collector.kill()  # a new gateway process: the bonds come from the file
            after_kill = control.delivered()
            collector.start()
            wait_for(lambda: streaming(40), 60, "streaming again after the SIGKILL")
            assert [control.pairings(f"band-{i}") for i in (1, 2)] == [1, 1]

            control.reset("band-1")  # the band forgets the gateway, then the link drops
            control.take_out_of_range("band-1")
            time.sleep(1)
            control.bring_back("band-1")
            count = len(subscriber.heart_rate_counters().get("band-1", []))
            wait_for(
                lambda: len(subscriber.heart_rate_counters().get("band-1", [])) > count + 10,
                60,
                "band-1 paired anew and streaming",
            )
            assert [control.pairings(f"band-{i}") for i in (1, 2)] == [2, 1]
            may_lose = functools.partial(in_flight_at_kill, before_kill, after_kill)
            final = stop_and_drain(collector, control, subscriber, may_lose)
        finally:
            collector.stop()
            subscriber.close()
        log = collector.log.read_text(errors="replace")

    assert_arrived_once_in_order(subscriber, final, may_lose, log)
    assert "no longer knows this gateway" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
