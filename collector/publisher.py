"""MQTT publisher of the gateway: from the durable outbox to the broker, losing nothing.

One network thread owns the paho client (paho-mqtt 2.x, MQTT 3.1.1, QoS 1, fixed client id,
persistent session). It reads the outbox in insertion order, publishes per-device ``SampleBatch``
messages with a bounded number in flight, and deletes rows only when their PUBACK arrives. After a
reconnect, paho re-sends the unacknowledged batches in their original order before anything new
is published; after a restart of the process the outbox still holds them and they are published
first. Delivery is therefore at-least-once: a receiver drops duplicates by ``(device_id, seq)``.

A round of the thread (settle acks, publish statuses, fill the window) that fails for any reason
is logged without payload contents and retried after a back-off
(:func:`collector.mqtt_reconnect.round_retry_delay_s`); the thread and the MQTT session live on,
and the samples wait in the outbox.

Sources call :meth:`MqttPublisher.submit` (synchronous, thread-safe): it returns once the readings
are committed to the outbox, which takes well under a millisecond for a handful of readings. From
asyncio code at high rates, call it through ``await asyncio.to_thread(publisher.submit, ...)``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from collector.clocks import MonotonicClockS, WallClockMs, plausible_time_ms
from collector.const import (
    CONNECT_TIMEOUT_S,
    GATEWAY_STATUS_INTERVAL_S,
    LOOP_TIMEOUT_S,
    PUBLISH_BATCH_MAX_SAMPLES,
    PUBLISH_INFLIGHT_MESSAGES,
    RECONNECT_MAX_DELAY_S,
    SHUTDOWN_FLUSH_TIMEOUT_S,
)
from collector.device_status import DeviceStatusBoard
from collector.errors import PublisherError, loggable
from collector.mqtt_connection import build_client, connect_session, gateway_status_payload
from collector.mqtt_reconnect import ConnectFailure, advice, classify_connack, reconnect_delay_s
from collector.outbox import AppendResult, DeviceGroup, Outbox, OutboxStats, wall_clock_ms
from collector.publish_window import PublishWindow
from collector.round_retry import RoundRetry
from collector.session_watch import SessionWatch
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
    failed_rounds: int
    """Publishing rounds that raised (each logged and retried after a back-off)."""


class MqttPublisher(StartStop):
    """Publishes the outbox to an MQTT broker from its own network thread; see the module doc.

    ``clock_ms`` (wall clock) only stamps status messages; ``monotonic_s`` times the status
    refreshes and the retries of failed rounds, so an NTP step of the wall clock changes neither.
    """

    def __init__(
        self,
        settings: MqttSettings,
        outbox: Outbox,
        *,
        gateway_id: str,
        software: str | None = None,
        clock_ms: WallClockMs = wall_clock_ms,
        monotonic_s: MonotonicClockS = time.monotonic,
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
        self._monotonic_s = monotonic_s
        self._max_reconnect_delay_s = max_reconnect_delay_s
        self._inflight_limit = inflight_messages
        self._rng = random.Random(jitter_seed)
        self._session_watch = SessionWatch(self.client_id)
        self._status_topic = topics.gateway_status_topic(gateway_id)
        self.devices = DeviceStatusBoard(gateway_id, clock_ms, monotonic_s)
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._flush_timeout_s = SHUTDOWN_FLUSH_TIMEOUT_S
        self._sent = threading.Condition()
        # state owned by the network thread
        self._window = PublishWindow(
            outbox,
            gateway_id,
            max_messages=inflight_messages,
            batch_max_samples=batch_max_samples,
            sent=self._sent,
        )
        self._session_up = False
        self._just_connected = False
        self._connect_failure: ConnectFailure | None = None
        self._gateway_status_at_s: float | None = None
        self._round_retry = RoundRetry()
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
            published_batches=self._window.published_batches,
            acked_samples=self._window.acked_samples,
            inflight_batches=self._window.inflight_batches,
            connects=self._connects,
            last_failure=self._last_failure,
            failed_rounds=self._round_retry.failed_total,
        )

    # --- paho callbacks (run on the network thread, inside client.loop) --------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        failure = classify_connack(int(reason.value))
        if failure is None:
            self._session_up = self._just_connected = True
            self._connects += 1
            self._session_watch.opened(self._monotonic_s())
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
        self._window.note_ack(mid)
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
                failure = connect_session(client, self.address, self._settings.keepalive_s, first)
                first = need_connect = False
                connect_started = time.monotonic()
            else:
                if self._network_loop(client) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    failure = self._connect_failure or ConnectFailure.LOST
                elif (
                    not self._session_up and time.monotonic() - connect_started > CONNECT_TIMEOUT_S
                ):
                    failure = ConnectFailure.TIMEOUT  # TCP up but no CONNACK
            if failure is not None:
                self._session_up = False
                self._session_watch.closed(self._monotonic_s())
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
                if self._session_watch.settled(self._monotonic_s()):
                    attempt = 0  # not after a short session: see collector.session_watch
                self._guarded_round(client)
        self._shutdown(client)

    def _network_loop(self, client: mqtt.Client) -> MQTTErrorCode:
        """One paho I/O pass; an exception from paho or a callback counts as a lost link."""
        try:
            return client.loop(LOOP_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - reconnecting is the remedy, not a dead thread
            log.error("MQTT network loop failed (%s); reconnecting", loggable(exc))
            return MQTTErrorCode.MQTT_ERR_CONN_LOST

    def _guarded_round(self, client: mqtt.Client) -> None:
        """Run a round unless backing off; a failure is logged and retried, never fatal."""
        now_s = self._monotonic_s()
        if not self._round_retry.ready(now_s):
            return
        try:
            self._pump(client)
        except Exception as exc:  # noqa: BLE001 - one bad round must not end the network thread
            delay_s = self._round_retry.failed(now_s)
            log.error(
                "publishing round failed (%s); retrying in %.0f s, samples wait in the outbox",
                loggable(exc),
                delay_s,
            )
        else:
            self._round_retry.succeeded()

    def _pump(self, client: mqtt.Client) -> None:
        """One round after network I/O: settle acks, publish status and the next batches."""
        self._window.settle()
        if self._just_connected:
            self.devices.mark_all_dirty()
            self._publish_gateway_status(client, LinkState.ONLINE)
            self._just_connected = False  # only once announced: a failed round retries it
        elif self._gateway_status_due():
            self._publish_gateway_status(client, LinkState.ONLINE)
        for topic, payload in self.devices.due_messages():
            client.publish(topic, payload, qos=1, retain=True)
        self._window.fill(client)

    def _gateway_status_due(self) -> bool:
        last_s = self._gateway_status_at_s
        return last_s is None or self._monotonic_s() - last_s >= GATEWAY_STATUS_INTERVAL_S

    def _publish_gateway_status(
        self, client: mqtt.Client, state: LinkState
    ) -> mqtt.MQTTMessageInfo:
        # an unset wall clock leaves time_ms out (as in the Last Will) but still reports the state
        payload = gateway_status_payload(
            self.gateway_id,
            state,
            time_ms=plausible_time_ms(self._clock_ms()),
            software=self._software,
            outbox_pending=self.outbox.pending,
            devices=self.devices.device_ids(),
        )
        info = client.publish(self._status_topic, payload, qos=1, retain=True)
        self._gateway_status_at_s = self._monotonic_s()
        return info

    def _shutdown(self, client: mqtt.Client) -> None:
        """Stop: give in-flight batches a moment, announce offline, disconnect cleanly."""
        if self._session_up:
            self._flush_before_stop(client)
            for topic, payload in self.devices.offline_messages("gateway stopped"):
                client.publish(topic, payload, qos=1, retain=True)
            info = self._publish_gateway_status(client, LinkState.OFFLINE)
            deadline = time.monotonic() + 1.0
            while self._session_up and not info.is_published() and time.monotonic() < deadline:
                client.loop(LOOP_TIMEOUT_S)
            try:
                self._window.settle()
            except Exception as exc:  # noqa: BLE001 - the clean disconnect must still follow
                log.error("acknowledged samples stay in the outbox (%s)", loggable(exc))
            client.disconnect()
            client.loop(LOOP_TIMEOUT_S)
        sock = client.socket()
        if sock is not None:  # still connecting (no CONNACK yet) or half-closed
            sock.close()
        self._session_up = False

    def _flush_before_stop(self, client: mqtt.Client) -> None:
        """Publish and settle what the flush timeout allows; a failure only ends the flush."""
        deadline = time.monotonic() + self._flush_timeout_s
        try:
            while (
                self._session_up
                and time.monotonic() < deadline
                and (self._window.inflight_batches or self.outbox.pending)
            ):
                client.loop(LOOP_TIMEOUT_S)
                self._window.settle()
                self._window.fill(client)
        except Exception as exc:  # noqa: BLE001 - the offline status and disconnect must follow
            log.error("flushing before stop failed (%s); samples wait in the outbox", loggable(exc))
