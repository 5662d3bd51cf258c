"""The gateway's paho client: the shared client of :mod:`flarewatch.mqtt` plus its Last Will."""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt

from collector.mqtt_reconnect import ConnectFailure, advice, classify_exception
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


def build_client(
    settings: MqttSettings, client_id: str, will_topic: str, gateway_id: str
) -> tuple[mqtt.Client, BrokerAddress]:
    """The shared paho client (:func:`flarewatch.mqtt.make_client`) with the offline Last Will."""
    client, address = make_client(settings, client_id)
    client.will_set(
        will_topic, gateway_status_payload(gateway_id, LinkState.OFFLINE), qos=1, retain=True
    )
    return client, address


def connect_session(
    client: mqtt.Client, address: BrokerAddress, keepalive_s: int, first: bool
) -> ConnectFailure | None:
    """Start connecting (``first``) or reconnecting; the failure kind if the socket refused.

    The CONNACK arrives later through ``on_connect``. Failures are logged with advice when a
    person must act, quietly otherwise (the caller retries with backoff).
    """
    try:
        if first:
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
