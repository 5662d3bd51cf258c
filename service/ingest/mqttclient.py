"""A paho-mqtt 2.x client configured from :class:`flarewatch.settings.MqttSettings`."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from flarewatch.errors import ConfigError
from flarewatch.settings import MqttSettings

_TLS_SCHEMES = frozenset({"mqtts", "ssl"})


def broker_address(url: str) -> tuple[str, int, bool]:
    """Host, port and whether TLS is used, from ``mqtt://host:port`` or ``mqtts://host:port``."""
    parts = urlsplit(url)
    tls = parts.scheme in _TLS_SCHEMES
    if not parts.hostname:
        raise ConfigError(f"MQTT url {url!r} has no host: use mqtt://host:1883")
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


def make_client(settings: MqttSettings, client_id: str) -> tuple[mqtt.Client, str, int]:
    """A persistent-session MQTT 3.1.1 client (fixed id, clean session off) and where to connect.

    MQTT 3.1.1 keeps the embedded broker (amqtt) usable; credentials and TLS come from settings.
    """
    if settings.url is None:
        raise ConfigError("no MQTT broker configured: set FLAREWATCH_MQTT__URL or --mqtt-url")
    host, port, tls = broker_address(settings.url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if tls:
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        client.tls_set_context(context)
    return client, host, port
