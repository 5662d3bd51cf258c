"""The gateway's paho client: the shared client of :mod:`flarewatch.mqtt` plus its Last Will."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from flarewatch.mqtt import BrokerAddress, make_client
from flarewatch.payloads import GatewayStatus, LinkState, encode
from flarewatch.settings import MqttSettings


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
