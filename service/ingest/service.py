"""The MQTT ingest: broker → bounded queue → decoder → writer (store, process) → ack.

Threads: paho's network thread only enqueues received messages (``on_message`` never does work,
which would stall the network loop). The decoder thread drains the queue in cycles: it validates
every message, drops duplicates by (device, seq) and encodes the new samples for the store. The
writer thread writes each cycle in one store call, hands it to the processing hook and only then
acknowledges its messages (paho manual ack), in order; it writes one cycle while the decoder
prepares the next. A crash at any point leaves the unacknowledged messages in the broker's
persistent session, which redelivers them: nothing is lost, and redeliveries are filtered by the
duplicate filter and the idempotent store.

Backpressure: the broker sends at most ``max_inflight_messages`` unacknowledged messages, so a slow
store slows delivery instead of filling memory; if the queue is full anyway, ``on_message`` blocks
the network thread (the broker keeps the rest queued). A store outage is retried with backoff for
as long as it lasts, with the messages kept unacknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Self

import paho.mqtt.client as mqtt

from flarewatch.errors import ConfigError
from flarewatch.mqtt import make_client
from flarewatch.payloads import DeviceStatus, GatewayStatus
from flarewatch.settings import MqttSettings, ServiceSettings, Settings
from flarewatch.topics import SAMPLES_SUBSCRIPTION, STATUS_SUBSCRIPTION, deadletter_topic
from service.const import (
    INGEST_BATCH_SAMPLES,
    INGEST_PIPELINE_CYCLES,
    INGEST_QUEUE_MESSAGES,
    INGEST_RECONNECT_MAX_S,
    INGEST_RECONNECT_MIN_S,
    PROCESS_TICK_S,
    STOP_TIMEOUT_S,
)
from service.health import Check
from service.ingest.cycle import Cycle, CycleDecoder, ReceivedMessage, deadletter_report, patient_of
from service.ingest.dedup import SeqWindow
from service.ingest.stats import IngestCounters, IngestStats
from service.ingest.store_retry import (
    STORE_REFUSED,
    WriteOutcome,
    prepare_store,
    write_each,
    write_retrying,
)
from service.mqtt_link import BrokerLinkLog
from service.processing import IngestCycle, NullProcessor, Processor
from service.stores.base import EncodedWrite, SampleStore
from service.stores.factory import create_store

log = logging.getLogger(__name__)

_QUEUE_PUT_POLL_S = 0.5
"""How often a thread blocked on a full queue checks whether the ingest is stopping."""


class IngestService:
    """Consumes samples and statuses from MQTT into a :class:`SampleStore`; embeddable.

    ``start()`` returns at once (the store is prepared and the broker connected in the background),
    ``wait_ready()`` waits for the subscriptions, ``stats()`` is a snapshot of the counters and
    ``stop()`` flushes, acknowledges and disconnects. ``clock`` (UTC epoch seconds) drives the
    contract's timestamp plausibility checks and the processing hook's ``now_ms``. ``client_id``
    defaults to the default service instance's; ``persistent=False`` (the demo) leaves no session
    behind on the broker.
    """

    def __init__(
        self,
        store: SampleStore,
        mqtt_settings: MqttSettings,
        *,
        processor: Processor | None = None,
        client_id: str | None = None,
        persistent: bool = True,
        queue_size: int = INGEST_QUEUE_MESSAGES,
        batch_samples: int = INGEST_BATCH_SAMPLES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mqtt_settings.url is None:
            raise ConfigError("no MQTT broker configured: set FLAREWATCH_MQTT__URL or --mqtt-url")
        self.store = store
        self.mqtt_settings = mqtt_settings
        self.processor = processor if processor is not None else NullProcessor()
        self.client_id = client_id or ServiceSettings().mqtt_client_id("ingest")
        self.persistent = persistent
        self.batch_samples = batch_samples
        self.clock = clock
        # None wakes the worker up for a stop
        self._queue: queue.Queue[ReceivedMessage | None] = queue.Queue(maxsize=queue_size)
        self._counters = IngestCounters()
        self._dedup = SeqWindow()
        self._decoder = CycleDecoder(self._dedup, self._reject)
        # decoded cycles waiting for the writer: one, so decoding overlaps the previous write
        self._handoff: queue.Queue[Cycle | None] = queue.Queue(maxsize=INGEST_PIPELINE_CYCLES)
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._closing = threading.Event()
        self._subscribed = threading.Event()
        self._client: mqtt.Client | None = None
        self._link: BrokerLinkLog | None = None
        self._worker: threading.Thread | None = None
        self._enqueued = 0
        self._acked = 0
        self._last_process = time.monotonic()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        processor: Processor | None = None,
        clock: Callable[[], float] = time.time,
        persistent: bool = True,
    ) -> Self:
        """An ingest with the store, broker, client id and sizes the settings describe."""
        return cls(
            create_store(settings),
            settings.mqtt,
            processor=processor,
            client_id=settings.service.mqtt_client_id("ingest"),
            persistent=persistent,
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

    def broker_health(self) -> Check:
        """Whether samples can arrive: the worker runs and the broker link is up."""
        if not self.running:
            return Check("ingest", False, "the ingest has stopped")
        if not self._counters.connected:
            return Check("broker (ingest)", False, "not connected to the MQTT broker")
        return Check("broker (ingest)", True, "connected")

    def store_health(self) -> Check:
        """Whether samples are stored: the last write to the sample store succeeded."""
        name = f"sample store ({self.store.name})"
        if self._counters.store_failing:
            return Check(name, False, "writes fail: retrying, samples held in the broker")
        return Check(name, True, "writes succeed")

    def device_statuses(self) -> dict[str, DeviceStatus]:
        """Latest status of every device seen, by device id."""
        return dict(self._decoder.devices)

    def gateway_statuses(self) -> dict[str, GatewayStatus]:
        """Latest status of every gateway seen, by gateway id."""
        return dict(self._decoder.gateways)

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
        assert self._link is not None  # set before connecting
        if reason.is_failure:
            self._link.refused(reason)
            return
        self._link.connected(flags.session_present)
        self._counters.connected = True
        client.subscribe([(SAMPLES_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)])

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        if self._link is not None:
            self._link.connect_failed()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in codes):
            log.error("broker refused a subscription (%s): check the service's ACL", codes)
            return
        log.info("subscribed to samples and status topics")
        self._subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._counters.connected = False
        if not self._closing.is_set() and self._link is not None:
            self._link.lost(reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._closing.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)  # the reject path reports it as bad_topic
        received = ReceivedMessage(message.mid, message.qos, topic, bytes(message.payload))
        while True:
            try:
                self._queue.put(received, timeout=_QUEUE_PUT_POLL_S)
            except queue.Full:
                if self._closing.is_set():
                    return
                continue
            self._enqueued += 1
            return

    # -- decoder thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        writer = threading.Thread(
            target=self._run_writer, name="flarewatch-ingest-writer", daemon=True
        )
        try:
            if not self._prepare_store():
                return
            self._connect()
            writer.start()
            while True:
                cycle = self._take()
                if cycle is None:
                    if self._stop.is_set():
                        break
                    continue
                if cycle.batches:
                    cycle.encoded = self.store.encode(cycle.batches)
                if not self._hand_over(cycle, writer):
                    break
        except Exception:
            log.exception("ingest worker failed; unacknowledged messages stay in the broker")
        finally:
            if writer.is_alive() and self._hand_over(None, writer):
                while writer.is_alive() and not self._abort.is_set():
                    writer.join(_QUEUE_PUT_POLL_S)
            self._disconnect()

    def _hand_over(self, cycle: Cycle | None, writer: threading.Thread) -> bool:
        """Queue a cycle (``None``: the end) for the writer; False if it stopped or was aborted."""
        while writer.is_alive() and not self._abort.is_set():
            try:
                self._handoff.put(cycle, timeout=_QUEUE_PUT_POLL_S)
            except queue.Full:
                continue
            return True
        return False

    def _prepare_store(self) -> bool:
        last = prepare_store(self.store, self._stop)
        if last is None:
            return False
        self._dedup.seed(last)
        log.info("%s store ready; %d devices known", self.store.name, len(last))
        return True

    def _connect(self) -> None:
        client, address = make_client(
            self.mqtt_settings, self.client_id, persistent=self.persistent
        )
        self._link = BrokerLinkLog("ingest", address, self.client_id, log)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(INGEST_RECONNECT_MIN_S, INGEST_RECONNECT_MAX_S)
        self._client = client
        client.connect_async(address.host, address.port, keepalive=self.mqtt_settings.keepalive_s)
        client.loop_start()

    def _disconnect(self) -> None:
        client = self._client
        if client is not None:
            self._closing.set()
            if self._link is not None:
                self._link.closing()
            client.disconnect()  # queued behind the acknowledgements, so they are sent first
            client.loop_stop()

    def _take(self) -> Cycle | None:
        """Wait for a message, then take what is queued, up to ``batch_samples`` new samples."""
        try:
            received = self._queue.get(timeout=0 if self._stop.is_set() else PROCESS_TICK_S)
        except queue.Empty:
            return None
        cycle = Cycle()
        now_ms = int(self.clock() * 1000)
        while True:
            if received is not None:
                self._decoder.add(cycle, received, now_ms)
                if cycle.new_samples >= self.batch_samples:
                    break
            try:
                received = self._queue.get_nowait()
            except queue.Empty:
                break
        return cycle if cycle.messages else None

    def _reject(self, received: ReceivedMessage, reason: str, detail: str) -> None:
        """Count a rejected message and report it (metadata only, never the payload)."""
        self._counters.reject(reason, received.patient_id or patient_of(received.topic))
        log.debug("rejected message on %s: %s", received.topic, reason)
        if self._client is not None:
            report = deadletter_report(received, reason, detail, int(self.clock() * 1000))
            self._client.publish(deadletter_topic(reason), report, qos=1)

    # -- writer thread ----------------------------------------------------------------------------

    def _run_writer(self) -> None:
        try:
            while True:
                try:
                    cycle = self._handoff.get(timeout=PROCESS_TICK_S)
                except queue.Empty:
                    self._tick()
                    continue
                if cycle is None or not self._finish(cycle):
                    return
        except Exception:
            log.exception("ingest writer failed; unacknowledged messages stay in the broker")

    def _finish(self, cycle: Cycle) -> bool:
        """Store, process and acknowledge a cycle; False if aborted while the store was down."""
        if cycle.encoded is not None and not self._write(cycle, cycle.encoded):
            return False
        self._counters.cycle(
            messages=len(cycle.messages),
            samples=cycle.received_samples,
            duplicates=cycle.duplicates,
            seq_jumps=cycle.seq_jumps,
            stored_by_patient=cycle.samples_by_patient(),
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

    def _write(self, cycle: Cycle, encoded: EncodedWrite) -> bool:
        """Write a cycle, retrying an outage for as long as it lasts; False if aborted meanwhile."""
        outcome = write_retrying(self.store, encoded, self._counters, self._abort)
        if outcome is WriteOutcome.REFUSED:  # give up only the messages refused on their own
            stored = write_each(self.store, cycle.batches, self._counters, self._abort)
            if stored is None:
                return False
            senders = [received for received in cycle.messages if received.has_new_samples]
            for received, ok in zip(senders, stored, strict=True):  # one batch per sender
                if not ok:
                    self._reject(received, STORE_REFUSED, "the sample store refused the write")
            cycle.batches[:] = [b for b, ok in zip(cycle.batches, stored, strict=True) if ok]
        return outcome is not WriteOutcome.ABORTED

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

    def _ack(self, messages: list[ReceivedMessage]) -> None:
        client = self._client
        for received in messages:
            if received.qos > 0 and client is not None:
                client.ack(received.mid, received.qos)
        self._acked += len(messages)
