"""The retained message on a patient's alerts topic tells its worst open alert (real Mosquitto)."""

from __future__ import annotations

import json
import queue
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from flarewatch.settings import MqttSettings
from flarewatch.topics import alerts_topic
from models.alarm import Severity
from service.alerts.mqtt_bridge import MqttAlertBridge
from service.db import Alert, Patient
from tests.alerting_helpers import FakeClock, stack_for_ann


@pytest.fixture
def stack(service_db_url, http, mosquitto):
    clock = FakeClock()
    built = stack_for_ann(service_db_url, http, clock)
    built.clock = clock
    bridge = MqttAlertBridge(MqttSettings(url=mosquitto.url), built.manager)
    bridge.start()
    assert bridge.wait_ready()
    built.bridge = bridge
    yield built
    bridge.stop()
    built.close()


def open_alert(stack, kind: str, severity: Severity, signal: str | None = None) -> int:
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        return stack.manager.open_alert(
            txn, patient, kind=kind, severity=severity, since_s=txn.now_s, signal=signal
        ).id


def resolve(stack, alert_id: int) -> None:
    with stack.manager.transaction() as txn:
        stack.manager.resolve_alert(txn, txn.session.get_one(Alert, alert_id), "test")


class Siren:
    """A subscriber to one patient's alert events; ``retained`` are those the broker kept."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[bool, dict]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"siren-{uuid.uuid4()}")
        self.client.on_message = lambda _c, _u, m: self.events.put(
            (bool(m.retain), json.loads(m.payload))
        )
        self.client.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
        self.client.subscribe(alerts_topic("p1"), qos=1)
        self.client.loop_start()

    def next(self) -> tuple[bool, dict]:
        return self.events.get(timeout=10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def retained_now(url: str) -> dict:
    """What a siren that (re)connects now reads first."""
    siren = Siren(url)
    try:
        retained, event = siren.next()
        assert retained
        return event
    finally:
        siren.close()


def test_a_resolved_lost_signal_does_not_hide_an_active_critical_alert(stack, mosquitto):
    live = Siren(mosquitto.url)
    try:
        critical = open_alert(stack, "anaphylaxis", Severity.CRITICAL)
        assert live.next()[1]["alert_id"] == critical
        no_data = open_alert(stack, "no_data", Severity.WARNING, signal="band-2")
        assert live.next()[1]["alert_id"] == no_data
        resolve(stack, no_data)
        seen = live.next()[1]
        assert (seen["alert_id"], seen["event"]) == (no_data, "resolved"), "event not published"

        state = retained_now(mosquitto.url)
        assert (state["alert_id"], state["event"], state["severity"], state["state"]) == (
            critical,
            "opened",
            "critical",
            "active",
        )

        stack.manager.acknowledge(critical, by="ann", via="test")
        assert live.next()[1]["event"] == "acknowledged"
        warning = open_alert(stack, "anaphylaxis", Severity.WARNING)
        assert live.next()[1]["alert_id"] == warning
        assert retained_now(mosquitto.url)["alert_id"] == warning, "unacknowledged goes first"
        stack.manager.cancel(warning, via="test")
        assert (live.next()[1]["event"], live.next()[1]["event"]) == ("cancelled", "acknowledged")
        assert retained_now(mosquitto.url)["alert_id"] == critical

        resolve(stack, critical)
        assert live.next()[1]["event"] == "resolved"
        state = retained_now(mosquitto.url)
        assert (state["alert_id"], state["event"]) == (critical, "resolved")
    finally:
        live.close()
