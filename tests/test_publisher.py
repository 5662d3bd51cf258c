"""The MQTT publisher against a real Mosquitto: delivery, statuses, outage, credentials, backoff."""

from __future__ import annotations

import itertools
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.batching import batches_from_rows
from collector.const import (
    PUBLISH_INFLIGHT_SAMPLES,
    RECONNECT_CONFIG_DELAY_S,
    RECONNECT_DNS_DELAY_S,
)
from collector.mqtt_reconnect import (
    ConnectFailure,
    classify_connack,
    classify_exception,
    reconnect_delay_s,
)
from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from collector.sources.base import Reading
from flarewatch import topics
from flarewatch.const import MAX_PAYLOAD_BYTES
from flarewatch.errors import ConfigError, ContractError
from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import (
    LinkState,
    decode_device_status,
    decode_gateway_status,
    decode_sample_batch,
)
from flarewatch.settings import MqttSettings

T0 = 1_764_081_600_000


class Recorder:
    """A persistent-session QoS 1 subscriber that records every sample and the latest statuses."""

    def __init__(self, url: str, client_id: str = "test-recorder") -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.received: list[tuple[str, int, int]] = []  # (device, seq, time_ms)
        self.statuses: dict[str, bytes] = {}
        self.status_log: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(topics.SAMPLES_SUBSCRIPTION, 1), (topics.STATUS_SUBSCRIPTION, 1)]
        )
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            if msg.topic.endswith("/samples"):
                batch = decode_sample_batch(bytes(msg.payload))
                self.received.extend((batch.device_id, s.seq, s.time_ms) for s in batch.samples)
            else:
                self.statuses[msg.topic] = bytes(msg.payload)
                self.status_log.append((msg.topic, bytes(msg.payload)))

    def wait_for(self, count: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len({(d, s) for d, s, _ in self.received}) >= count:
                    return
            time.sleep(0.05)

    def per_device(self) -> tuple[dict[str, list[int]], int]:
        """First occurrence of each seq per device, in arrival order, and the duplicate count."""
        seen: set[tuple[str, int]] = set()
        order: dict[str, list[int]] = defaultdict(list)
        duplicates = 0
        with self.lock:
            for device, seq, _ in self.received:
                if (device, seq) in seen:
                    duplicates += 1
                    continue
                seen.add((device, seq))
                order[device].append(seq)
        return order, duplicates

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def assert_complete_and_ordered(
    order: dict[str, list[int]], expected: dict[str, tuple[int, int]]
) -> None:
    """Every device got exactly seqs first..first+count-1, each the first time in order."""
    assert set(order) == set(expected)
    for device, (first, count) in expected.items():
        assert order[device] == list(range(first, first + count)), device


def reading(i: int) -> Reading:
    return Reading(
        time_ms=T0 + i * 1000,
        heart_rate_bpm=60.0 + i % 30,
        rr_intervals_s=(0.9, 0.95),
        skin_temperature_c=33.0,
        contact_detected=True,
        battery_percent=80,
    )


def test_every_sample_arrives_once_in_order_with_statuses(
    mosquitto: MosquittoServer, recorder: Recorder, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "o.db", clock_ms=lambda: T0)
    publisher = MqttPublisher(MqttSettings(url=mosquitto.url), outbox, gateway_id="gw-1")
    with publisher:
        for i in range(0, 600, 20):
            publisher.submit_many(
                [(f"p{d}", f"d{d}", [reading(k) for k in range(i, i + 20)]) for d in range(3)]
            )
        assert publisher.submit("p0", "d0", [Reading(time_ms=T0, heart_rate_bpm=999.0)]) == 0
        assert publisher.wait_until_sent(20)
        recorder.wait_for(1800)
        online = decode_gateway_status(recorder.statuses[topics.gateway_status_topic("gw-1")])
        assert online.state is LinkState.ONLINE and online.outbox_pending is not None
        assert publisher.status().outbox.rejected == 1
    order, duplicates = recorder.per_device()
    assert_complete_and_ordered(order, {f"d{d}": (T0, 600) for d in range(3)})
    assert duplicates == 0
    time.sleep(0.3)
    device = decode_device_status(recorder.statuses[topics.device_status_topic("p1", "d1")])
    assert (device.battery_percent, device.contact_detected, device.last_seq) == (
        80,
        True,
        T0 + 599,
    )
    assert device.state is LinkState.OFFLINE and device.reason == "gateway stopped"
    # a newcomer sees the retained gateway status: offline after a clean stop
    late = Recorder(mosquitto.url, client_id="late")
    time.sleep(0.5)
    late.close()
    status = decode_gateway_status(late.statuses[topics.gateway_status_topic("gw-1")])
    assert status.state is LinkState.OFFLINE and status.outbox_pending == 0
    assert status.devices == ("d0", "d1", "d2")
    outbox.close()


def test_broker_outage_is_bridged_by_the_outbox(
    mosquitto: MosquittoServer, recorder: Recorder, tmp_path: Path
) -> None:
    """The broker stops for a while (3 s; the acceptance's 60 s with OUTAGE_S=60)."""
    outage_s = float(os.environ.get("OUTAGE_S", "3"))
    outbox = Outbox(tmp_path / "o.db", clock_ms=lambda: T0)
    publisher = MqttPublisher(
        MqttSettings(url=mosquitto.url), outbox, gateway_id="gw-1", max_reconnect_delay_s=0.5
    )
    produced = 0
    stop = threading.Event()

    def produce() -> None:
        nonlocal produced
        for i in itertools.count():
            if stop.is_set():
                return
            publisher.submit_many([(f"p{d}", f"d{d}", [reading(i)]) for d in range(3)])
            produced = i + 1
            time.sleep(0.005)

    with publisher:
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        try:
            time.sleep(1.0)
            mosquitto.stop()
            time.sleep(outage_s)
            during = publisher.status()
            mosquitto.start()
            time.sleep(1.0)
        finally:  # a failure above must not leave the producer filling the outbox
            stop.set()
            producer.join()
        assert publisher.wait_until_sent(30), publisher.status()
        recorder.wait_for(3 * produced, timeout_s=30)
    outbox.close()
    assert not during.connected and during.outbox.pending > 100
    assert during.last_failure in (ConnectFailure.REFUSED, ConnectFailure.LOST)
    order, duplicates = recorder.per_device()
    print(f"outage {outage_s} s: {3 * produced} samples, {duplicates} duplicates")
    assert_complete_and_ordered(order, {f"d{d}": (T0, produced) for d in range(3)})
    # at-least-once: a batch whose PUBACK died with the broker may come twice (receivers
    # drop it by (device, seq)); never more than what can be in flight
    assert duplicates <= PUBLISH_INFLIGHT_SAMPLES


def test_credentials_from_settings(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "gateway", "s3cret-pw"], check=True)
    (tmp_path / "m").mkdir()
    config = f"allow_anonymous false\npassword_file {passwd}"
    with MosquittoServer(tmp_path / "m", extra_config=config) as broker:
        wrong = MqttPublisher(
            MqttSettings(url=broker.url, username="gateway", password="nope"),
            Outbox(tmp_path / "a.db"),
            gateway_id="gw-1",
        )
        with wrong:
            wrong.submit("p1", "d1", [reading(0)])
            deadline = time.monotonic() + 10
            while wrong.status().last_failure is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert wrong.status().last_failure is ConnectFailure.NOT_AUTHORIZED
            assert wrong.status().outbox.pending == 1  # kept for when the password is fixed
        right = MqttPublisher(
            MqttSettings(url=broker.url, username="gateway", password="s3cret-pw"),
            Outbox(tmp_path / "a.db"),
            gateway_id="gw-1",
        )
        with right:
            assert right.wait_until_sent(10)


def test_bad_settings_and_ids_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no MQTT broker configured"):
        MqttPublisher(MqttSettings(), Outbox(tmp_path / "o.db"), gateway_id="gw")
    with pytest.raises(ConfigError, match="ca_file"):
        MqttPublisher(
            MqttSettings(url="mqtts://127.0.0.1:8883", ca_file=tmp_path / "missing.pem"),
            Outbox(tmp_path / "o.db"),
            gateway_id="gw",
        ).start()
    publisher = MqttPublisher(
        MqttSettings(url="mqtt://127.0.0.1:1"), Outbox(tmp_path / "o.db"), gateway_id="gw"
    )
    with pytest.raises(ContractError):
        publisher.submit("bad/id", "d1", [reading(0)])


def test_batches_are_valid_contract_messages_split_at_the_size_limit(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", clock_ms=lambda: T0) as box:
        box.append("p1", "d1", [reading(i) for i in range(25)])
        box.append("p2", "d2", [reading(i) for i in range(3)])
        batches = batches_from_rows(box.read(), "gw-1", max_samples=10)
    assert [len(b.row_ids) for b in batches] == [10, 10, 5, 3]
    decoded = [decode_sample_batch(b.payload, now_ms=T0) for b in batches]
    assert [s.seq for s in decoded[0].samples] == list(range(T0, T0 + 10))
    assert decoded[3].patient_id == "p2" and decoded[3].gateway_id == "gw-1"
    assert json.loads(batches[0].payload)["v"] == 1
    assert batches[0].topic == topics.samples_topic("p1", "d1")


def test_batches_close_before_the_payload_limit_the_service_enforces(tmp_path: Path) -> None:
    """500 contract-valid samples with 64 RR intervals each encode to ~480 KB: too much for one."""
    readings = [
        Reading(
            time_ms=T0 + i * 1000,
            heart_rate_bpm=72.123456789,
            rr_intervals_s=tuple(0.8 + ((i * 64 + k) % 997) * 1.234567e-4 for k in range(64)),
            skin_temperature_c=33.123456789,
        )
        for i in range(500)
    ]
    with Outbox(tmp_path / "o.db", clock_ms=lambda: T0) as box:
        assert box.append("p1", "d1", readings).accepted == 500
        box.append("p2", "d2", [reading(i) for i in range(3)])
        rows = box.read(limit=1000)
    batches = batches_from_rows(rows, "gw-1")
    d1_bytes = sum(len(b.payload) for b in batches if b.topic == topics.samples_topic("p1", "d1"))
    assert d1_bytes > MAX_PAYLOAD_BYTES  # the case needs more than one batch
    delivered = [
        (batch.device_id, sample.seq)
        for batch in (decode_sample_batch(b.payload, now_ms=T0 + 500_000) for b in batches)
        for sample in batch.samples
    ]
    assert sorted(delivered) == sorted((r.device_id, r.seq) for r in rows)  # each exactly once
    assert sorted(i for b in batches for i in b.row_ids) == [r.row_id for r in rows]


@pytest.mark.parametrize(
    ("failure", "attempt", "jitter", "expected"),
    [
        (ConnectFailure.REFUSED, 1, 0.0, 0.25),
        (ConnectFailure.REFUSED, 2, 0.0, 0.5),
        (ConnectFailure.LOST, 4, 0.0, 2.0),
        (ConnectFailure.TIMEOUT, 10, 0.0, 15.0),  # capped
        (ConnectFailure.NETWORK, 100, 1.0, 15.0),  # jitter never exceeds the cap
        (ConnectFailure.REFUSED, 3, 1.0, 1.2),
        (ConnectFailure.REFUSED, 3, -1.0, 0.8),
        (ConnectFailure.UNAVAILABLE, 1, 0.0, 0.25),
        (ConnectFailure.DNS, 1, 0.0, RECONNECT_DNS_DELAY_S),
        (ConnectFailure.NOT_AUTHORIZED, 1, 0.0, RECONNECT_CONFIG_DELAY_S),
        (ConnectFailure.TLS, 5, 0.0, RECONNECT_CONFIG_DELAY_S),
        (ConnectFailure.PROTOCOL, 1, -1.0, RECONNECT_CONFIG_DELAY_S * 0.8),
    ],
)
def test_reconnect_delay_table(
    failure: ConnectFailure, attempt: int, jitter: float, expected: float
) -> None:
    assert reconnect_delay_s(failure, attempt, jitter=jitter) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (ConnectionRefusedError(), ConnectFailure.REFUSED),
        (TimeoutError(), ConnectFailure.TIMEOUT),
        (socket.gaierror(), ConnectFailure.DNS),
        (ssl.SSLCertVerificationError(), ConnectFailure.TLS),
        (ConnectionResetError(), ConnectFailure.NETWORK),
        (OSError("unreachable"), ConnectFailure.NETWORK),
    ],
)
def test_classify_exception_table(exc: BaseException, failure: ConnectFailure) -> None:
    assert classify_exception(exc) is failure


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        (0, None),
        (134, ConnectFailure.NOT_AUTHORIZED),
        (135, ConnectFailure.NOT_AUTHORIZED),
        (136, ConnectFailure.UNAVAILABLE),
        (132, ConnectFailure.PROTOCOL),
        (133, ConnectFailure.PROTOCOL),
    ],
)
def test_classify_connack_table(code: int, failure: ConnectFailure | None) -> None:
    assert classify_connack(code) is failure


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl tool."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=flarewatch-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "ext.cnf")  # fmt: skip
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


def test_tls_with_ca_file_and_a_clear_failure_for_the_wrong_ca(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    other = tmp_path / "other"
    certs.mkdir()
    other.mkdir()
    ca, cert, key = make_certificates(certs)
    wrong_ca, _, _ = make_certificates(other)
    (tmp_path / "m").mkdir()
    tls = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\nallow_anonymous true"
    with MosquittoServer(tmp_path / "m", extra_config=tls) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        wrong = MqttPublisher(
            MqttSettings(url=url, ca_file=wrong_ca), Outbox(tmp_path / "a.db"), gateway_id="gw"
        )
        with wrong:
            wrong.submit("p1", "d1", [reading(0)])
            deadline = time.monotonic() + 10
            while wrong.status().last_failure is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert wrong.status().last_failure is ConnectFailure.TLS
        right = MqttPublisher(
            MqttSettings(url=url, ca_file=ca), Outbox(tmp_path / "a.db"), gateway_id="gw"
        )
        with right:
            assert right.wait_until_sent(10)
            assert right.status().connected


def test_stop_while_the_broker_never_answers_is_prompt_and_clean(tmp_path: Path) -> None:
    """A listener that accepts TCP but never sends CONNACK (a hung broker)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"mqtt://127.0.0.1:{silent.getsockname()[1]}"
        publisher = MqttPublisher(MqttSettings(url=url), Outbox(tmp_path / "o.db"), gateway_id="gw")
        publisher.start()
        assert publisher.submit("p1", "d1", [reading(0)]) == 1
        time.sleep(0.5)
        began = time.monotonic()
        publisher.stop()
        assert time.monotonic() - began < 2
        status = publisher.status()
        assert not status.connected and status.outbox.pending == 1
