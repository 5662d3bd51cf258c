"""Shared helpers of the ingest tests: a raw paho publisher, sample batches, waiting for counts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from flarewatch import topics
from flarewatch.payloads import Sample, SampleBatch, encode
from service.stores.base import SampleStore


def now_ms() -> int:
    return int(time.time() * 1000)


T0_MS = now_ms() - 2 * 86_400_000
"""Sample ``seq`` s is taken at ``T0_MS + (s - origin) s``: two days ago at 1 Hz."""


def make_batch(
    patient: str, device: str, seqs: range, *, t0_ms: int = T0_MS, seq_origin: int = 0
) -> SampleBatch:
    return SampleBatch(
        patient_id=patient,
        device_id=device,
        samples=tuple(
            Sample(
                seq=s,
                time_ms=t0_ms + (s - seq_origin) * 1000,
                heart_rate_bpm=60.0 + s % 40,
                steps=s % 7,
            )
            for s in seqs
        ),
    )


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


class RawPublisher:
    """A bare paho QoS 1 publisher, for payloads the collector would never send."""

    def __init__(self, url: str, client_id: str = "test-raw-publisher") -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos)

    def batch(self, batch: SampleBatch) -> mqtt.MQTTMessageInfo:
        return self.publish(topics.samples_topic(batch.patient_id, batch.device_id), encode(batch))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Subscriber:
    """Collects messages of one subscription (dead letters) in a list."""

    def __init__(self, url: str, subscription: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-subscriber")

        def on_connect(client: mqtt.Client, *_: Any) -> None:
            client.subscribe(subscription, qos=1)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.ready.wait(10)

    def json(self) -> Iterator[dict[str, Any]]:
        for _, payload in list(self.messages):
            yield json.loads(payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored_seqs(store: SampleStore, device: str) -> list[int]:
    """Every stored seq of ``device``, in order (duplicates would show twice)."""
    return [s.sample.seq for s in store.samples(device_id=device)]
