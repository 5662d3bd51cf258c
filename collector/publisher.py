"""MQTT publisher of the gateway: from the durable outbox to the broker, losing nothing.

One network thread owns the paho client (paho-mqtt 2.x, MQTT 3.1.1, QoS 1, fixed client id,
persistent session). It reads the outbox in insertion order, publishes per-device ``SampleBatch``
messages with a bounded number in flight, and deletes rows only when their PUBACK arrives. After a
reconnect, paho re-sends the unacknowledged batches in their original order before anything new
is published; after a restart of the process the outbox still holds them and they are published
first. Delivery is therefore at-least-once: a receiver drops duplicates by ``(device_id, seq)``.

Sources call :meth:`MqttPublisher.submit` (synchronous, thread-safe): it returns once the readings
are committed to the outbox, which takes well under a millisecond for a handful of readings. From
asyncio code at high rates, call it through ``await asyncio.to_thread(publisher.submit, ...)``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from collector.batching import BatchMessage, batches_from_rows
from collector.const import (
    CONNECT_TIMEOUT_S,
    GATEWAY_STATUS_INTERVAL_S,
    LOOP_TIMEOUT_S,
    PUBLISH_BATCH_MAX_SAMPLES,
    PUBLISH_INFLIGHT_MESSAGES,
    PUBLISH_INFLIGHT_SAMPLES,
    PUBLISH_READ_ROWS,
    RECONNECT_MAX_DELAY_S,
    SHUTDOWN_FLUSH_TIMEOUT_S,
)
from collector.device_status import DeviceStatusBoard
from collector.errors import OutboxError, PublisherError
from collector.mqtt_connection import build_client, gateway_status_payload
from collector.mqtt_reconnect import (
    ConnectFailure,
    advice,
    classify_connack,
    classify_exception,
    reconnect_delay_s,
)
from collector.outbox import (
    AppendResult,
    DeviceGroup,
    Outbox,
    OutboxStats,
    wall_clock_ms,
)
from collector.sources.base import Reading
from flarewatch import topics
from flarewatch.lifecycle import StartStop
from flarewatch.mqtt import BrokerAddress
from flarewatch.payloads import LinkState
from flarewatch.settings import MqttSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PublisherStatus:
    """Snapshot of the publisher for progress displays and tests."""

    connected: bool
    outbox: OutboxStats
    published_batches: int
    acked_samples: int
    inflight_batches: int
    connects: int
    last_failure: ConnectFailure | None


class MqttPublisher(StartStop):
    """Publishes the outbox to an MQTT broker from its own network thread; see the module doc."""

    def __init__(
        self,
        settings: MqttSettings,
        outbox: Outbox,
        *,
        gateway_id: str,
        software: str | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        max_reconnect_delay_s: float = RECONNECT_MAX_DELAY_S,
        inflight_messages: int = PUBLISH_INFLIGHT_MESSAGES,
        batch_max_samples: int = PUBLISH_BATCH_MAX_SAMPLES,
        jitter_seed: int | None = None,
    ) -> None:
        self.address = BrokerAddress.from_settings(settings)
        self.gateway_id = gateway_id
        self.outbox = outbox
        self.client_id = settings.client_id or f"flarewatch-gateway-{gateway_id}"
        self._settings = settings
        self._software = software
        self._clock_ms = clock_ms
        self._max_reconnect_delay_s = max_reconnect_delay_s
        self._inflight_limit = inflight_messages
        self._batch_max_samples = batch_max_samples
        self._rng = random.Random(jitter_seed)
        self._status_topic = topics.gateway_status_topic(gateway_id)
        self.devices = DeviceStatusBoard(gateway_id, clock_ms)
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._flush_timeout_s = SHUTDOWN_FLUSH_TIMEOUT_S
        self._sent = threading.Condition()
        # state owned by the network thread
        self._session_up = False
        self._just_connected = False
        self._connect_failure: ConnectFailure | None = None
        self._cursor = 0
        self._ready: deque[BatchMessage] = deque()
        self._inflight: dict[int, tuple[int, ...]] = {}
        self._inflight_samples = 0
        self._acked_mids: list[int] = []
        self._last_gateway_status_ms = 0
        # counters
        self._published_batches = 0
        self._acked_samples = 0
        self._connects = 0
        self._last_failure: ConnectFailure | None = None

    # --- API for sources -------------------------------------------------------------------------

    def submit(self, patient_id: str, device_id: str, readings: Sequence[Reading]) -> int:
        """Store readings of one device durably; returns how many were accepted (thread-safe).

        Blocks for one SQLite transaction. Invalid readings are counted and logged, not raised;
        a bad patient/device id raises :class:`flarewatch.errors.ContractError`.
        """
        return self.submit_many([(patient_id, device_id, readings)]).accepted

    def submit_many(self, groups: Iterable[DeviceGroup]) -> AppendResult:
        """Store readings of several devices in one transaction (simulators, replays)."""
        groups = list(groups)
        for patient_id, device_id, _ in groups:
            topics.samples_topic(patient_id, device_id)  # raises ContractError on a bad id
        result = self.outbox.append_many(groups)
        for patient_id, device_id, readings in groups:
            cursor = self.outbox.device(device_id)
            if readings and cursor is not None:
                self.devices.note_readings(patient_id, device_id, readings, cursor.next_seq - 1)
        return result

    def update_device(
        self,
        patient_id: str,
        device_id: str,
        state: LinkState,
        *,
        reason: str | None = None,
        battery_percent: int | None = None,
        contact_detected: bool | None = None,
    ) -> None:
        """Report a device's link state (BLE connect/disconnect); published retained at once."""
        self.devices.set_state(
            patient_id,
            device_id,
            state,
            reason=reason,
            battery_percent=battery_percent,
            contact_detected=contact_detected,
        )

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the network thread (connects in the background, retrying with backoff)."""
        if self._thread is not None:
            raise PublisherError("publisher already started")
        self._client, _ = build_client(
            self._settings, self.client_id, self._status_topic, self.gateway_id
        )
        self._client.max_inflight_messages_set(self._inflight_limit + 16)
        self._client.max_queued_messages_set(0)
        self._client.connect_timeout = CONNECT_TIMEOUT_S
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self, flush_timeout_s: float = SHUTDOWN_FLUSH_TIMEOUT_S) -> None:
        """Flush what can be flushed, publish the offline gateway status, disconnect."""
        if self._thread is None:
            return
        self._flush_timeout_s = flush_timeout_s
        self._stopping.set()
        self._thread.join()
        self._thread = None

    def wait_until_sent(self, timeout_s: float) -> bool:
        """Block until the outbox is empty (every sample acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._sent:
            while self.outbox.pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._sent.wait(min(remaining, 0.1))
        return True

    def status(self) -> PublisherStatus:
        """Counters and connection state (read from any thread)."""
        return PublisherStatus(
            connected=self._session_up,
            outbox=self.outbox.stats(),
            published_batches=self._published_batches,
            acked_samples=self._acked_samples,
            inflight_batches=len(self._inflight),
            connects=self._connects,
            last_failure=self._last_failure,
        )

    # --- paho callbacks (run on the network thread, inside client.loop) --------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        failure = classify_connack(int(reason.value))
        if failure is None:
            self._session_up = self._just_connected = True
            self._connects += 1
            log.info("connected to MQTT broker %s as %s", self.address, self.client_id)
        else:
            self._connect_failure = failure
            log.error(
                "broker %s refused the connection (%s): %s", self.address, reason, advice(failure)
            )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._session_up and not self._stopping.is_set():
            log.warning(
                "lost the connection to %s (%s); samples wait in the outbox", self.address, reason
            )
        self._session_up = False

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        self._acked_mids.append(mid)
        if reason.is_failure:
            log.error("broker refused a publish (%s); the samples stay in the outbox", reason)

    # --- network thread --------------------------------------------------------------------------

    def _run(self) -> None:
        client = self._client
        assert client is not None
        attempt = 0
        first = True
        need_connect = True
        connect_started = 0.0
        while not self._stopping.is_set():
            failure: ConnectFailure | None = None
            if need_connect:
                failure = self._connect(client, first)
                first = need_connect = False
                connect_started = time.monotonic()
            else:
                rc = client.loop(LOOP_TIMEOUT_S)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    failure = self._connect_failure or ConnectFailure.LOST
                elif (
                    not self._session_up and time.monotonic() - connect_started > CONNECT_TIMEOUT_S
                ):
                    failure = ConnectFailure.TIMEOUT  # TCP up but no CONNACK
            if failure is not None:
                self._session_up = False
                self._connect_failure = None
                need_connect = True
                attempt += 1
                self._last_failure = failure
                delay = reconnect_delay_s(
                    failure,
                    attempt,
                    jitter=self._rng.uniform(-1, 1),
                    max_s=self._max_reconnect_delay_s,
                )
                log.debug("MQTT connection failed (%s); retrying in %.2f s", failure, delay)
                self._stopping.wait(delay)
            elif self._session_up:
                attempt = 0
                self._pump(client)
        self._shutdown(client)

    def _connect(self, client: mqtt.Client, first: bool) -> ConnectFailure | None:
        try:
            if first:
                client.connect(self.address.host, self.address.port, self._settings.keepalive_s)
            else:
                client.reconnect()
        except (OSError, ValueError) as exc:
            failure = classify_exception(exc)
            log.log(
                logging.ERROR if advice(failure) else logging.DEBUG,
                "cannot reach MQTT broker %s (%s: %s) %s",
                self.address,
                failure,
                type(exc).__name__,
                advice(failure),
            )
            return failure
        return None

    def _pump(self, client: mqtt.Client) -> None:
        """One round after network I/O: settle acks, publish status and the next batches."""
        try:
            self._settle_acks()
            if self._just_connected:
                self._just_connected = False
                self.devices.mark_all_dirty()
                self._publish_gateway_status(client, LinkState.ONLINE)
            elif (
                self._clock_ms() - self._last_gateway_status_ms >= GATEWAY_STATUS_INTERVAL_S * 1000
            ):
                self._publish_gateway_status(client, LinkState.ONLINE)
            for topic, payload in self.devices.due_messages():
                client.publish(topic, payload, qos=1, retain=True)
            self._fill_window(client)
        except OutboxError as exc:
            log.error("outbox error while publishing: %s", exc)
            self._stopping.wait(1.0)

    def _settle_acks(self) -> None:
        if not self._acked_mids:
            return
        acked_rows: list[int] = []
        for mid in self._acked_mids:
            rows = self._inflight.pop(mid, None)
            if rows:
                acked_rows.extend(rows)
                self._inflight_samples -= len(rows)
        self._acked_mids.clear()
        if acked_rows:
            self.outbox.ack(acked_rows)
            self._acked_samples += len(acked_rows)
            with self._sent:
                self._sent.notify_all()

    def _fill_window(self, client: mqtt.Client) -> None:
        while (
            len(self._inflight) < self._inflight_limit
            and self._inflight_samples < PUBLISH_INFLIGHT_SAMPLES
        ):
            if not self._ready:
                rows = self.outbox.read(self._cursor, PUBLISH_READ_ROWS)
                if not rows:
                    return
                self._cursor = rows[-1].row_id
                self._ready.extend(
                    batches_from_rows(rows, self.gateway_id, self._batch_max_samples)
                )
            batch = self._ready.popleft()
            info = client.publish(batch.topic, batch.payload, qos=1)
            self._inflight[info.mid] = batch.row_ids
            self._inflight_samples += len(batch.row_ids)
            self._published_batches += 1

    def _publish_gateway_status(
        self, client: mqtt.Client, state: LinkState
    ) -> mqtt.MQTTMessageInfo:
        self._last_gateway_status_ms = self._clock_ms()
        payload = gateway_status_payload(
            self.gateway_id,
            state,
            time_ms=self._last_gateway_status_ms,
            software=self._software,
            outbox_pending=self.outbox.pending,
            devices=self.devices.device_ids(),
        )
        return client.publish(self._status_topic, payload, qos=1, retain=True)

    def _shutdown(self, client: mqtt.Client) -> None:
        """Stop: give in-flight batches a moment, announce offline, disconnect cleanly."""
        if self._session_up:
            deadline = time.monotonic() + self._flush_timeout_s
            while (
                self._session_up
                and time.monotonic() < deadline
                and (self._inflight or self.outbox.pending)
            ):
                client.loop(LOOP_TIMEOUT_S)
                self._settle_acks()
                self._fill_window(client)
            for topic, payload in self.devices.offline_messages("gateway stopped"):
                client.publish(topic, payload, qos=1, retain=True)
            info = self._publish_gateway_status(client, LinkState.OFFLINE)
            deadline = time.monotonic() + 1.0
            while self._session_up and not info.is_published() and time.monotonic() < deadline:
                client.loop(LOOP_TIMEOUT_S)
            self._settle_acks()
            client.disconnect()
            client.loop(LOOP_TIMEOUT_S)
        sock = client.socket()
        if sock is not None:  # still connecting (no CONNACK yet) or half-closed
            sock.close()
        self._session_up = False
