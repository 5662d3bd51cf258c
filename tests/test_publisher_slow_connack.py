"""One unanswered MQTT 5 CONNECT does not cost the gateway MQTT 5 until it restarts.

A broker that leaves an MQTT 5 CONNECT unanswered may lack MQTT 5 (amqtt) or may just be slow
or starting. Before, the gateway fell back to 3.1.1 for good after one such silence, and under
3.1.1 a publish the broker's ACL denies is acknowledged as if delivered. Real Mosquitto behind a
TCP relay that leaves the first connection unanswered, then cuts the 3.1.1 session.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from collector.mqtt_connection import ProtocolChoice
from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from flarewatch.localservers import MosquittoServer
from flarewatch.mqtt import BrokerAddress
from flarewatch.settings import MqttSettings
from tests.test_publisher import Recorder, reading


class Relay:
    """Relays TCP to the broker; leaves the first ``silent`` connections unanswered."""

    def __init__(self, broker_port: int, silent: int, port: int = 0) -> None:
        self.broker_port = broker_port
        self.silent = silent
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.open: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(client)
            if self.connections <= self.silent:
                continue  # accepted, never answered: a broker busy or starting
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            self.open.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop_listening(self) -> None:
        """Close the port (connections are refused); those accepted stay open."""
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self.server.close()

    def cut(self) -> None:
        """Drop every connection (the link to the broker lost)."""
        for sock in self.open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.open.clear()

    def close(self) -> None:
        self.server.close()
        self.cut()


def wait_until(condition, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_mqtt_5_is_tried_again_after_one_unanswered_connect(
    mosquitto: MosquittoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector")
    relay = Relay(mosquitto.port, silent=1)
    recorder = Recorder(mosquitto.url)
    outbox = Outbox(tmp_path / "outbox.db")
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{relay.port}")
    publisher = MqttPublisher(settings, outbox, gateway_id="gw-1", max_reconnect_delay_s=0.5)
    try:
        with publisher:
            publisher.submit("p1", "band-1", [reading(i) for i in range(20)])
            # the first CONNECT times out (10 s): 3.1.1 for this connection
            assert publisher.wait_until_sent(30)
            assert publisher.status().mqtt_version == "3.1.1"
            relay.cut()
            assert wait_until(lambda: publisher.status().connected and relay.connections >= 3)
            assert publisher.status().mqtt_version == "5"
            publisher.submit("p1", "band-1", [reading(i) for i in range(20, 40)])
            assert publisher.wait_until_sent(20)
        recorder.wait_for(40)
        order, _ = recorder.per_device()
        seqs = order["band-1"]
        assert len(seqs) == 40 and seqs == sorted(seqs)
        messages = [r.getMessage() for r in caplog.records]
        assert any("did not answer an MQTT 5 CONNECT" in m for m in messages)
        assert not any("does not speak MQTT 5" in m for m in messages)
    finally:
        recorder.close()
        outbox.close()
        relay.close()


def test_a_broker_restarting_does_not_make_3_1_1_final(
    mosquitto: MosquittoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MQTT 5 unanswered, the port closed for the 3.1.1 try, then MQTT 5 unanswered again.

    3.1.1 was never answered in between: the broker was starting, not short of MQTT 5. Before,
    the second silence made 3.1.1 final, and with it the broker's publish refusals were lost.
    """
    caplog.set_level(logging.INFO, logger="collector")
    starting = Relay(mosquitto.port, silent=1)
    outbox = Outbox(tmp_path / "outbox.db")
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{starting.port}")
    publisher = MqttPublisher(settings, outbox, gateway_id="gw-1", max_reconnect_delay_s=0.5)
    up: Relay | None = None
    try:
        with publisher:
            publisher.submit("p1", "band-1", [reading(i) for i in range(20)])
            assert wait_until(lambda: starting.connections == 1)
            starting.stop_listening()  # the broker restarts: its port is closed for a while
            fell_back = "did not answer an MQTT 5 CONNECT"
            assert wait_until(lambda: fell_back in caplog.text)
            time.sleep(1.5)  # 3.1.1 refused at once, then MQTT 5 refused a few times
            up = Relay(mosquitto.port, silent=1, port=starting.port)  # up, slow to answer
            assert publisher.wait_until_sent(40)
            assert "does not speak MQTT 5" not in caplog.text
            up.cut()
            assert wait_until(lambda: publisher.status().connected and up.connections >= 3)
            assert publisher.status().mqtt_version == "5"
    finally:
        outbox.close()
        starting.close()
        if up is not None:
            up.close()


ADDRESS = BrokerAddress("broker.example", 1883, tls=False)


def test_two_unanswered_mqtt_5_connects_make_3_1_1_final() -> None:
    choice = ProtocolChoice(MqttSettings(url="mqtt://broker.example:1883"))
    assert choice.no_connack(ADDRESS) and choice.name == "3.1.1"
    choice.connected(ADDRESS, "gw", 0.0)
    assert choice.retries_v5() and choice.name == "5"
    assert choice.no_connack(ADDRESS) and choice.name == "3.1.1"
    choice.connected(ADDRESS, "gw", 0.0)
    assert not choice.retries_v5() and choice.name == "3.1.1"


def test_a_broker_silent_to_3_1_1_too_was_silent_not_short_of_mqtt_5() -> None:
    choice = ProtocolChoice(MqttSettings(url="mqtt://broker.example:1883"))
    for _ in range(3):  # a broker down: unanswered whatever the version
        assert choice.no_connack(ADDRESS) and choice.name == "3.1.1"
        assert not choice.no_connack(ADDRESS)
        assert choice.retries_v5() and choice.name == "5"
    choice.connected(ADDRESS, "gw", 0.0)  # up again, speaking MQTT 5: never falls back on silence
    assert not choice.no_connack(ADDRESS) and choice.name == "5"


def test_a_fixed_version_never_changes() -> None:
    choice = ProtocolChoice(MqttSettings(url="mqtt://broker.example:1883", protocol="5"))
    assert not choice.no_connack(ADDRESS) and not choice.retries_v5() and choice.name == "5"


def test_a_broker_refusing_3_1_1_at_tcp_was_down_not_short_of_mqtt_5() -> None:
    """A restarting broker: an MQTT 5 CONNECT unanswered, then the port closed, then silent again.

    The 3.1.1 attempt fails before any CONNECT is sent (the publisher does not ask ``no_connack``
    then, only ``retries_v5``): 3.1.1 was never answered, so neither silence tells that the broker
    lacks MQTT 5, and 3.1.1 must not become final.
    """
    choice = ProtocolChoice(MqttSettings(url="mqtt://broker.example:1883"))
    assert choice.no_connack(ADDRESS) and choice.name == "3.1.1"
    assert choice.retries_v5() and choice.name == "5"  # 3.1.1: connection refused
    assert choice.no_connack(ADDRESS) and choice.name == "3.1.1"
    assert choice.retries_v5() and choice.name == "5"
