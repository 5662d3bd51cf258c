"""Building the paho client from the settings: broker address, TLS, credentials, Last Will."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector.errors import PublisherError
from flarewatch.payloads import GatewayStatus, LinkState, encode
from flarewatch.settings import MqttSettings


class _ClosingSSLSocket(ssl.SSLSocket):
    """A TLS socket that closes itself when its handshake fails.

    paho 2.2 drops such a socket unclosed (``Client._ssl_wrap_socket``), leaking a file
    descriptor on every failed attempt of a gateway retrying for days.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


_TLS_SCHEMES = frozenset({"mqtts", "ssl"})
_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker listens and whether to speak TLS, parsed from ``mqtt.url``."""

    host: str
    port: int
    tls: bool

    @classmethod
    def from_settings(cls, settings: MqttSettings) -> BrokerAddress:
        """Parse ``mqtt://host[:port]`` / ``mqtts://host[:port]``; a missing URL is an error."""
        if not settings.url:
            raise PublisherError(
                "no MQTT broker configured: pass --mqtt-url mqtt://host:1883 or set "
                "FLAREWATCH_MQTT__URL"
            )
        parts = urlsplit(settings.url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise PublisherError(f"MQTT url {settings.url!r} must look like mqtt://host:1883")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise PublisherError(f"MQTT url {settings.url!r} has an invalid port") from exc
        return cls(parts.hostname, port, scheme in _TLS_SCHEMES)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


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
    settings: MqttSettings, address: BrokerAddress, client_id: str, will_topic: str, gateway_id: str
) -> mqtt.Client:
    """A paho 2.x client with persistent session, credentials, TLS and the offline Last Will.

    MQTT 3.1.1 only, because the demo's embedded broker (amqtt) serves no more than that.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if address.tls:
        try:
            context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )
        except (OSError, ValueError) as exc:
            raise PublisherError(
                f"cannot set up TLS with ca_file={settings.ca_file}: {exc}; check that the file "
                "exists and holds PEM certificates"
            ) from exc
        context.sslsocket_class = _ClosingSSLSocket
        client.tls_set_context(context)
    client.will_set(
        will_topic, gateway_status_payload(gateway_id, LinkState.OFFLINE), qos=1, retain=True
    )
    return client
