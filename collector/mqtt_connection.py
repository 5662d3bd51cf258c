"""The gateway's paho client: the shared client of :mod:`flarewatch.mqtt` plus its Last Will.

The gateway speaks MQTT 5 unless told otherwise (``mqtt.protocol``): only then does the broker say
in the PUBACK that it denied a publish (Mosquitto 2.x: reason 0x87), where under 3.1.1 it
acknowledges it all the same and the samples would be deleted unsent (Mosquitto issue #547). The
session stays persistent as under 3.1.1: clean start off and a long Session Expiry Interval.
"""

from __future__ import annotations

import logging
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.const import (
    CONNECT_TIMEOUT_S,
    LOOP_TIMEOUT_S,
    MQTT5_REPROBE_AFTER_S,
    PUBLISH_INFLIGHT_MESSAGES,
    SESSION_EXPIRY_S,
)
from collector.mqtt_reconnect import ConnectFailure, advice, classify_exception
from flarewatch import topics
from flarewatch.mqtt import BrokerAddress, make_client
from flarewatch.payloads import GatewayStatus, LinkState, encode
from flarewatch.settings import MqttSettings

log = logging.getLogger(__name__)


def gateway_status_payload(
    gateway_id: str,
    state: LinkState,
    *,
    time_ms: int | None = None,
    software: str | None = None,
    outbox_pending: int | None = None,
    devices: tuple[str, ...] = (),
) -> bytes:
    """Encode a retained ``GatewayStatus`` (the ``offline`` form without time is the Last Will)."""
    return encode(
        GatewayStatus(
            gateway_id=gateway_id,
            state=state,
            time_ms=time_ms,
            software=software,
            outbox_pending=outbox_pending,
            devices=devices,
        )
    )


MQTT_VERSION_NAMES: Final = {MQTTProtocolVersion.MQTTv5: "5", MQTTProtocolVersion.MQTTv311: "3.1.1"}
"""How logs, docs and ``mqtt.protocol`` name the versions the gateway speaks."""

_CONNACK_UNSUPPORTED_PROTOCOL: Final = 132
"""CONNACK reason of a broker that does not speak the version asked for, as paho reports it (also
for the 3.1.1 return code 1 that amqtt sends to an MQTT 5 client)."""


def first_protocol(settings: MqttSettings) -> MQTTProtocolVersion:
    """The version to try first: 3.1.1 only when ``mqtt.protocol`` forces it, else MQTT 5."""
    return (
        MQTTProtocolVersion.MQTTv311 if settings.protocol == "3.1.1" else MQTTProtocolVersion.MQTTv5
    )


def build_client(
    settings: MqttSettings,
    client_id: str,
    gateway_id: str,
    protocol: ProtocolChoice,
    inflight_messages: int = PUBLISH_INFLIGHT_MESSAGES,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> mqtt.Client:
    """The shared paho client (:func:`flarewatch.mqtt.make_client`) with the offline Last Will.

    It speaks ``protocol.current``, allows ``inflight_messages`` batches in flight plus room for
    statuses, queues nothing more (the outbox is the queue) and gives up connecting after
    ``connect_timeout_s``.
    """
    client, _ = make_client(settings, client_id, protocol=protocol.current)
    client.will_set(
        topics.gateway_status_topic(gateway_id),
        gateway_status_payload(gateway_id, LinkState.OFFLINE),
        qos=1,
        retain=True,
    )
    client.max_inflight_messages_set(inflight_messages + 16)  # + statuses
    client.max_queued_messages_set(0)
    client.connect_timeout = connect_timeout_s
    return client


def connect_session(
    client: mqtt.Client, address: BrokerAddress, keepalive_s: int, first: bool
) -> ConnectFailure | None:
    """Start connecting (``first``) or reconnecting; the failure kind if the socket refused.

    The CONNACK arrives later through ``on_connect``. Failures are logged with advice when a
    person must act, quietly otherwise (the caller retries with backoff).
    """
    try:
        if first and client.protocol == MQTTProtocolVersion.MQTTv5:
            session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            session.SessionExpiryInterval = SESSION_EXPIRY_S
            # clean_start=False on every connect, not paho's default of the first only: a
            # restarted gateway resumes its session as under 3.1.1 with clean_session=False
            client.connect(
                address.host, address.port, keepalive_s, clean_start=False, properties=session
            )
        elif first:
            client.connect(address.host, address.port, keepalive_s)
        else:
            client.reconnect()
    except (OSError, ValueError) as exc:
        failure = classify_exception(exc)
        log.log(
            logging.ERROR if advice(failure) else logging.DEBUG,
            "cannot reach MQTT broker %s (%s: %s) %s",
            address,
            failure,
            type(exc).__name__,
            advice(failure),
        )
        return failure
    return None


def end_session(client: mqtt.Client) -> None:
    """Disconnect cleanly: a DISCONNECT tells the broker not to publish the Last Will (offline)."""
    client.disconnect()
    client.loop(LOOP_TIMEOUT_S)
    close_socket(client)


def close_socket(client: mqtt.Client) -> None:
    """Close a client's socket still open while connecting (no CONNACK yet) or half-closed."""
    sock = client.socket()
    if sock is not None:
        sock.close()


class ProtocolChoice:
    """The MQTT version the gateway speaks: 5 first, 3.1.1 once a broker shows it lacks 5.

    A broker that refuses MQTT 5 in its CONNACK lacks it for good. One that leaves an MQTT 5
    CONNECT unanswered may lack it too (amqtt), or may just be slow or starting: the fallback to
    3.1.1 is then provisional. If 3.1.1 is unanswered as well, the broker was the cause and MQTT 5
    is tried again (so it is when 3.1.1 finds the port closed); once a 3.1.1 session ends, or has
    lasted ``reprobe_after_s`` (:meth:`reprobe_due`: the publisher then reconnects on purpose),
    MQTT 5 is tried once more, and only a second unanswered MQTT 5 CONNECT after 3.1.1 was answered
    makes 3.1.1 final. (Before, one slow CONNACK made the gateway speak 3.1.1 until it restarted or
    the session dropped, under which a publish the broker denies is acknowledged as if delivered
    and its samples are deleted.) With ``mqtt.protocol`` set to ``"5"`` or ``"3.1.1"`` the version
    is fixed and a refusal is an ordinary connection failure. Which version is in use is logged
    when it changes.
    """

    def __init__(
        self, settings: MqttSettings, *, reprobe_after_s: float = MQTT5_REPROBE_AFTER_S
    ) -> None:
        self.current = first_protocol(settings)
        self.reprobe_after_s = reprobe_after_s
        self._may_fall_back = settings.protocol == "auto"
        self._announced: MQTTProtocolVersion | None = None
        self._v5_accepted = False
        self._unanswered_v5 = 0
        """MQTT 5 CONNECTs left unanswered by a broker that then answered 3.1.1 (counted only
        then: a 3.1.1 attempt refused or unanswered too says the broker was down)."""
        self._provisional = False
        """Speaking 3.1.1 after one unanswered MQTT 5 CONNECT: MQTT 5 is tried again."""
        self._session_since_s: float | None = None
        """When the session in use was accepted (monotonic), for :meth:`reprobe_due`."""

    @property
    def name(self) -> str:
        """``"5"`` or ``"3.1.1"``."""
        return MQTT_VERSION_NAMES[self.current]

    def falls_back(self, connack_reason: int, address: BrokerAddress) -> bool:
        """Whether a refused CONNACK means: reconnect at once with MQTT 3.1.1 (logged)."""
        if not (
            self._may_fall_back
            and self.current == MQTTProtocolVersion.MQTTv5
            and connack_reason == _CONNACK_UNSUPPORTED_PROTOCOL
        ):
            return False
        self._fall_back(address, provisional=False)
        return True

    def no_connack(self, address: BrokerAddress) -> bool:
        """Whether a CONNECT left unanswered (closed or timed out) means: retry with MQTT 3.1.1.

        Some 3.1.1 brokers do not answer "unsupported protocol version": amqtt 0.12 fails to parse
        an MQTT 5 CONNECT carrying a Last Will and leaves it unanswered. A broker that accepted
        MQTT 5 once does not count: its silence has another cause.
        """
        if not self._may_fall_back or self._v5_accepted:
            return False
        if self.current != MQTTProtocolVersion.MQTTv5:
            return False  # unanswered under 3.1.1 too: the broker was silent, not short of 5
        self._fall_back(address, provisional=self._unanswered_v5 == 0)
        return True

    def retries_v5(self) -> bool:
        """After a failed or ended connection: whether to try MQTT 5 again (new client needed).

        True once after a provisional fallback, so that one slow broker does not cost the
        gateway MQTT 5 until it restarts.
        """
        return self._try_v5_again("trying MQTT 5 again")

    def reprobe_due(self, now_s: float) -> bool:
        """Whether a provisional 3.1.1 session has lasted ``reprobe_after_s`` (monotonic seconds).

        The publisher then ends it at a safe moment and asks :meth:`reprobes_v5`: a session that
        never drops must not keep the gateway on 3.1.1 after one slow CONNACK.
        """
        return (
            self._on_provisional_3_1_1()
            and self._session_since_s is not None
            and now_s - self._session_since_s >= self.reprobe_after_s
        )

    def reprobes_v5(self, address: BrokerAddress) -> bool:
        """Switch to MQTT 5 for the planned reconnect :meth:`reprobe_due` asked for (logged)."""
        return self._try_v5_again(
            "MQTT 3.1.1 session with %s stable for %.0f s after an unanswered MQTT 5 CONNECT; "
            "reconnecting to try MQTT 5 again (samples wait in the outbox)",
            address,
            self.reprobe_after_s,
        )

    def _on_provisional_3_1_1(self) -> bool:
        return self._provisional and self.current == MQTTProtocolVersion.MQTTv311

    def _try_v5_again(self, message: str, *args: object) -> bool:
        """Leave a provisional 3.1.1 for MQTT 5, logging ``message``; False if not provisional."""
        if not self._on_provisional_3_1_1():
            return False
        self._provisional = False
        self.current = MQTTProtocolVersion.MQTTv5
        log.info(message, *args)
        return True

    def _fall_back(self, address: BrokerAddress, *, provisional: bool) -> None:
        self.current = MQTTProtocolVersion.MQTTv311
        self._provisional = provisional
        self._may_fall_back = provisional
        if provisional:
            log.warning(
                "broker %s did not answer an MQTT 5 CONNECT; trying MQTT 3.1.1 (MQTT 5 is tried "
                "again when this connection ends or after %.0f s)",
                address,
                self.reprobe_after_s,
            )
            return
        log.warning(
            "broker %s does not speak MQTT 5; falling back to MQTT 3.1.1, under which a publish "
            "the broker denies is acknowledged as if delivered (see docs/deploy.md)",
            address,
        )

    def connected(self, address: BrokerAddress, client_id: str, now_s: float) -> None:
        """Note a session accepted at ``now_s`` (monotonic) and log it (the version when new)."""
        self._v5_accepted = self._v5_accepted or self.current == MQTTProtocolVersion.MQTTv5
        self._session_since_s = now_s
        if self._on_provisional_3_1_1():
            self._unanswered_v5 += 1  # 3.1.1 answered where MQTT 5 was not
        version = "" if self._announced == self.current else f" speaking MQTT {self.name}"
        self._announced = self.current
        log.info("connected to MQTT broker %s as %s%s", address, client_id, version)
