"""Shared by the publisher tests that run a gateway against a Mosquitto with broker-auth's files.

The constants name the gateway, the service user and the two bands (one the ACL allows, one moved
to a patient it lacks); the helpers write those files, record what the service receives and step
the publisher's clock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.sources.base import Reading
from flarewatch import topics
from flarewatch.payloads import LinkState, decode_gateway_status, decode_sample_batch
from service.broker_auth import DeviceRoute, acl_file, hash_password, password_file

T0 = 1_764_081_600_000
SERVICE = "flarewatch-service"
GATEWAY = "gw-a"
ALLOWED = ("p1", "band-1")
MOVED = ("p2", "band-2")
"""A band moved to patient p2 without broker-auth being run again: the ACL still lacks it."""


def reading(i: int) -> Reading:
    """A distinct reading per index, so that a sample arriving altered would be noticed."""
    return Reading(
        time_ms=T0 + i * 1000,
        heart_rate_bpm=60.0 + i % 37,
        rr_intervals_s=(0.9 + i % 7 / 100, 0.95),
        skin_temperature_c=33.0 + i % 5 / 10,
        contact_detected=i % 3 != 0,
        battery_percent=80 - i % 10,
    )


class Subscriber:
    """The service's view: each sample received by (device, seq) as its contract fields, how
    often it arrived, and the gateway's announced link states."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.samples: dict[tuple[str, int], dict[str, object]] = {}
        self.deliveries: Counter[tuple[str, int]] = Counter()
        self.altered: list[tuple[str, int]] = []
        self.gateway_states: list[LinkState] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-service")
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(topics.SAMPLES_SUBSCRIPTION, 1), (topics.gateway_status_topic(GATEWAY), 1)]
        )
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            if not msg.topic.endswith("/samples"):
                self.gateway_states.append(decode_gateway_status(bytes(msg.payload)).state)
                return
            batch = decode_sample_batch(bytes(msg.payload))
            for sample in batch.samples:
                key = (batch.device_id, sample.seq)
                self.deliveries[key] += 1
                fields = sample.model_dump(exclude_none=True, exclude={"seq"})
                if self.samples.setdefault(key, fields) != fields:
                    self.altered.append(key)  # a duplicate must be the same sample

    def of(self, device_id: str) -> dict[int, dict[str, object]]:
        """Samples of one device by seq."""
        with self.lock:
            return {seq: f for (device, seq), f in self.samples.items() if device == device_id}

    def deliveries_of(self, device_id: str) -> Counter[int]:
        """How often each sample of one device arrived, by seq."""
        with self.lock:
            return Counter({seq: n for (d, seq), n in self.deliveries.items() if d == device_id})

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(
    condition: Callable[[], object], timeout_s: float = 20.0, poll_s: float = 0.05
) -> bool:
    """Poll ``condition`` until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return False


def expected(first_seq: int, indexes: range) -> dict[int, dict[str, object]]:
    """What the service must receive for readings ``indexes`` appended from ``first_seq`` on."""
    return {first_seq + n: reading(i).fields() for n, i in enumerate(indexes)}


class SteppedClock:
    """A monotonic clock the test moves forward, so the publisher's retry waits pass at once."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset_s

    def step(self, seconds: float) -> None:
        """Let ``seconds`` pass at once."""
        self.offset_s += seconds


def write_auth(directory: Path, passwords: dict[str, str], routes: list[DeviceRoute]) -> None:
    """The broker files as ``flarewatch admin broker-auth`` writes them."""
    (directory / "passwords").write_text(
        password_file({user: hash_password(pw) for user, pw in passwords.items()})
    )
    (directory / "acl").write_text(
        acl_file({GATEWAY: routes}, service_user=SERVICE, alert_readers=[], ack_grants=[])
    )
