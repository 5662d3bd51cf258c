"""Per-gateway credentials and ACLs, enforced by a real Mosquitto."""

from __future__ import annotations

import base64
import json
import queue
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import SecretStr

from flarewatch import topics
from flarewatch.localservers import MosquittoServer
from flarewatch.settings import MqttSettings
from models.alarm import Severity
from service.alerts.events import AlertEvent
from service.alerts.mqtt_bridge import MqttAlertBridge
from service.broker_auth import (
    ALL_PATIENTS,
    AckGrant,
    DeviceRoute,
    ReadGrant,
    acl_file,
    hash_password,
    new_password,
    password_file,
)
from service.db import Alert, AlertState, Patient
from tests.alerting_helpers import FakeClock, build_stack, register_team


def test_hash_matches_mosquitto_format(tmp_path: Path) -> None:
    """Our hash verifies with the same algorithm mosquitto_passwd uses ($7$, PBKDF2-SHA512)."""
    reference = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(reference), "u", "s3cret"], check=True)
    _, algo, iterations, salt_b64, digest = (
        reference.read_text().strip().split(":", 1)[1].split("$")
    )

    ours = hash_password("s3cret", salt=base64.b64decode(salt_b64), iterations=int(iterations))
    assert ours == f"${algo}${iterations}${salt_b64}${digest}"


def _client(
    server: MosquittoServer,
    user: str,
    password: str,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}", protocol=protocol
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
        "siren": new_password(),
        "display": new_password(),
        "hall-p1": new_password(),
    }
    (tmp_path / "passwords").write_text(
        password_file({user: hash_password(pw) for user, pw in passwords.items()})
    )
    (tmp_path / "acl").write_text(
        acl_file(
            {"gw-a": [DeviceRoute("p1", "band-1")], "gw-b": [DeviceRoute("p2", "band-2")]},
            service_user="flarewatch-service",
            alert_readers=[ReadGrant("siren", "p1"), ReadGrant("display", ALL_PATIENTS)],
            ack_grants=[AckGrant("hall-p1", "p1")],
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


def _broker_answer(client: mqtt.Client, topic: str, payload: dict[str, object]) -> str:
    """Publish at QoS 1 (MQTT 5) and return the broker's PUBACK reason ("Not authorized")."""
    answers: queue.Queue[str] = queue.Queue()
    client.on_publish = lambda c, u, mid, reason, props: answers.put(str(reason))
    client.publish(topic, json.dumps(payload), qos=1)
    return answers.get(timeout=5)


@pytest.fixture
def alerting(secured_broker, tmp_path: Path):
    """The service's alert bridge on the secured broker; a critical alert open for p1 and p2."""
    server, passwords = secured_broker
    stack = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", FakeClock())
    settings = MqttSettings(
        url=server.url,
        username="flarewatch-service",
        password=SecretStr(passwords["flarewatch-service"]),
    )
    bridge = MqttAlertBridge(settings, stack.manager)
    bridge.start()
    assert bridge.wait_ready()
    alert_ids = {}
    for patient_id in ("p1", "p2"):
        register_team(stack.db, patient_id, [])
        with stack.manager.transaction() as txn:
            patient = txn.session.get_one(Patient, patient_id)
            alert = stack.manager.open_alert(
                txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s
            )
            alert_ids[patient_id] = alert.id
    events: queue.Queue[AlertEvent] = queue.Queue()
    stack.manager.listeners.append(events.put)
    yield server, passwords, stack, bridge, alert_ids, events
    bridge.stop()
    stack.close()


def _state(stack, alert_id: int) -> str:
    with stack.db.session() as session:
        return session.get_one(Alert, alert_id).state


@contextmanager
def _reader(
    server: MosquittoServer, user: str, password: str, *subscriptions: str
) -> Iterator[queue.Queue[tuple[str, str]]]:
    """An MQTT 5 client subscribed to ``subscriptions``; it queues the (topic, event) it gets."""
    client = _client(server, user, password, MQTTProtocolVersion.MQTTv5)
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    client.on_message = lambda c, u, m: seen.put((m.topic, json.loads(m.payload)["event"]))
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe([(topic, 1) for topic in subscriptions])
    assert subscribed.wait(5)
    try:
        yield seen
    finally:
        client.loop_stop()
        client.disconnect()


def test_alert_reader_reads_only_its_patients_alerts_and_publishes_nothing(alerting) -> None:
    """A siren in p1's home gets p1's alert events, never p2's, and cannot ack or forge them."""
    server, passwords, stack, bridge, alert_ids, _ = alerting
    # the wildcard and p2's own topic: neither may deliver another patient's alerts to a siren
    subscriptions = (topics.ALERTS_SUBSCRIPTION, topics.alerts_topic("p2"))
    with _reader(server, "siren", passwords["siren"], *subscriptions) as seen:
        assert seen.get(timeout=5) == (topics.alerts_topic("p1"), "opened")  # retained
        # The bridge publishes p2's event first, on the same connection: had the broker
        # delivered it to the siren, it would be queued before p1's.
        stack.manager.acknowledge(alert_ids["p2"], by="carer", via="test")
        stack.manager.acknowledge(alert_ids["p1"], by="carer", via="test")
        assert seen.get(timeout=5) == (topics.alerts_topic("p1"), "acknowledged")
        assert seen.empty()
    siren = _client(server, "siren", passwords["siren"], MQTTProtocolVersion.MQTTv5)
    ack = {"alert_id": alert_ids["p1"], "by": "siren"}
    assert _broker_answer(siren, topics.alert_ack_topic("p1"), ack) == "Not authorized"
    forged = {"event": "resolved", "alert_id": alert_ids["p1"]}
    assert _broker_answer(siren, topics.alerts_topic("p1"), forged) == "Not authorized"
    assert bridge.acked == 0
    siren.loop_stop()
    siren.disconnect()


def test_all_patients_reader_reads_every_alert_but_cannot_acknowledge(alerting) -> None:
    """A central display granted ``*`` gets every patient's alert events, and still cannot ack."""
    server, passwords, stack, bridge, alert_ids, _ = alerting
    with _reader(server, "display", passwords["display"], topics.ALERTS_SUBSCRIPTION) as seen:
        assert {seen.get(timeout=5), seen.get(timeout=5)} == {
            (topics.alerts_topic("p1"), "opened"),
            (topics.alerts_topic("p2"), "opened"),
        }
    display = _client(server, "display", passwords["display"], MQTTProtocolVersion.MQTTv5)
    ack = {"alert_id": alert_ids["p2"], "by": "display"}
    assert _broker_answer(display, topics.alert_ack_topic("p2"), ack) == "Not authorized"
    assert _state(stack, alert_ids["p2"]) == AlertState.ACTIVE and bridge.acked == 0
    display.loop_stop()
    display.disconnect()


def test_ack_device_acknowledges_only_its_own_patient(alerting) -> None:
    server, passwords, stack, bridge, alert_ids, events = alerting
    hall = _client(server, "hall-p1", passwords["hall-p1"], MQTTProtocolVersion.MQTTv5)
    p1_topic, p2_topic = topics.alert_ack_topic("p1"), topics.alert_ack_topic("p2")
    # p2's alert named on p1's topic: the broker lets it through, the bridge refuses it
    assert _broker_answer(hall, p1_topic, {"alert_id": alert_ids["p2"]}) == "Success"
    assert _broker_answer(hall, p1_topic, {"alert_id": alert_ids["p1"], "by": "hall"}) == "Success"
    acked = events.get(timeout=5)  # the bridge handles one client's messages in order
    assert (acked.event, acked.alert_id, acked.acked_by) == (
        "acknowledged",
        alert_ids["p1"],
        "hall",
    )
    assert bridge.rejected["AlertingError"] == 1
    # p2's own topic is not the button's to publish on
    assert _broker_answer(hall, p2_topic, {"alert_id": alert_ids["p2"]}) == "Not authorized"
    assert _state(stack, alert_ids["p2"]) == AlertState.ACTIVE and bridge.acked == 1
    hall.loop_stop()
    hall.disconnect()


def _login_refused(server: MosquittoServer, user: str, password: str) -> bool:
    """Whether the broker refuses ``user`` logging in with ``password`` (its CONNACK)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"login-{user}")
    client.username_pw_set(user, password)
    codes: queue.Queue[mqtt.ReasonCode] = queue.Queue()
    client.on_connect = lambda c, u, flags, reason_code, props: codes.put(reason_code)
    client.connect("127.0.0.1", server.port)
    client.loop_start()
    try:
        return bool(codes.get(timeout=5).is_failure)
    finally:
        client.loop_stop()
        client.disconnect()


def test_wrong_password_is_refused(secured_broker) -> None:
    server, passwords = secured_broker
    assert _login_refused(server, "gw-a", "not-the-password")
    assert not _login_refused(server, "gw-a", passwords["gw-a"])


def _acl_rules(acl: str, user: str) -> list[str]:
    """The lines of ``user``'s block in a generated ACL file."""
    return acl.split(f"user {user}\n", 1)[1].split("\n\n", 1)[0].strip().splitlines()


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
    assert main([*args, "--gateway", "gw-a=band-1", "--ack-device", "hall=nobody"]) == 1
    readers = [
        *("--alert-reader", "siren=p1", "--alert-reader", f"display={ALL_PATIENTS}"),
        *("--ack-device", "hall=p1"),
    ]
    assert main([*args, "--gateway", "gw-a=band-1", *readers]) == 0
    acl = (out / "acl").read_text()
    assert _acl_rules(acl, "siren") == [f"topic read {topics.alerts_topic('p1')}"]
    assert _acl_rules(acl, "display") == [f"topic read {topics.ALERTS_SUBSCRIPTION}"]
    assert _acl_rules(acl, "hall") == [
        f"topic read {topics.alerts_topic('p1')}",
        f"topic write {topics.alert_ack_topic('p1')}",
    ]
    with_readers = (out / "passwords").read_text()
    assert all(f"{user}:$7$" in with_readers for user in ("siren", "display", "hall"))
    assert main([*args, "--gateway", "gw-a=band-1", *readers]) == 0
    assert (out / "passwords").read_text() == with_readers
    (tmp_path / "data").mkdir()
    extra = f"allow_anonymous false\npassword_file {out / 'passwords'}\nacl_file {out / 'acl'}"
    with MosquittoServer(tmp_path / "data", extra_config=extra) as server:
        assert "Error" not in server.log_text()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        # the old form, which meant every patient: refused, naming the new one
        (
            "siren",
            f"'siren' must name the patients whose alerts it may read: siren=alex[,sam], "
            f"or siren={ALL_PATIENTS} for a central display",
        ),
        ("siren=nobody", "patient 'nobody' of --alert-reader siren is not registered"),
        (f"siren={ALL_PATIENTS},p1", f"{ALL_PATIENTS} already means every patient"),
        ("siren=", "--alert-reader 'siren=' must look like siren=alex[,sam]"),
        ("=p1", "--alert-reader '=p1' must look like"),
        # written, it could not log in: Mosquitto reads "siren" with the password "kitchen:…"
        ("siren:kitchen=p1", "user 'siren:kitchen' cannot be a broker user"),
        ("siren\ntopic readwrite #=p1", "cannot be a broker user"),
        # over TLS a device's client id is its user name: this one was the service's
        ("flarewatch-service-alerts=p1", "names starting with 'flarewatch-' are the service's"),
    ],
)
def test_bad_alert_reader_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, says: str
) -> None:
    """A bad ``--alert-reader`` writes nothing and says what to give instead (no traceback)."""
    from flarewatch.cli import main

    db = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    assert main(["admin", "--database-url", db, "patient", "add", "p1"]) == 0
    out = tmp_path / "auth"
    argv = ["admin", "--database-url", db, "broker-auth", "--out", str(out)]
    assert main([*argv, "--alert-reader", spec]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not out.exists()


def test_users_no_longer_given_are_removed_and_cannot_log_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gateway or siren dropped from ``broker-auth`` loses its login, not only its rights."""
    from flarewatch.cli import main

    db = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    assert main(["admin", "--database-url", db, "patient", "add", "p1"]) == 0
    for device in ("band-1", "band-2"):
        assert main(["admin", "--database-url", db, "device", "add", "p1", device]) == 0
    out = tmp_path / "auth"
    args = ["admin", "--database-url", db, "broker-auth", "--out", str(out)]
    capsys.readouterr()
    everyone = [*("--gateway", "gw-a=band-1", "--gateway", "gw-b=band-2")]
    assert main([*args, *everyone, "--alert-reader", "siren=p1"]) == 0
    issued = dict(
        line.removeprefix("new password for ").split(": ", 1)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("new password for ")
    )
    assert set(issued) == {"flarewatch-service", "gw-a", "gw-b", "siren"}
    assert main([*args, "--gateway", "gw-a=band-1"]) == 0
    said = capsys.readouterr().out
    assert "removed 2 users no longer given: gw-b, siren" in said
    users = [line.split(":", 1)[0] for line in (out / "passwords").read_text().splitlines()]
    assert sorted(users) == ["flarewatch-service", "gw-a"]
    (tmp_path / "data").mkdir()
    extra = f"allow_anonymous false\npassword_file {out / 'passwords'}\nacl_file {out / 'acl'}"
    with MosquittoServer(tmp_path / "data", extra_config=extra) as server:
        assert not _login_refused(server, "gw-a", issued["gw-a"]), "a kept user lost its password"
        assert _login_refused(server, "gw-b", issued["gw-b"])
        assert _login_refused(server, "siren", issued["siren"])


def _registered_band(tmp_path: Path) -> list[str]:
    """A database with patient p1 wearing band-1; the broker-auth command line up to --out."""
    from flarewatch.cli import main

    db = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    assert main(["admin", "--database-url", db, "patient", "add", "p1"]) == 0
    assert main(["admin", "--database-url", db, "device", "add", "p1", "band-1"]) == 0
    return ["admin", "--database-url", db, "broker-auth", "--out"]


@pytest.mark.parametrize("out", ["a-file", "a-file/auth"])
def test_an_out_folder_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """``--out`` naming a file (or a folder under one) says so, without a traceback."""
    from flarewatch.cli import main

    argv = _registered_band(tmp_path)
    (tmp_path / "a-file").write_text("")
    assert main([*argv, str(tmp_path / out), "--gateway", "gw-a=band-1"]) == 1
    err = capsys.readouterr().err
    assert f"--out {tmp_path / out}: cannot write" in err
    assert "Traceback" not in err


def test_rotating_a_user_not_given_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt ``--rotate`` is an error, not a run that rotates nothing and says all is well."""
    from flarewatch.cli import main

    argv = [*_registered_band(tmp_path), str(tmp_path / "auth"), "--gateway", "gw-a=band-1"]
    assert main(argv) == 0
    before = (tmp_path / "auth" / "passwords").read_text()
    capsys.readouterr()
    assert main([*argv, "--rotate", "gw-b"]) == 1
    assert "--rotate gw-b: no such user in this run" in capsys.readouterr().err
    assert (tmp_path / "auth" / "passwords").read_text() == before
    assert main([*argv, "--rotate", "gw-a"]) == 0
    assert "new password for gw-a" in capsys.readouterr().out


_WATCH_FILE_MODES = """
import os, stat, sys
from pathlib import Path

out = Path(sys.argv[1])
seen = []

def watch(event, args):
    # at every file operation, whether some file in --out holds text others may read
    if event in ("open", "os.chmod", "os.rename", "os.remove") and out.is_dir():
        for path in out.iterdir():
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_size and info.st_mode & 0o077:
                seen.append(f"{path.name} {stat.S_IMODE(info.st_mode):o} at {event}")

os.umask(0o022)
sys.addaudithook(watch)
from flarewatch.cli import main
code = main(sys.argv[2:])
print("\\n".join(dict.fromkeys(seen)), file=sys.stderr)
sys.exit(code)
"""


def test_password_and_acl_files_are_never_readable_by_others(tmp_path: Path) -> None:
    """The hashes were written under the umask (0644) and only then made 0600: for that moment,
    or for good when the write failed, any local user could read them; the ACL (patients and
    their devices) stayed 0644. Both files are now written owner-only and renamed into place."""
    out = tmp_path / "auth"
    argv = [*_registered_band(tmp_path), str(out), "--gateway", "gw-a=band-1"]
    for _ in range(2):  # the first run creates the files, the second replaces them
        done = subprocess.run(
            [sys.executable, "-c", _WATCH_FILE_MODES, str(out), *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == "", f"readable by others while written:\n{done.stderr}"
        assert sorted(p.name for p in out.iterdir()) == ["acl", "passwords"]
        for name in ("acl", "passwords"):
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
