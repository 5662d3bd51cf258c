"""Acceptance: 5 virtual wearables -> `flarewatch collect` (Bumble) -> Mosquitto -> subscriber.

The virtual world and the collector run in separate processes connected by an HCI transport over
TCP, exactly as a collector drives a USB dongle. The world counts every heart-rate notification
that reached the collector's controller (by its energy-expended counter), which is the oracle:
the subscriber must receive each of them once, in order, across a device out of range, a stalled
stream, a broker outage and a SIGKILL of the collector.

The outages have the acceptance lengths (30 s out of range, 60 s broker down);
FLAREWATCH_E2E_SHORT=1 shortens them to a few seconds for quick local runs.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.virtual.control import WorldClient, WorldProcess
from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import (
    DeviceStatus,
    LinkState,
    Sample,
    decode_device_status,
    decode_sample_batch,
)
from flarewatch.topics import SAMPLES_SUBSCRIPTION, STATUS_SUBSCRIPTION, TopicKind, parse_topic

LONG = os.environ.get("FLAREWATCH_E2E_SHORT") != "1"
OUT_OF_RANGE_S = 30.0 if LONG else 4.0
BROKER_DOWN_S = 60.0 if LONG else 5.0
STALL_S = 5.0
WATCHDOG_S = 1.5
DEVICES = 5


class Subscriber:
    """A persistent-session QoS 1 subscriber recording every sample by device."""

    def __init__(self, url: str) -> None:
        self.samples: dict[str, list[Sample]] = defaultdict(list)
        self.statuses: dict[str, list[DeviceStatus]] = defaultdict(list)
        self.lock = threading.Lock()
        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-subscriber", clean_session=False
        )
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(SAMPLES_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)]
        )
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if parse_topic(message.topic).kind is TopicKind.DEVICE_STATUS:
            status = decode_device_status(message.payload)
            with self.lock:
                self.statuses[status.device_id].append(status)
            return
        if parse_topic(message.topic).kind is not TopicKind.SAMPLES:
            return
        batch = decode_sample_batch(message.payload)
        with self.lock:
            self.samples[batch.device_id].extend(batch.samples)

    def heart_rate_counters(self) -> dict[str, list[int]]:
        with self.lock:
            return {
                device: [s.energy_expended_kj for s in unique(samples) if s.energy_expended_kj]
                for device, samples in self.samples.items()
            }

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def unique(samples: list[Sample]) -> list[Sample]:
    """Samples in arrival order with at-least-once redeliveries (same seq) removed."""
    seen: dict[int, Sample] = {}
    out = []
    for sample in samples:
        if sample.seq in seen:
            assert seen[sample.seq] == sample, "a redelivered seq must carry the same sample"
            continue
        seen[sample.seq] = sample
        out.append(sample)
    return out


class Collector:
    """`flarewatch collect` in a subprocess."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "collector.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flarewatch.cli", "collect", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def world() -> Iterator[WorldProcess]:
    with WorldProcess(DEVICES) as world:
        yield world


def write_config(tmp_path: Path, broker: MosquittoServer, world: WorldProcess) -> Path:
    (tmp_path / "devices.toml").write_text(
        "".join(
            f'[[devices]]\nid = "{d["name"]}"\npatient = "patient-{i}"\n'
            f'address = "{d["address"]}"\n'
            for i, d in enumerate(world.ready["devices"], start=1)
        )
    )
    config = tmp_path / "flarewatch.toml"
    config.write_text(
        f'[mqtt]\nurl = "{broker.url}"\n\n'
        f'[collector]\ngateway_id = "gw-e2e"\noutbox_path = "{tmp_path / "outbox.sqlite3"}"\n'
        f'devices_file = "devices.toml"\nble_backend = "bumble:{world.hci_transport}"\n'
        f"ble_watchdog_timeout_s = {WATCHDOG_S}\n"
    )
    return config


def streaming(subscriber: Subscriber, world: WorldClient) -> Callable[[], bool]:
    """All devices connected and each has delivered something new since this was built."""
    before = {d: len(c) for d, c in subscriber.heart_rate_counters().items()}

    def check() -> bool:
        now = subscriber.heart_rate_counters()
        fresh = all(len(now.get(f"band-{i}", [])) > before.get(f"band-{i}", 0) for i in range(1, 6))
        return fresh and world.connected() == DEVICES

    return check


@pytest.mark.timeout(480 if LONG else 240)
def test_every_sample_arrives_once_in_order_across_failures(
    tmp_path: Path, mosquitto: MosquittoServer, world: WorldProcess
) -> None:
    assert world.client is not None
    control = world.client
    subscriber = Subscriber(mosquitto.url)
    collector = Collector(write_config(tmp_path, mosquitto, world))
    collector.start()
    try:
        wait_for(streaming(subscriber, control), 40, "5 devices streaming")
        wait_for(
            lambda: all(
                any(
                    s.state is LinkState.ONLINE
                    and s.battery_percent is not None
                    and s.contact_detected is not None
                    for s in subscriber.statuses.get(f"band-{i}", [])
                )
                for i in range(1, DEVICES + 1)
            ),
            40,
            "online device statuses with battery and skin contact",
        )

        # (a) out of range and back
        control.take_out_of_range("band-1")
        time.sleep(OUT_OF_RANGE_S)
        control.bring_back("band-1")
        # (b) notifications stalled while connected: the watchdog must reconnect
        control.stall("band-2")
        time.sleep(STALL_S)
        control.stall("band-2", False)
        wait_for(streaming(subscriber, control), 30, "recovery from range loss and stall")

        # (c) broker down
        mosquitto.stop()
        time.sleep(BROKER_DOWN_S)
        mosquitto.start()
        wait_for(streaming(subscriber, control), 30, "recovery from the broker outage")

        # (d) collector SIGKILL and restart
        before_kill = control.delivered()
        collector.kill()
        after_kill = control.delivered()
        collector.start()
        wait_for(streaming(subscriber, control), 40, "recovery from SIGKILL")

        may_lose = functools.partial(in_flight_at_kill, before_kill, after_kill)
        final = stop_and_drain(collector, control, subscriber, may_lose)
    finally:
        collector.stop()
        subscriber.close()
        log = collector.log.read_text(errors="replace")

    assert_arrived_once_in_order(subscriber, final, may_lose, log)
    assert "Traceback" not in log, log[-3000:]
    # the stalled band was reconnected by the watchdog, the far one after its link loss
    assert "watchdog" in log or "stall" in log.lower(), log[-3000:]


def stop_and_drain(
    collector: Collector,
    world: WorldClient,
    subscriber: Subscriber,
    may_lose: Callable[[str], set[int]],
) -> dict[str, dict[str, list[int]]]:
    """Stop the collector gracefully (it flushes its outbox) and wait for what it delivered."""
    collector.stop()
    final = world.delivered()
    wait_for(drained(subscriber, final, may_lose), 20, "the outbox to drain")
    return final


def drained(
    subscriber: Subscriber,
    delivered: dict[str, dict[str, list[int]]],
    may_lose: Callable[[str], set[int]],
) -> Callable[[], bool]:
    """Whether every notification the world delivered arrived, but those ``may_lose`` allows."""
    return lambda: all(
        set(subscriber.heart_rate_counters().get(device, ()))
        >= set(record["heart_rate_counters"]) - may_lose(device)
        for device, record in delivered.items()
    )


def assert_arrived_once_in_order(
    subscriber: Subscriber,
    delivered: dict[str, dict[str, list[int]]],
    may_lose: Callable[[str], set[int]],
    log: str,
) -> None:
    """Each delivered notification arrived once, in order, none missing but ``may_lose``'s."""
    received = subscriber.heart_rate_counters()
    for device, record in delivered.items():
        sent = record["heart_rate_counters"]
        got = received.get(device, [])
        assert got == sorted(got), f"{device}: samples out of order"
        assert len(set(got)) == len(got), f"{device}: a notification was published twice"
        missing = set(sent) - set(got)
        assert missing <= may_lose(device), (
            f"{device}: lost {sorted(missing)} of {len(sent)}\n{log[-3000:]}"
        )
        assert set(got) <= set(sent), f"{device}: samples nobody sent"
        seqs = [s.seq for s in unique(subscriber.samples[device])]
        assert seqs == sorted(seqs), f"{device}: seq out of order"


def in_flight_at_kill(
    before: dict[str, dict[str, list[int]]], after: dict[str, dict[str, list[int]]], device: str
) -> set[int]:
    """Notifications that reached the collector's socket around the SIGKILL (may be lost)."""
    old = before.get(device, {}).get("heart_rate_counters", [])
    new = after.get(device, {}).get("heart_rate_counters", [])
    return set(old[-2:]) | (set(new) - set(old))
