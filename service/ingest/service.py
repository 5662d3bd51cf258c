"""The MQTT ingest: broker → bounded queue → worker (validate, deduplicate, store, process) → ack.

Threads: paho's network thread only enqueues received messages (``on_message`` never does work,
which would stall the network loop); one worker thread drains the queue in cycles. A cycle decodes
every message it takes, drops duplicates by (device, seq), writes the new samples in one store call,
hands them to the processing hook and only then acknowledges the messages (paho manual ack). A
crash at any point leaves the unacknowledged messages in the broker's persistent session, which
redelivers them: nothing is lost, and redeliveries are filtered by the duplicate filter and the
idempotent store.

Backpressure: the broker sends at most ``max_inflight_messages`` unacknowledged messages, so a slow
store slows delivery instead of filling memory; if the queue is full anyway, ``on_message`` blocks
the network thread (the broker keeps the rest queued). A store outage is retried with backoff for
as long as it lasts, with the messages kept unacknowledged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import paho.mqtt.client as mqtt

from flarewatch.errors import ConfigError, ContractError
from flarewatch.payloads import DeviceStatus, GatewayStatus, SampleBatch
from flarewatch.settings import MqttSettings, Settings
from flarewatch.topics import (
    SAMPLES_SUBSCRIPTION,
    STATUS_SUBSCRIPTION,
    deadletter_topic,
    parse_topic,
)
from service.const import (
    DEADLETTER_DETAIL_CHARS,
    INGEST_BATCH_SAMPLES,
    INGEST_CLIENT_ID,
    INGEST_QUEUE_MESSAGES,
    INGEST_RECONNECT_MAX_S,
    INGEST_RECONNECT_MIN_S,
    PROCESS_TICK_S,
    STOP_TIMEOUT_S,
)
from service.errors import StoreError
from service.ingest.backoff import store_retry_delay_s
from service.ingest.dedup import SeqWindow
from service.ingest.mqttclient import make_client
from service.ingest.stats import IngestCounters, IngestStats
from service.ingest.validation import decode_message
from service.processing import IngestCycle, NullProcessor, Processor
from service.stores.base import SampleStore
from service.stores.factory import create_store

log = logging.getLogger(__name__)

STORE_REFUSED = "store_refused"
"""Rejection reason: the store refused a write as malformed (see :func:`store_retry_delay_s`)."""

_QUEUE_PUT_POLL_S = 0.5
"""How often a blocked ``on_message`` checks whether the ingest is stopping."""


@dataclass(slots=True)
class _Received:
    mid: int
    qos: int
    topic: str
    payload: bytes
    patient_id: str | None = None
    has_new_samples: bool = False


@dataclass(slots=True)
class _Cycle:
    """Messages taken from the queue in one worker cycle and what they decoded to."""

    messages: list[_Received] = field(default_factory=list)
    batches: list[SampleBatch] = field(default_factory=list)
    device_statuses: list[DeviceStatus] = field(default_factory=list)
    gateway_statuses: list[GatewayStatus] = field(default_factory=list)
    received_samples: int = 0
    new_samples: int = 0
    duplicates: int = 0


class IngestService:
    """Consumes samples and statuses from MQTT into a :class:`SampleStore`; embeddable.

    ``start()`` returns at once (the store is prepared and the broker connected in the background),
    ``wait_ready()`` waits for the subscriptions, ``stats()`` is a snapshot of the counters and
    ``stop()`` flushes, acknowledges and disconnects. ``clock`` (UTC epoch seconds) drives the
    contract's timestamp plausibility checks and the processing hook's ``now_ms``.
    """

    def __init__(
        self,
        store: SampleStore,
        mqtt_settings: MqttSettings,
        *,
        processor: Processor | None = None,
        client_id: str = INGEST_CLIENT_ID,
        queue_size: int = INGEST_QUEUE_MESSAGES,
        batch_samples: int = INGEST_BATCH_SAMPLES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mqtt_settings.url is None:
            raise ConfigError("no MQTT broker configured: set FLAREWATCH_MQTT__URL or --mqtt-url")
        self.store = store
        self.mqtt_settings = mqtt_settings
        self.processor = processor if processor is not None else NullProcessor()
        self.client_id = client_id
        self.batch_samples = batch_samples
        self.clock = clock
        # None wakes the worker up for a stop
        self._queue: queue.Queue[_Received | None] = queue.Queue(maxsize=queue_size)
        self._counters = IngestCounters()
        self._dedup = SeqWindow()
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._closing = threading.Event()
        self._subscribed = threading.Event()
        self._client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None
        self._enqueued = 0
        self._acked = 0
        self._last_process = time.monotonic()
        self._devices: dict[str, DeviceStatus] = {}
        self._gateways: dict[str, GatewayStatus] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        processor: Processor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """An ingest with the store, broker and sizes the settings describe."""
        return cls(
            create_store(settings),
            settings.mqtt,
            processor=processor,
            client_id=settings.mqtt.client_id or INGEST_CLIENT_ID,
            queue_size=settings.service.queue_size,
            batch_samples=settings.influx.batch_size,
            clock=clock,
        )

    # -- public API -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker: prepare the store, seed the duplicate filter, connect, consume."""
        if self._worker is not None:
            raise RuntimeError("IngestService.start() called twice")
        self._worker = threading.Thread(target=self._run, name="flarewatch-ingest", daemon=True)
        self._worker.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the broker confirmed the subscriptions; False on timeout."""
        return self._subscribed.wait(timeout_s)

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._worker is not None and self._worker.is_alive()

    def stats(self) -> IngestStats:
        """Snapshot of the counters (thread-safe, cheap)."""
        return self._counters.snapshot(
            queue_depth=self._queue.qsize(), unacked_messages=self._enqueued - self._acked
        )

    def device_statuses(self) -> dict[str, DeviceStatus]:
        """Latest status of every device seen, by device id."""
        return dict(self._devices)

    def gateway_statuses(self) -> dict[str, GatewayStatus]:
        """Latest status of every gateway seen, by gateway id."""
        return dict(self._gateways)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Store and acknowledge what was received, disconnect, close the store and processor.

        If the store is down, waits up to ``timeout_s`` and then leaves the pending messages
        unacknowledged in the broker (they are redelivered on the next start).
        """
        self._closing.set()
        self._stop.set()
        with contextlib.suppress(queue.Full):  # a full queue means the worker is not waiting
            self._queue.put_nowait(None)
        if self._worker is not None:
            self._worker.join(timeout_s)
            if self._worker.is_alive():
                self._abort.set()
                self._worker.join(STOP_TIMEOUT_S)
        self.processor.close()
        self.store.close()

    # -- MQTT callbacks (network thread) ----------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s (check credentials and ACLs)", reason)
            return
        log.info("connected to the broker (session present: %s)", flags.session_present)
        self._counters.connected = True
        client.subscribe([(SAMPLES_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in codes):
            log.error("broker refused a subscription (%s): check the service's ACL", codes)
            return
        self._subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._counters.connected = False
        if not self._closing.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._closing.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)  # the reject path reports it as bad_topic
        received = _Received(message.mid, message.qos, topic, bytes(message.payload))
        while True:
            try:
                self._queue.put(received, timeout=_QUEUE_PUT_POLL_S)
            except queue.Full:
                if self._closing.is_set():
                    return
                continue
            self._enqueued += 1
            return

    # -- worker -----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if not self._prepare_store():
                return
            self._connect()
            while True:
                cycle = self._take()
                if cycle is None:
                    if self._stop.is_set():
                        return
                    self._tick()
                    continue
                if not self._finish(cycle):
                    return
        except Exception:
            log.exception("ingest worker failed; unacknowledged messages stay in the broker")
        finally:
            self._disconnect()

    def _prepare_store(self) -> bool:
        attempt = 0
        while not self._stop.is_set():
            try:
                self.store.prepare()
                last = self.store.last_seqs()
            except StoreError as exc:
                attempt += 1
                delay = store_retry_delay_s(exc, attempt)
                if delay is None:
                    raise
                log.warning("sample store not ready (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
                continue
            self._dedup.seed(last)
            log.info("%s store ready; %d devices known", self.store.name, len(last))
            return True
        return False

    def _connect(self) -> None:
        client, host, port = make_client(self.mqtt_settings, self.client_id)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(INGEST_RECONNECT_MIN_S, INGEST_RECONNECT_MAX_S)
        self._client = client
        client.connect_async(host, port, keepalive=self.mqtt_settings.keepalive_s)
        client.loop_start()

    def _disconnect(self) -> None:
        client = self._client
        if client is not None:
            self._closing.set()
            client.disconnect()  # queued behind the acknowledgements, so they are sent first
            client.loop_stop()

    def _take(self) -> _Cycle | None:
        """Wait for a message, then take what is queued, up to ``batch_samples`` new samples."""
        try:
            received = self._queue.get(timeout=0 if self._stop.is_set() else PROCESS_TICK_S)
        except queue.Empty:
            return None
        cycle = _Cycle()
        now_ms = int(self.clock() * 1000)
        while True:
            if received is not None:
                self._decode(received, cycle, now_ms)
                if cycle.new_samples >= self.batch_samples:
                    break
            try:
                received = self._queue.get_nowait()
            except queue.Empty:
                break
        return cycle if cycle.messages else None

    def _decode(self, received: _Received, cycle: _Cycle, now_ms: int) -> None:
        cycle.messages.append(received)
        try:
            decoded = decode_message(received.topic, received.payload, now_ms=now_ms)
        except ContractError as exc:
            self._reject(received, exc.reason, exc.detail)
            return
        if isinstance(decoded, SampleBatch):
            received.patient_id = decoded.patient_id
            cycle.received_samples += len(decoded.samples)
            fresh = self._dedup.accept(decoded.device_id, decoded.samples)
            cycle.duplicates += len(decoded.samples) - len(fresh)
            if fresh:
                if len(fresh) != len(decoded.samples):
                    decoded = decoded.model_copy(update={"samples": tuple(fresh)})
                cycle.batches.append(decoded)
                cycle.new_samples += len(fresh)
                received.has_new_samples = True
        elif isinstance(decoded, DeviceStatus):
            self._devices[decoded.device_id] = decoded
            cycle.device_statuses.append(decoded)
        elif isinstance(decoded, GatewayStatus):
            self._gateways[decoded.gateway_id] = decoded
            cycle.gateway_statuses.append(decoded)

    def _reject(self, received: _Received, reason: str, detail: str) -> None:
        """Count a rejected message and report it (metadata only, never the payload)."""
        patient = received.patient_id or _patient_of(received.topic)
        self._counters.reject(reason, patient)
        log.debug("rejected message on %s: %s", received.topic, reason)
        report = {
            "topic": received.topic,
            "reason": reason,
            "detail": detail[:DEADLETTER_DETAIL_CHARS],
            "size_bytes": len(received.payload),
            "received_ms": int(self.clock() * 1000),
        }
        if self._client is not None:
            self._client.publish(deadletter_topic(reason), json.dumps(report), qos=1)

    def _finish(self, cycle: _Cycle) -> bool:
        """Store, process and acknowledge a cycle; False if stopped while the store was down."""
        if cycle.batches and not self._write(cycle):
            return False
        self._counters.cycle(
            messages=len(cycle.messages),
            samples=cycle.received_samples,
            duplicates=cycle.duplicates,
            stored_by_patient=_samples_by_patient(cycle.batches),
        )
        self._process(
            IngestCycle(
                now_ms=int(self.clock() * 1000),
                batches=tuple(cycle.batches),
                device_statuses=tuple(cycle.device_statuses),
                gateway_statuses=tuple(cycle.gateway_statuses),
            )
        )
        self._ack(cycle.messages)
        return True

    def _write(self, cycle: _Cycle) -> bool:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                self.store.write(cycle.batches)
            except StoreError as exc:
                self._counters.store_error()
                attempt += 1
                delay = store_retry_delay_s(exc, attempt)
                if delay is None:
                    log.error("store refused a write; its messages are given up: %s", exc)
                    self._give_up(cycle)
                    return True
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("store write failed (attempt %d, retrying): %s", attempt, exc)
                if self._abort.wait(delay):
                    return False
                continue
            self._counters.store_write((time.monotonic() - started) * 1000)
            if attempt:
                log.info("store write succeeded after %d retries", attempt)
            return True

    def _give_up(self, cycle: _Cycle) -> None:
        for received in cycle.messages:
            if received.has_new_samples:
                self._reject(received, STORE_REFUSED, "the sample store refused the write")
        cycle.batches.clear()

    def _process(self, cycle: IngestCycle) -> None:
        self._last_process = time.monotonic()
        try:
            self.processor.process(cycle)
        except Exception:  # a faulty hook must not stop the ingest: the data is stored already
            self._counters.processing_error()
            log.exception("processing hook failed")

    def _tick(self) -> None:
        if time.monotonic() - self._last_process >= PROCESS_TICK_S:
            self._process(IngestCycle(now_ms=int(self.clock() * 1000)))

    def _ack(self, messages: list[_Received]) -> None:
        client = self._client
        for received in messages:
            if received.qos > 0 and client is not None:
                client.ack(received.mid, received.qos)
        self._acked += len(messages)


def _patient_of(topic: str) -> str | None:
    """The patient id of a samples/status topic, for per-patient reject counts (best effort)."""
    try:
        return parse_topic(topic).patient_id
    except ContractError:
        return None


def _samples_by_patient(batches: list[SampleBatch]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for batch in batches:
        counts[batch.patient_id] += len(batch.samples)
    return counts
