"""Logging in to a real broker the way a device would, to see what it answers."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


def connack(
    port: int, user: str | None, password: str = "", *, ca_file: Path | None = None
) -> ReasonCode:
    """The CONNACK reason code of a login (anonymous without ``user``; TLS with ``ca_file``)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}")
    if user is not None:
        client.username_pw_set(user, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file))
    answers: queue.Queue[ReasonCode] = queue.Queue()
    client.on_connect = lambda c, u, flags, code, props: answers.put(code)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return answers.get(timeout=5)
    finally:
        client.loop_stop()
        client.disconnect()


def retained_payload(port: int, topic: str) -> bytes | None:
    """What the broker keeps retained on ``topic`` (``None``: nothing), read the way a siren
    subscribing now would.

    After subscribing, the probe publishes a marker to a topic of its own: the broker sends a
    retained message as it takes the subscription, so one that has not arrived before the marker
    does not exist.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}")
    marker = f"probe/{time.monotonic_ns()}"
    received: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
    client.on_message = lambda c, u, m: received.put((m.topic, m.payload, bool(m.retain)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.subscribe([(topic, 1), (marker, 1)])
        client.publish(marker, b"end", qos=1)
        while True:
            got_topic, payload, retain = received.get(timeout=10)
            if got_topic == marker:
                return None
            if retain:
                return payload
    finally:
        client.loop_stop()
        client.disconnect()
