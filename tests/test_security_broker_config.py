"""The production broker configuration (deploy/mosquitto/mosquitto.conf) against a gateway's
stolen credentials, with a real Mosquitto, real TLS and files written by ``broker-auth``."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from flarewatch import topics
from flarewatch.localservers import find_binary, free_port
from flarewatch.localservers.base import DEPLOY_DIR
from service.broker_auth import DeviceRoute, acl_file, hash_password, new_password, password_file
from tests.broker_helpers import connack
from tests.test_publisher import make_certificates

SERVICE_CLIENT_ID = "flarewatch-service-ingest"  # FLAREWATCH_SERVICE__INSTANCE's default


@dataclass
class Broker:
    """A running production-configured broker: plain port (compose network), TLS port, secrets."""

    port: int
    tls_port: int
    ca: Path
    passwords: dict[str, str]


def _production_config(tmp_path: Path, port: int, tls_port: int, ca: Path) -> Path:
    """deploy/mosquitto/mosquitto.conf as it is, its container paths and ports moved here."""
    text = (DEPLOY_DIR / "mosquitto" / "mosquitto.conf").read_text()
    for old, new in {
        "/mosquitto/data/": f"{tmp_path / 'data'}/",
        "/mosquitto/auth/": f"{tmp_path / 'auth'}/",
        "/mosquitto/certs/": f"{tmp_path / 'certs'}/",
        "/mosquitto/config/conf.d": str(DEPLOY_DIR / "mosquitto" / "conf.d"),
        "listener 1883\n": f"listener {port} 127.0.0.1\n",
        "listener 8883\n": f"listener {tls_port} 127.0.0.1\n",
    }.items():
        assert old in text, f"mosquitto.conf no longer has {old!r}"
        text = text.replace(old, new)
    # as root, mosquitto would drop to its own user, who cannot read pytest's private folder
    user = "user root\n" if os.geteuid() == 0 else ""
    config = tmp_path / "mosquitto.conf"
    config.write_text(user + text)
    return config


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and the broker's certificate and key (made once: RSA keys take a while)."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def broker(tmp_path: Path, certificates: tuple[Path, Path, Path]) -> Iterator[Broker]:
    """The production config with the service and two gateways (gw-a for p1, gw-b for p2)."""
    for folder in ("data", "auth", "certs"):
        (tmp_path / folder).mkdir()
    ca, cert, key = certificates
    shutil.copy(cert, tmp_path / "certs" / "server.crt")
    shutil.copy(key, tmp_path / "certs" / "server.key")
    passwords = {user: new_password() for user in ("flarewatch-service", "gw-a", "gw-b")}
    (tmp_path / "auth" / "passwords").write_text(
        password_file({user: hash_password(pw) for user, pw in passwords.items()})
    )
    routes = {"gw-a": [DeviceRoute("p1", "band-1")], "gw-b": [DeviceRoute("p2", "band-2")]}
    (tmp_path / "auth" / "acl").write_text(acl_file(routes))
    port, tls_port = free_port(), free_port()
    config = _production_config(tmp_path, port, tls_port, ca)
    with subprocess.Popen(
        [find_binary("mosquitto"), "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        try:
            for listening in (port, tls_port):
                _wait_for_listener(listening, process)
            yield Broker(port, tls_port, ca, passwords)
        finally:
            process.terminate()
            process.wait(10)


def _wait_for_listener(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


class Client:
    """A paho client that records its messages and whether the broker dropped it."""

    def __init__(
        self, broker: Broker, user: str, client_id: str, *, tls: bool, clean: bool = True
    ) -> None:
        self.messages: queue.Queue[str] = queue.Queue()
        self.dropped = threading.Event()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        self.client.username_pw_set(user, broker.passwords[user])
        if tls:
            self.client.tls_set(ca_certs=str(broker.ca))
        connected: queue.Queue[mqtt.ReasonCode] = queue.Queue()
        self.client.on_connect = lambda c, u, flags, code, props: connected.put(code)
        self.client.on_disconnect = lambda *args: self.dropped.set()
        self.client.on_message = lambda c, u, m: self.messages.put(m.topic)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", broker.tls_port if tls else broker.port)
        self.client.loop_start()
        code = connected.get(timeout=5)
        assert not code.is_failure, f"{user} refused: {code}"

    def close(self) -> None:
        self.client.disconnect()  # first: the network thread ends with the connection
        self.client.loop_stop()


def test_a_gateway_cannot_take_the_service_session_and_its_queued_samples(
    broker: Broker,
) -> None:
    """Mosquitto hands a client id to whoever connects with it last. A stolen gateway (gw-b)
    connecting as the service's client id with a clean session threw the service off the
    broker and wiped its persistent session: the samples queued for it while it was restarting,
    already deleted from the gateways' outboxes, were lost."""
    samples = topics.samples_topic("p1", "band-1")
    service = Client(broker, "flarewatch-service", SERVICE_CLIENT_ID, tls=False, clean=False)
    service.client.subscribe(topics.SAMPLES_SUBSCRIPTION, qos=1)
    assert service.subscribed.wait(5)
    service.close()  # the service restarts: the broker keeps its session and queues for it

    gateway = Client(broker, "gw-a", "flarewatch-gateway-gw-a", tls=True)
    gateway.client.publish(samples, b"{}", qos=1).wait_for_publish(5)
    gateway.close()

    thief = Client(broker, "gw-b", SERVICE_CLIENT_ID, tls=True)
    thief.close()

    service = Client(broker, "flarewatch-service", SERVICE_CLIENT_ID, tls=False, clean=False)
    try:
        assert service.messages.get(timeout=5) == samples, "the queued sample was lost"
        # connected now, the service is not thrown off by a gateway taking its client id
        thief = Client(broker, "gw-b", SERVICE_CLIENT_ID, tls=True)
        gateway = Client(broker, "gw-a", "flarewatch-gateway-gw-a", tls=True)
        gateway.client.publish(samples, b"{}", qos=1).wait_for_publish(5)
        assert service.messages.get(timeout=5) == samples
        assert not service.dropped.is_set(), "a gateway's login threw the service off"
        thief.close()
        gateway.close()
    finally:
        service.close()


def _login(broker: Broker, tls: bool, user: str | None) -> mqtt.ReasonCode:
    """The CONNACK of an anonymous login, or of ``user`` with a wrong password."""
    port, ca_file = (broker.tls_port, broker.ca) if tls else (broker.port, None)
    return connack(port, user, "not-the-password", ca_file=ca_file)


def test_both_listeners_refuse_strangers_and_a_gateway_reads_nothing_else(broker: Broker) -> None:
    """Per listener, each listener needs its own login settings: none may fall back to anonymous.
    A gateway subscribing to everything, $SYS included, gets only its own devices' status."""
    for tls in (False, True):
        assert _login(broker, tls, None).is_failure, f"anonymous, tls={tls}"
        assert _login(broker, tls, "gw-a").is_failure, f"wrong password, tls={tls}"
    nosy = Client(broker, "gw-a", "nosy", tls=True)
    nosy.client.subscribe([("#", 1), ("$SYS/#", 1), (topics.SAMPLES_SUBSCRIPTION, 1)])
    assert nosy.subscribed.wait(5)
    other = Client(broker, "gw-b", "gw-b", tls=True)
    service = Client(broker, "flarewatch-service", "flarewatch-service-alerts", tls=False)
    try:
        other.client.publish(topics.samples_topic("p2", "band-2"), b"{}", qos=1).wait_for_publish(5)
        alerts = topics.alerts_topic("p1")
        service.client.publish(alerts, b'{"event":"opened"}', qos=1).wait_for_publish(5)
        own_status = topics.device_status_topic("p1", "band-1")
        nosy.client.publish(own_status, b"{}", qos=1).wait_for_publish(5)  # the last one sent
        assert nosy.messages.get(timeout=5) == own_status, "a gateway read another topic"
    finally:
        for client in (nosy, other, service):
            client.close()
