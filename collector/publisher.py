"""MQTT publisher of the gateway: from the durable outbox to the broker, losing nothing.

One network thread owns the paho client (paho-mqtt 2.x, QoS 1, fixed client id, persistent
session; MQTT 5, or 3.1.1 when the broker refuses 5: :mod:`collector.mqtt_connection`). It reads the
outbox in insertion order, publishes per-device ``SampleBatch`` messages with a bounded number in
flight, and deletes rows only when their PUBACK arrives; a PUBACK refusing the publish (MQTT 5)
leaves them in the outbox to be sent again later (:mod:`collector.publish_window`). After a
reconnect, paho re-sends the unacknowledged batches in their original order before anything new
is published; after a restart of the process the outbox still holds them and they are published
first. Delivery is therefore at-least-once: a receiver drops duplicates by ``(device_id, seq)``.

A round of the thread (settle acks, publish statuses, fill the window) that fails is logged without
payload contents and retried after a back-off (``mqtt_reconnect.round_retry_delay_s``); the
thread and the MQTT session live on, and the samples wait in the outbox.

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
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from collector.clocks import MonotonicClockS, WallClockMs, plausible_time_ms
from collector.const import (
    CONNECT_TIMEOUT_S,
    GATEWAY_STATUS_INTERVAL_S,
    LOOP_TIMEOUT_S,
    MQTT5_REPROBE_AFTER_S,
    MQTT5_REPROBE_DRAIN_S,
    PUBLISH_BATCH_MAX_SAMPLES,
    PUBLISH_INFLIGHT_MESSAGES,
    RECONNECT_MAX_DELAY_S,
    SHUTDOWN_FLUSH_TIMEOUT_S,
)
from collector.device_status import DeviceStatusBoard
from collector.errors import PublisherError, loggable
from collector.mqtt_connection import (
    ProtocolChoice,
    build_client,
    close_socket,
    connect_session,
    end_session,
    gateway_status_payload,
)
from collector.mqtt_reconnect import ConnectFailure, advice, classify_connack, reconnect_delay_s
from collector.outbox import AppendResult, DeviceGroup, Outbox, wall_clock_ms
from collector.publish_window import PublishWindow
from collector.publisher_status import PublisherStatus as PublisherStatus
from collector.round_retry import RoundRetry
from collector.session_watch import SessionWatch
from collector.sources.base import Reading
from flarewatch import topics
from flarewatch.lifecycle import StartStop
from flarewatch.mqtt import BrokerAddress
from flarewatch.payloads import LinkState
from flarewatch.settings import MqttSettings

log = logging.getLogger(__name__)


class MqttPublisher(StartStop):
    """Publishes the outbox to an MQTT broker from its own network thread; see the module doc.

    ``clock_ms`` (wall clock) only stamps status messages; ``monotonic_s`` times the status
    refreshes, the retries of failed rounds and the MQTT 5 re-probe, so an NTP step of the wall
    clock changes none of them. ``mqtt5_reprobe_after_s`` and ``connect_timeout_s`` default to
    the constants of :mod:`collector.const` (tests shorten them).
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
        mqtt5_reprobe_after_s: float = MQTT5_REPROBE_AFTER_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
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
        self._connect_timeout_s = connect_timeout_s
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
            monotonic_s=monotonic_s,
        )
        self._protocol = ProtocolChoice(settings, reprobe_after_s=mqtt5_reprobe_after_s)
        self._drain_until_s: float | None = None
        """Set while draining before a planned reconnect with MQTT 5: nothing new is published."""
        self._fall_back = self._connack_seen = self._refused_in_session = False
        self._session_up = False
        self._just_connected = False
        self._connect_failure: ConnectFailure | None = None
        self._gateway_status_at_s: float | None = None
        self._round_retry = RoundRetry()
        self._connects = 0
        self._last_failure: ConnectFailure | None = None

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

    def start(self) -> Self:
        """Start the network thread (connects in the background, retrying with backoff)."""
        if self._thread is not None:
            raise PublisherError("publisher already started")
        self._client = self._new_client()
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._thread.start()
        return self

    def _new_client(self) -> mqtt.Client:
        """A paho client speaking the current protocol version, with this publisher's callbacks."""
        client = build_client(
            self._settings,
            self.client_id,
            self.gateway_id,
            self._protocol,
            self._inflight_limit,
            self._connect_timeout_s,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

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
            refused_publishes=self._window.refusals.refused_total,
            held_topics=self._window.refusals.held,
            mqtt_version=self._protocol.name,
        )

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connack_seen = True
        failure = classify_connack(int(reason.value))
        if failure is None:
            self._session_up = self._just_connected = True
            self._drain_until_s = None  # a new session: a drain for the last one is over
            self._connects += 1
            now_s = self._monotonic_s()
            self._session_watch.opened(now_s)
            self._protocol.connected(self.address, self.client_id, now_s)
        else:
            self._connect_failure = failure
            self._fall_back = self._protocol.falls_back(int(reason.value), self.address)
            if self._fall_back:
                return
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
        self._refused_in_session = self._refused_in_session or reason.is_failure
        self._window.note_ack(mid, reason if reason.is_failure else None)

    def _run(self) -> None:
        attempt = 0
        first = True
        need_connect = True
        connect_started = 0.0
        while not self._stopping.is_set():
            client = self._client
            assert client is not None
            failure: ConnectFailure | None = None
            if need_connect:
                failure = connect_session(client, self.address, self._settings.keepalive_s, first)
                first = need_connect = self._connack_seen = False
                connect_started = time.monotonic()
            else:
                if self._network_loop(client) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    failure = self._connect_failure or ConnectFailure.LOST
                elif (
                    not self._session_up
                    and time.monotonic() - connect_started > self._connect_timeout_s
                ):
                    failure = ConnectFailure.TIMEOUT  # TCP up but no CONNACK
                if failure is not None and not self._connack_seen:  # MQTT 5 not understood?
                    self._fall_back = self._protocol.no_connack(self.address)
            if failure is not None and self._fall_back:
                self._replace_client(client)
                first = need_connect = True
            elif failure is not None:
                self._session_up = False
                explained, self._refused_in_session = self._refused_in_session, False
                self._session_watch.closed(self._monotonic_s(), explained=explained)
                careful = not explained and bool(self._session_watch.short_in_row)
                if self._protocol.retries_v5() or careful:  # MQTT 5 again after a slow CONNACK
                    self._replace_client(client)
                    first = True
                    self._window.careful = self._window.careful or careful  # see PublishWindow
                self._connect_failure = None
                need_connect = True
                attempt = 1 if explained else attempt + 1
                self._last_failure = failure
                jitter = self._rng.uniform(-1, 1)
                delay = reconnect_delay_s(
                    failure, attempt, jitter=jitter, max_s=self._max_reconnect_delay_s
                )
                log.debug("MQTT connection failed (%s); retrying in %.2f s", failure, delay)
                self._stopping.wait(delay)
            elif self._session_up and self._reprobe_ready():
                self._reconnect_with_mqtt_5(client)
                first = need_connect = True
            elif self._session_up:
                if self._session_watch.settled(self._monotonic_s()):
                    attempt = 0  # not after a short session: see collector.session_watch
                    self._window.careful = False
                self._guarded_round(client)
        assert self._client is not None
        self._shutdown(self._client)

    def _reprobe_ready(self) -> bool:
        """Whether to end a provisional 3.1.1 session now to try MQTT 5 (``ProtocolChoice``).

        Once the re-probe is due nothing new is published (:meth:`_pump` only settles acks); the
        session ends when no batch is in flight any more, or after ``MQTT5_REPROBE_DRAIN_S``.
        """
        now_s = self._monotonic_s()
        if not self._protocol.reprobe_due(now_s):
            return False
        if self._drain_until_s is None:
            self._drain_until_s = now_s + MQTT5_REPROBE_DRAIN_S
        return self._window.inflight_batches == 0 or now_s >= self._drain_until_s

    def _reconnect_with_mqtt_5(self, client: mqtt.Client) -> None:
        """End the session cleanly (no Last Will) and take a client speaking MQTT 5."""
        self._session_up = False  # before the DISCONNECT: not reported as a lost connection
        # ended by the gateway, not the broker: not a short session to back off from
        self._session_watch.closed(self._monotonic_s(), explained=True)
        end_session(client)
        self._protocol.reprobes_v5(self.address)
        self._replace_client(client)

    def _replace_client(self, old: mqtt.Client) -> None:
        """A new client (of the version chosen); what was in flight is read from the outbox anew."""
        self._fall_back = self._session_up = False
        self._connect_failure = None
        close_socket(old)
        self._client = self._new_client()
        self._window.restart()

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
        if self._drain_until_s is not None:
            return  # draining before a planned reconnect (see _reprobe_ready)
        if self._just_connected:
            self.devices.mark_all_dirty()
            self._publish_gateway_status(client, LinkState.ONLINE)
            self._just_connected = False  # only once announced: a failed round retries it
        elif (
            self._gateway_status_at_s is None
            or self._monotonic_s() - self._gateway_status_at_s >= GATEWAY_STATUS_INTERVAL_S
        ):
            self._publish_gateway_status(client, LinkState.ONLINE)
        for topic, payload in self.devices.due_messages():
            self._window.publish_other(client, topic, payload)
        self._window.fill(client)

    def _publish_gateway_status(
        self, client: mqtt.Client, state: LinkState
    ) -> mqtt.MQTTMessageInfo | None:
        # an unset wall clock leaves time_ms out (as in the Last Will) but still reports the state
        payload = gateway_status_payload(
            self.gateway_id,
            state,
            time_ms=plausible_time_ms(self._clock_ms()),
            software=self._software,
            outbox_pending=self.outbox.pending,
            devices=self.devices.device_ids(),
        )
        info = self._window.publish_other(client, self._status_topic, payload)
        self._gateway_status_at_s = self._monotonic_s()
        return info

    def _shutdown(self, client: mqtt.Client) -> None:
        """Stop: give in-flight batches a moment, announce offline, disconnect cleanly."""
        if self._session_up:
            try:  # a failure only ends the flush: the offline status and disconnect must follow
                self._window.flush(client, self._flush_timeout_s, lambda: self._session_up)
            except Exception as exc:  # noqa: BLE001 - see the comment on the try
                log.error(
                    "flushing before stop failed (%s); samples wait in the outbox", loggable(exc)
                )
            self._window.careful = False  # the offline statuses must go out
            for topic, payload in self.devices.offline_messages("gateway stopped"):
                self._window.publish_other(client, topic, payload)
            info = self._publish_gateway_status(client, LinkState.OFFLINE)
            deadline = time.monotonic() + 1.0
            while (
                self._session_up
                and info is not None
                and not info.is_published()
                and time.monotonic() < deadline
            ):
                client.loop(LOOP_TIMEOUT_S)
            try:
                self._window.settle()
            except Exception as exc:  # noqa: BLE001 - the clean disconnect must still follow
                log.error("acknowledged samples stay in the outbox (%s)", loggable(exc))
            end_session(client)
        close_socket(client)
        self._session_up = False
