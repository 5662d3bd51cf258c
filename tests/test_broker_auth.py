"""Per-gateway credentials and ACLs, enforced by a real Mosquitto."""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from flarewatch import topics
from flarewatch.localservers import MosquittoServer
from service.broker_auth import DeviceRoute, acl_file, hash_password, new_password, password_file


def test_hash_matches_mosquitto_format(tmp_path: Path) -> None:
    """Our hash verifies with the same algorithm mosquitto_passwd uses ($7$, PBKDF2-SHA512)."""
    reference = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(reference), "u", "s3cret"], check=True)
    _, algo, iterations, salt_b64, digest = (
        reference.read_text().strip().split(":", 1)[1].split("$")
    )

    ours = hash_password("s3cret", salt=base64.b64decode(salt_b64), iterations=int(iterations))
    assert ours == f"${algo}${iterations}${salt_b64}${digest}"


def _client(server: MosquittoServer, user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}"
    )
    client.username_pw_set(user, password)
    connected = threading.Event()
    client.on_connect = lambda c, u, flags, reason_code, props: connected.set()
    client.connect("127.0.0.1", server.port)
    client.loop_start()
    assert connected.wait(5)
    return client


@pytest.fixture
def secured_broker(tmp_path: Path):
    passwords = {
        "flarewatch-service": new_password(),
        "gw-a": new_password(),
        "gw-b": new_password(),
    }
    (tmp_path / "passwords").write_text(
        password_file({user: hash_password(pw) for user, pw in passwords.items()})
    )
    (tmp_path / "acl").write_text(
        acl_file(
            {"gw-a": [DeviceRoute("p1", "band-1")], "gw-b": [DeviceRoute("p2", "band-2")]},
            service_user="flarewatch-service",
        )
    )
    data = tmp_path / "data"
    data.mkdir()
    extra = "\n".join(
        [
            "allow_anonymous false",
            f"password_file {tmp_path / 'passwords'}",
            f"acl_file {tmp_path / 'acl'}",
        ]
    )
    with MosquittoServer(data, extra_config=extra) as server:
        yield server, passwords


def test_gateway_may_publish_only_its_own_devices(secured_broker) -> None:
    server, passwords = secured_broker
    received: list[str] = []
    subscribed = threading.Event()
    service = _client(server, "flarewatch-service", passwords["flarewatch-service"])
    service.on_message = lambda c, u, m: received.append(m.topic)
    service.on_subscribe = lambda *a: subscribed.set()
    service.subscribe(topics.SAMPLES_SUBSCRIPTION, qos=1)
    assert subscribed.wait(5)
    gateway = _client(server, "gw-a", passwords["gw-a"])
    gateway.publish(topics.samples_topic("p1", "band-1"), b"{}", qos=1).wait_for_publish(5)
    # Mosquitto 2.0.x answers a denied QoS 1 publish and then drops the connection, so this one
    # is not waited for: what matters is that the service never receives it.
    gateway.publish(topics.samples_topic("p2", "band-2"), b"{}", qos=1)
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # give a wrongly delivered message the same chance to arrive
    assert received == [topics.samples_topic("p1", "band-1")]
    for client in (gateway, service):
        client.loop_stop()
        client.disconnect()


def test_wrong_password_is_refused(secured_broker) -> None:
    server, _ = secured_broker
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="intruder")
    client.username_pw_set("gw-a", "not-the-password")
    codes: list[object] = []
    done = threading.Event()

    def on_connect(c, u, flags, reason_code, props):
        codes.append(reason_code)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", server.port)
    client.loop_start()
    assert done.wait(5)
    client.loop_stop()
    assert codes[0].is_failure


def test_admin_command_writes_files_mosquitto_accepts(tmp_path: Path) -> None:
    """`flarewatch admin broker-auth` from the registry → a broker that enforces it."""
    from flarewatch.cli import main

    db = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    assert main(["admin", "--database-url", db, "patient", "add", "p1"]) == 0
    assert main(["admin", "--database-url", db, "device", "add", "p1", "band-1"]) == 0
    out = tmp_path / "auth"
    args = ["admin", "--database-url", db, "broker-auth", "--out", str(out)]
    assert main([*args, "--gateway", "gw-a=band-1"]) == 0
    first = (out / "passwords").read_text()
    assert "gw-a:$7$" in first and "flarewatch-service:$7$" in first
    assert "topic write flarewatch/v1/p1/band-1/samples" in (out / "acl").read_text()
    # Running it again keeps existing passwords; an unknown device is a clear error.
    assert main([*args, "--gateway", "gw-a=band-1"]) == 0
    assert (out / "passwords").read_text() == first
    assert main([*args, "--gateway", "gw-a=nope"]) == 1
    (tmp_path / "data").mkdir()
    extra = f"allow_anonymous false\npassword_file {out / 'passwords'}\nacl_file {out / 'acl'}"
    with MosquittoServer(tmp_path / "data", extra_config=extra) as server:
        assert "Error" not in server.log_text()
