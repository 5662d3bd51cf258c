"""Processes of the ingest benchmark: simulated-patient publishers, a bare subscriber, the service.

Kept apart from ``bench/ingest.py`` (the orchestrator) so that each runs in its own process and
the service is measured alone, as it is deployed.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from collector.simulation.cohort import Cohort
from collector.simulation.profile import random_profile

POOL_SECONDS = 600
"""Simulated seconds generated per patient before the run; replayed with fresh seq and time."""

PUBLISH_INFLIGHT = 100
"""Unacknowledged QoS 1 publishes per publisher process (like the gateway publisher's window)."""


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    return host, int(port)


@dataclass
class PublisherSpec:
    """What one publisher process sends."""

    url: str
    first_patient: int
    patients: int
    seed: int
    samples_per_message: int
    t0_ms: int
    topic_root: str
    run_s: float


def sample_pool(spec: PublisherSpec) -> list[tuple[str, str, list[str]]]:
    """Per patient: (patient id, device id, JSON fragments of simulated samples without seq/time).

    The physiology comes from the collector's simulator; generating it costs ~15 µs per sample,
    too much to do during the measurement on a shared 2-core machine, so it is done up front and
    replayed with fresh sequence numbers and timestamps.
    """
    profiles = [
        random_profile(spec.seed, i)
        for i in range(spec.first_patient, spec.first_patient + spec.patients)
    ]
    cohort = Cohort(
        len(profiles), seed=spec.seed, band_on_ms=spec.t0_ms - 3_600_000, profiles=profiles
    )
    pool = []
    for block in cohort.generate(spec.t0_ms, spec.t0_ms + POOL_SECONDS * 1000):
        fragments = []
        for reading in block.readings():
            fields = reading.fields()
            del fields["time_ms"]
            fragments.append(json.dumps(fields, separators=(",", ":"))[1:-1])
        pool.append((block.patient_id, block.device_id, fragments))
    return pool


def publisher_main(
    spec: PublisherSpec,
    published: Synchronized[int],
    consumed: Synchronized[int],
    max_lead: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """Publish batches round-robin over the patients until ``run_s`` is over.

    Credit-based flow control: publishing pauses while more than ``max_lead`` samples are
    published but not yet consumed (stored by the service, or received by the bare subscriber),
    so the run measures what the pipeline accepts instead of filling the broker's queue.
    """
    pool = sample_pool(spec)
    acked = 0
    acked_lock = threading.Lock()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        with acked_lock:
            acked += 1

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{spec.topic_root}-{spec.first_patient}"
    )
    client.max_inflight_messages_set(PUBLISH_INFLIGHT)
    client.max_queued_messages_set(4 * PUBLISH_INFLIGHT)
    client.on_publish = on_publish
    client.connect(*host_port(spec.url))
    client.loop_start()
    topic_of = [f"{spec.topic_root}/{p}/{d}/samples" for p, d, _ in pool]
    heads = [f'{{"v":1,"patient_id":"{p}","device_id":"{d}","samples":[' for p, d, _ in pool]
    next_seq = [0] * len(pool)
    k = spec.samples_per_message
    sent = 0
    ready.set()
    go.wait()
    end = time.monotonic() + spec.run_s
    while time.monotonic() < end:
        for i, (_, _, fragments) in enumerate(pool):
            while published.value - consumed.value > max_lead:
                time.sleep(0.001)
            first = next_seq[i]
            n = len(fragments)
            body = ",".join(
                f'{{"seq":{s},"time_ms":{spec.t0_ms + s * 1000},{fragments[s % n]}}}'
                for s in range(first, first + k)
            )
            payload = f"{heads[i]}{body}]}}".encode()
            while (
                client.publish(topic_of[i], payload, qos=1).rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
            ):
                time.sleep(0.0005)
            next_seq[i] = first + k
            sent += 1
            with published.get_lock():
                published.value += k
            if time.monotonic() >= end:
                break
    while acked < sent:  # every publish acknowledged by the broker
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    results.put({d: next_seq[i] for i, (_, d, _) in enumerate(pool)})


def subscriber_main(
    url: str,
    subscription: str,
    samples_per_message: int,
    consumed: Synchronized[int],
    ready: Any,
    stop: Any,
) -> None:
    """A bare QoS 1 subscriber that only counts: the broker's pub→sub ceiling."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling-subscriber")
    client.on_connect = lambda c, *_: c.subscribe(subscription, qos=1)
    client.on_subscribe = lambda *_: ready.set()

    def on_message(*_: Any) -> None:
        with consumed.get_lock():
            consumed.value += samples_per_message

    client.on_message = on_message
    client.connect(*host_port(url))
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()


def service_main(mqtt_url: str, influx_url: str) -> None:
    """The flarewatch ingest (as ``flarewatch serve`` runs it), printing its counters as JSON."""
    from flarewatch.settings import load_settings
    from service.ingest import IngestService

    settings = load_settings(
        mqtt={"url": mqtt_url}, influx={"url": influx_url}, store={"kind": "influx"}
    )
    ingest = IngestService.from_settings(settings)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    ingest.start()
    if not ingest.wait_ready(30):
        sys.exit("service did not subscribe")
    print("ready", flush=True)
    while not stopping.wait(0.25):
        stats = ingest.stats()
        print(
            json.dumps(
                {
                    "stored": stats.stored_samples,
                    "duplicates": stats.duplicate_samples,
                    "rejected": stats.rejected_total,
                    "unacked": stats.unacked_messages,
                    "store_ms_last": stats.store_latency_ms_last,
                    "writes": stats.store_writes,
                    "store_errors": stats.store_errors,
                }
            ),
            flush=True,
        )
    ingest.stop()


def main() -> None:
    """Entry of the service process: ``argv[-2:]`` are the broker and InfluxDB URLs."""
    service_main(sys.argv[-2], sys.argv[-1])
