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
