"""Alerts on MQTT: events published on ``flarewatch/v1/{patient}/alerts`` and acks received.

Sirens and home automation subscribe to the alerts topic. Every event is published; the one
retained (what a siren that reconnects reads first) is always the latest event of the patient's
open alert that most needs attention (:func:`~service.alerts.events.most_urgent`), and a
``resolved`` or ``cancelled`` event only once none is open: an event that is not that state goes
out unretained, followed by the state again, retained, if the broker does not hold it already.

An acknowledgement arrives on ``flarewatch/v1/{patient}/alerts/ack`` as JSON:
``{"token": "..."}`` (the token of a link) or ``{"alert_id": 12, "by": "hall button"}``.
The second form trusts whoever may publish there, so the broker's ACL lets only a device granted
that patient publish there (``admin broker-auth --ack-device``); alert readers cannot.
Payloads carry no vitals.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from typing import Any, Final

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from flarewatch.errors import ContractError
from flarewatch.mqtt import make_client
from flarewatch.settings import MqttSettings, ServiceSettings
from flarewatch.topics import ALERT_ACKS_SUBSCRIPTION, TopicKind, alerts_topic, parse_topic
from service.alerts.errors import AlertingError
from service.alerts.events import AlertEvent, event_of, most_urgent
from service.alerts.manager import AlertManager
from service.alerts.tokens import TokenAction
from service.const import MAX_ROW_NUMBER
from service.db.models import OPEN_ALERT_STATES, Alert
from service.health import Check
from service.mqtt_link import BrokerLinkLog

log = logging.getLogger(__name__)

MAX_ACK_BYTES: Final = 2048
"""An acknowledgement is a token or an id: anything larger is rejected unread."""


class AckMessage(BaseModel):
    """An acknowledgement received over MQTT."""

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(None, max_length=500)
    alert_id: int | None = Field(None, ge=1, le=MAX_ROW_NUMBER)
    """Bounded like the database's ids: a larger one made the database driver raise, which
    stopped the bridge's MQTT thread (no more acks, no more alert events)."""
    by: str = Field("mqtt", max_length=100)


def event_payload(event: AlertEvent) -> bytes:
    """The JSON published for one alert event (times in epoch ms, like the wire contract)."""
    return json.dumps(
        {
            "v": 1,
            "event": event.event,
            "alert_id": event.alert_id,
            "patient_id": event.patient_id,
            "kind": event.kind,
            "severity": event.severity,
            "state": event.state,
            "since_ms": int(event.since_s * 1000),
            "time_ms": int(event.time_s * 1000),
            "episode_id": event.episode_id,
            "acked_by": event.acked_by,
        },
        separators=(",", ":"),
    ).encode()


class MqttAlertBridge:
    """Publishes alert events and turns MQTT acknowledgements into acknowledgements.

    ``client_id`` comes from ``service.instance`` (:meth:`ServiceSettings.mqtt_client_id`; the
    default instance's if not given); ``persistent=False`` (the demo) leaves no session behind
    on the broker.
    """

    def __init__(
        self,
        settings: MqttSettings,
        manager: AlertManager,
        client_id: str | None = None,
        *,
        persistent: bool = True,
    ) -> None:
        client_id = client_id or ServiceSettings().mqtt_client_id("alerts")
        self.manager = manager
        self.rejected: Counter[str] = Counter()
        self.acked = 0
        self._connected = threading.Event()
        self._up = False
        """Connected now (``_connected`` stays set once the first connection is made)."""
        self._client, self._address = make_client(settings, client_id, persistent=persistent)
        self._link = BrokerLinkLog("alerts", self._address, client_id, log)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._keepalive = settings.keepalive_s
        self._publishing = threading.Lock()
        """One event at a time: the state read last is the state retained last."""
        self._latest: dict[int, AlertEvent] = {}
        """The latest event of every open alert (rebuilt from the database after a restart)."""
        self._retained: dict[str, bytes] = {}
        """What this bridge last published retained, per patient."""

    def start(self) -> None:
        """Connect in the background (paho reconnects by itself) and listen for acks."""
        self._client.connect_async(
            self._address.host, self._address.port, keepalive=self._keepalive
        )
        self._client.loop_start()
        self.manager.listeners.append(self.publish)

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Wait until connected and subscribed."""
        return self._connected.wait(timeout_s)

    def health(self) -> Check:
        """Whether the alert events and MQTT acknowledgements have their broker link."""
        if self._up:
            return Check("broker (alerts)", True, "connected")
        return Check("broker (alerts)", False, "not connected to the MQTT broker")

    def stop(self) -> None:
        """Stop publishing and disconnect."""
        if self.publish in self.manager.listeners:
            self.manager.listeners.remove(self.publish)
        self._link.closing()
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, event: AlertEvent) -> None:
        """Publish one event (QoS 1, queued while reconnecting); keep the retained one the state.

        The retained message on the patient's topic is its current state (see the module).
        """
        topic = alerts_topic(event.patient_id)
        with self._publishing:
            if event.state in OPEN_ALERT_STATES:
                self._latest[event.alert_id] = event
            else:
                self._latest.pop(event.alert_id, None)
            state = self._current_state(event.patient_id) or event
            payload, state_payload = event_payload(event), event_payload(state)
            if state_payload != payload:
                self._client.publish(topic, payload, qos=1, retain=False)
                if self._retained.get(event.patient_id) == state_payload:
                    return
            self._client.publish(topic, state_payload, qos=1, retain=True)
            self._retained[event.patient_id] = state_payload

    def forget(self, patient_id: str) -> None:
        """Clear the patient's retained alert state from the broker (their erasure).

        An empty retained message deletes the retained one, so a siren subscribing later reads
        nothing about them.
        """
        with self._publishing:
            self._latest = {
                alert_id: event
                for alert_id, event in self._latest.items()
                if event.patient_id != patient_id
            }
            self._retained.pop(patient_id, None)
            self._client.publish(alerts_topic(patient_id), b"", qos=1, retain=True)

    def _current_state(self, patient_id: str) -> AlertEvent | None:
        """The latest event of the patient's most urgent open alert, as the database has them.

        An open alert this bridge has not seen change (it started after) is described as it is
        now. If the database cannot be read, the events this bridge saw are used instead.
        """
        try:
            with self.manager.db.session() as session:
                rows = session.scalars(
                    select(Alert).where(
                        Alert.patient_id == patient_id, Alert.state.in_(OPEN_ALERT_STATES)
                    )
                ).all()
                now_s = self.manager.clock()
                described = {row.id: self._described(row, now_s) for row in rows}
        except Exception as exc:  # noqa: BLE001 - a database error must not lose the event
            log.error(
                "alert bridge: open alerts of a patient unreadable (%s); retained state from "
                "the events seen",
                type(exc).__name__,
            )
            return most_urgent(e for e in self._latest.values() if e.patient_id == patient_id)
        for alert_id in [i for i, e in self._latest.items() if e.patient_id == patient_id]:
            if alert_id not in described:  # closed by another process: not open any more
                del self._latest[alert_id]
        self._latest.update(described)
        return most_urgent(described.values())

    def _described(self, row: Alert, now_s: float) -> AlertEvent:
        """The latest event seen of an open alert, or one describing it now if none matches."""
        seen = self._latest.get(row.id)
        if seen is not None and (seen.state, seen.severity) == (row.state, row.severity):
            return seen
        return event_of(row, row.state, now_s)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._link.refused(reason)
            return
        self._link.connected(flags.session_present)
        client.subscribe(ALERT_ACKS_SUBSCRIPTION, qos=1)
        self._up = True
        self._connected.set()

    def _on_connect_fail(self, _client: mqtt.Client, _u: Any) -> None:
        self._link.connect_failed()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._up = False
        self._link.lost(reason)

    def _on_message(self, _client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            parsed = parse_topic(message.topic)
        except ContractError:
            parsed = None
        if parsed is None or parsed.kind is not TopicKind.ALERT_ACK or parsed.patient_id is None:
            self.rejected["bad_topic"] += 1
            return
        patient_id = parsed.patient_id
        if len(message.payload) > MAX_ACK_BYTES:
            self.rejected["too_large"] += 1
            return
        try:
            ack = AckMessage.model_validate_json(message.payload)
        except ValidationError:
            self.rejected["invalid"] += 1
            log.warning("alert bridge: rejected malformed ack on %s", message.topic)
            return
        try:
            self._acknowledge(patient_id, ack)
        except AlertingError as exc:
            self.rejected[type(exc).__name__] += 1
            log.warning("alert bridge: ack refused: %s", exc)
        except Exception as exc:  # noqa: BLE001 - raised here, it would stop paho's network thread
            # (a database error, say): the bridge must keep publishing alerts and taking acks
            self.rejected["error"] += 1
            log.error(
                "alert bridge: ack on %s not applied (%s); ask for it again",
                message.topic,
                type(exc).__name__,
            )

    def _acknowledge(self, patient_id: str, ack: AckMessage) -> None:
        if ack.token is not None:
            alert = self.manager.inspect(ack.token, TokenAction.ACK)
            if alert.patient_id != patient_id:
                raise AlertingError("ack token belongs to another patient's alert")
            self.manager.redeem(ack.token, TokenAction.ACK, via="mqtt")
        elif ack.alert_id is not None:
            with self.manager.db.session() as session:
                alert_row = session.get(Alert, ack.alert_id)
                owner = alert_row.patient_id if alert_row is not None else None
            if owner != patient_id:
                raise AlertingError(f"alert {ack.alert_id} is not an alert of this patient")
            self.manager.acknowledge(ack.alert_id, by=ack.by, via="mqtt")
        else:
            raise AlertingError("an MQTT ack needs a token or an alert_id")
        self.acked += 1
