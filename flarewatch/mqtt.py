"""One way to build a paho-mqtt client from the settings, for gateways and the service alike.

MQTT 3.1.1 by default, because the demo's embedded broker (amqtt) serves no more than that; a
gateway asks for MQTT 5 (``protocol=``) to learn from the PUBACK when the broker denies a publish
(:mod:`collector.mqtt_connection`). Fixed client id and persistent session (3.1.1:
``clean_session=False``; MQTT 5: clean start and session expiry are given when connecting) so the
broker keeps QoS 1 messages for a client that is away; credentials and TLS (``mqtts://``, optional
``ca_file``) from :class:`MqttSettings`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from flarewatch.errors import ConfigError
from flarewatch.settings import MqttSettings

_TLS_SCHEMES: Final = frozenset({"mqtts", "ssl"})
_DEFAULT_PORTS: Final = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


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
            raise ConfigError(
                "no MQTT broker configured: pass --mqtt-url mqtt://host:1883 or set "
                "FLAREWATCH_MQTT__URL"
            )
        parts = urlsplit(settings.url)
        if parts.username is not None or parts.password is not None:
            # refused, not ignored: and never echoed, since the URL holds a password
            raise ConfigError(
                "the MQTT url carries credentials: put them in mqtt.username and mqtt.password "
                "(FLAREWATCH_MQTT__USERNAME / FLAREWATCH_MQTT__PASSWORD) instead"
            )
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ConfigError(f"MQTT url {settings.url!r} must look like mqtt://host:1883")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise ConfigError(f"MQTT url {settings.url!r} has an invalid port") from exc
        return cls(parts.hostname, port, scheme in _TLS_SCHEMES)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    persistent: bool = True,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
) -> tuple[mqtt.Client, BrokerAddress]:
    """A persistent-session MQTT client with credentials and TLS, and where to connect.

    ``persistent=False`` (a throw-away client such as the demo's) asks for a clean session, so
    the broker keeps nothing for it once it disconnects. Under MQTT 5 paho takes no clean-session
    flag here: the caller passes ``clean_start`` and the session expiry to ``connect``.
    """
    address = BrokerAddress.from_settings(settings)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if protocol is MQTTProtocolVersion.MQTTv5 else not persistent,
        protocol=protocol,
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
            raise ConfigError(
                f"cannot set up TLS with ca_file={settings.ca_file}: {exc}; check that the file "
                "exists and holds PEM certificates"
            ) from exc
        context.sslsocket_class = _ClosingSSLSocket
        client.tls_set_context(context)
    return client, address
