"""Acknowledgement by link, by API and by MQTT (real Mosquitto); alert events on MQTT."""

from __future__ import annotations

import json
import queue
import re
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from flarewatch.errors import ConfigError
from flarewatch.settings import MqttSettings
from flarewatch.topics import alert_ack_topic, alerts_topic
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.mqtt_bridge import MqttAlertBridge
from service.alerts.tokens import TokenAction
from service.db import Alert, AlertState, AuditEvent, Contact, Database, Episode, Patient
from service.db import session as db_session
from service.db.care_teams import add_contact
from service.episodes import EpisodeEngine
from tests.alerting_helpers import (
    SECRET,
    FakeClock,
    served_stack,
    stack_for_ann,
)


@pytest.fixture
def stack(service_db_url, http):
    with served_stack(service_db_url, http) as built:
        yield built


def raise_alert(
    stack, severity: Severity, kind: str = "anaphylaxis", signal: str | None = None
) -> int:
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        return stack.manager.open_alert(
            txn, patient, kind=kind, severity=severity, since_s=txn.now_s, signal=signal
        ).id


def token_in(body: str, path: str) -> str:
    return re.search(rf"/{path}/(\S+)", body).group(1)


def state_of(stack, alert_id: int) -> Alert:
    with stack.db.session() as session:
        return session.get_one(Alert, alert_id)


def test_link_get_shows_and_post_acknowledges(stack, inbox):
    alert_id = raise_alert(stack, Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    token = token_in(inbox.to("/ann")[0].body, "ack")
    client = stack.client
    page = client.get(f"/ack/{token}")
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert state_of(stack, alert_id).state == AlertState.ACTIVE, "a GET (link preview) acted"
    done = client.post(f"/ack/{token}")
    assert done.status_code == 200 and "Acknowledged" in done.text
    alert = state_of(stack, alert_id)
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acked_by == "ann"
    stack.clock.advance(600)
    stack.scheduler.run_until_idle()
    assert len(inbox.to("/ann")) == 1


def test_bad_expired_and_wrong_tokens_are_refused(stack, inbox):
    raise_alert(stack, Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    token = token_in(inbox.to("/ann")[0].body, "ack")
    client = stack.client
    assert client.get("/ack/not-a-token").status_code == 403
    assert client.post("/api/v1/alerts/ack", json={"token": token[:-3] + "AAA"}).status_code == 403
    wrong = client.post("/api/v1/alerts/im-ok", json={"token": token})
    assert wrong.status_code == 403 and wrong.json()["reason"] == "wrong_action"
    assert client.post("/api/v1/alerts/ack", json={"tok": 1}).status_code == 422
    stack.clock.advance(2 * 86400)
    expired = client.post("/api/v1/alerts/ack", json={"token": token})
    assert expired.status_code == 403 and expired.json()["reason"] == "expired"


def test_api_ack_and_im_ok(stack, inbox):
    warning_id = raise_alert(stack, Severity.WARNING)
    stack.scheduler.run_until_idle()
    cancel = token_in(inbox.to("/wearer")[0].body, "im-ok")
    client = stack.client
    response = client.post("/api/v1/alerts/im-ok", json={"token": cancel})
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert state_of(stack, warning_id).state == AlertState.CANCELLED

    late_id = raise_alert(stack, Severity.WARNING)
    stack.scheduler.run_until_idle()
    late = token_in(inbox.to("/wearer")[-1].body, "im-ok")
    stack.clock.advance(61)
    stack.scheduler.run_until_idle()
    refused = client.post("/api/v1/alerts/im-ok", json={"token": late})
    assert refused.status_code == 409
    ack = token_in(inbox.to("/ann")[-1].body, "ack")
    response = client.post("/api/v1/alerts/ack", json={"token": ack})
    assert response.json() == {
        "id": late_id,
        "patient_id": "p1",
        "kind": "anaphylaxis",
        "severity": "warning",
        "state": "acknowledged",
        "since_s": state_of(stack, late_id).since_s,
        "acked_by": "ann",
    }
    with stack.db.session() as session:
        actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.id)]
    assert "cancelled_by_wearer" in actions and "cancel_refused" in actions
    assert "acknowledged" in actions


def test_mqtt_publishes_events_and_accepts_acks(stack, inbox, mosquitto):
    settings = MqttSettings(url=mosquitto.url)
    bridge = MqttAlertBridge(settings, stack.manager)
    bridge.start()
    assert bridge.wait_ready()
    received: queue.Queue[tuple[str, dict]] = queue.Queue()
    siren = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="siren")
    siren.on_message = lambda _c, _u, m: received.put((m.topic, json.loads(m.payload)))
    siren.connect("127.0.0.1", int(mosquitto.url.rsplit(":", 1)[1]))
    siren.subscribe(alerts_topic("p1"), qos=1)
    siren.loop_start()
    try:
        alert_id = raise_alert(stack, Severity.CRITICAL)
        topic, event = received.get(timeout=10)
        assert topic == "flarewatch/v1/p1/alerts"
        assert (event["event"], event["severity"], event["alert_id"]) == (
            "opened",
            "critical",
            alert_id,
        )
        assert "heart_rate_bpm" not in json.dumps(event)
        stack.scheduler.run_until_idle()
        token = token_in(inbox.to("/ann")[0].body, "ack")
        siren.publish(alert_ack_topic("p1"), b"{not json", qos=1)
        siren.publish(alert_ack_topic("p2"), json.dumps({"token": token}), qos=1)  # wrong patient
        siren.publish(alert_ack_topic("p1"), json.dumps({"token": token}), qos=1)
        _, acked = received.get(timeout=10)
        assert acked["event"] == "acknowledged" and acked["acked_by"] == "ann"
        assert state_of(stack, alert_id).state == AlertState.ACKNOWLEDGED
        assert bridge.rejected["invalid"] == 1 and bridge.rejected["AlertingError"] == 1
    finally:
        siren.loop_stop()
        siren.disconnect()
        bridge.stop()


def test_mqtt_bridge_keeps_working_after_an_ack_it_cannot_apply(
    service_db_url, http, mosquitto, monkeypatch
):
    """An out-of-range id or a database error once stopped paho's thread: no acks, no events."""
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.3)  # also PostgreSQL's lock wait
    clock = FakeClock()
    built = stack_for_ann(service_db_url, http, clock)
    built.clock = clock
    bridge = MqttAlertBridge(MqttSettings(url=mosquitto.url), built.manager)
    bridge.start()
    assert bridge.wait_ready()
    button = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hall-button")
    button.connect("127.0.0.1", int(mosquitto.url.rsplit(":", 1)[1]))
    button.loop_start()
    other = Database(service_db_url, secret_key=SECRET)
    try:
        alert_id = raise_alert(built, Severity.CRITICAL)
        ack = alert_ack_topic("p1")
        button.publish(ack, json.dumps({"alert_id": 10**30}), qos=1).wait_for_publish(10)
        assert wait_until(lambda: bridge.rejected["invalid"] == 1)
        with other.session() as session:  # another writer holds the database past the wait
            session.get(Patient, "p1")
            button.publish(ack, json.dumps({"alert_id": alert_id}), qos=1).wait_for_publish(10)
            assert wait_until(lambda: bridge.rejected["error"] == 1)
        assert state_of(built, alert_id).state == AlertState.ACTIVE
        button.publish(ack, json.dumps({"alert_id": alert_id}), qos=1).wait_for_publish(10)
        assert wait_until(lambda: bridge.acked == 1), "the bridge stopped taking acks"
        assert state_of(built, alert_id).state == AlertState.ACKNOWLEDGED
    finally:
        button.loop_stop()
        button.disconnect()
        bridge.stop()
        other.dispose()
        built.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` (another thread makes it true) until it holds or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_wearer_link_on_a_lost_signal_says_the_band_was_taken_off(stack, inbox):
    alert_id = raise_alert(stack, Severity.WARNING, kind="no_data", signal="no_data")
    stack.scheduler.run_until_idle()
    [check] = inbox.to("/wearer")
    assert check.title.startswith("Check your band")
    token = token_in(check.body, "im-ok")
    page = stack.client.get(f"/im-ok/{token}")
    assert page.status_code == 200 and "I took it off on purpose" in page.text
    done = stack.client.post(f"/im-ok/{token}")
    assert done.status_code == 200 and "will not be alerted" in done.text
    assert state_of(stack, alert_id).state == AlertState.CANCELLED
    stack.clock.advance(3600)
    stack.scheduler.run_until_idle()
    assert inbox.to("/ann") == []


def reaction_then_all_clear(stack, *, unanswered_s: float = 0.0) -> int:
    """A real detector-shaped episode: onset, then resolution 15 min later; returns its id.

    ``unanswered_s``: the alert goes unacknowledged that long first, escalating down the team.
    """
    engine = EpisodeEngine(stack.manager)
    now = stack.clock()
    onset = {"onset": 1.0, "episode_no": 1.0}
    engine.on_alarm(
        Alarm("p1", now, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-9", evidence=onset)
    )
    stack.scheduler.run_until_idle()
    stack.clock.advance(unanswered_s)
    stack.scheduler.run_until_idle()
    stack.clock.advance(900 - unanswered_s)
    end = {"episode_no": 1.0}
    engine.on_alarm(
        Alarm("p1", stack.clock(), AlarmKind.ANAPHYLAXIS, Severity.WARNING, "fw-9", True, end)
    )
    stack.scheduler.run_until_idle()
    with stack.db.session() as session:
        [episode] = session.query(Episode).all()
        return episode.id


def label_of(stack, episode_id: int) -> tuple[str | None, str | None]:
    with stack.db.session() as session:
        episode = session.get_one(Episode, episode_id)
        return episode.label, episode.labelled_by


def test_all_clear_asks_whether_it_was_a_reaction_and_the_answer_labels_the_episode(stack, inbox):
    episode_id = reaction_then_all_clear(stack)
    all_clear = inbox.to("/ann")[-1]
    assert all_clear.title.startswith("All clear")
    assert "Was it a real reaction?" in all_clear.body
    token = token_in(all_clear.body, "label")
    client = stack.client

    page = client.get(f"/label/{token}")
    assert page.status_code == 200 and page.text.count('<form method="post"') == 2
    assert f'action="{token}/reaction"' in page.text
    assert label_of(stack, episode_id) == (None, None), "a GET (link preview) labelled"

    wrong = client.post(f"/label/{token}/maybe")
    assert wrong.status_code == 400 and "choose reaction or false-alarm" in wrong.text
    done = client.post(f"/label/{token}/reaction")
    assert done.status_code == 200 and "kept as a real reaction" in done.text
    assert label_of(stack, episode_id) == ("reaction", "ann")

    # the JSON endpoint: the latest answer wins, and it is audited with how it came
    response = client.post("/api/v1/episodes/label", json={"token": token, "label": "false-alarm"})
    assert response.status_code == 200
    assert response.json() == {
        "episode_id": episode_id,
        "label": "false_alarm",
        "labelled_by": "ann",
    }
    assert label_of(stack, episode_id) == ("false_alarm", "ann")
    with stack.db.session() as session:
        labelled = [
            e.detail
            for e in session.query(AuditEvent).order_by(AuditEvent.id)
            if e.action == "episode_labelled"
        ]
    assert [(d["label"], d["via"], d["labelled_by"]) for d in labelled] == [
        ("reaction", "link", "ann"),
        ("false_alarm", "api", "ann"),
    ]
    bad = client.post("/api/v1/episodes/label", json={"token": token, "label": "maybe"})
    assert bad.status_code == 422


def test_a_caregiver_with_a_long_name_can_label_too(stack, inbox, http):
    name = "Dr. " + "Anneliese-Marie " * 9  # 148 characters: a contact name may hold 200
    with stack.db.session() as session:
        add_contact(session, "p1", name, [http.url("long")])
    episode_id = reaction_then_all_clear(stack, unanswered_s=200)  # ann does not answer
    token = token_in(inbox.to("/long")[-1].body, "label")
    done = stack.client.post(f"/label/{token}/reaction")
    assert done.status_code == 200 and "kept as a real reaction" in done.text
    label, by = label_of(stack, episode_id)
    assert label == "reaction" and by is not None
    assert len(by) == Episode.labelled_by.type.length and by == name[: len(by) - 1] + "…"
    response = stack.client.post(
        "/api/v1/episodes/label", json={"token": token, "label": "false-alarm"}
    )
    assert response.status_code == 200 and response.json()["labelled_by"] == by
    with stack.db.session() as session, pytest.raises(ConfigError, match="needs a name"):
        add_contact(session, "p1", "  ", [http.url("nameless")])


def test_label_links_are_refused_for_other_tokens_expired_or_a_lost_signal(stack, inbox):
    reaction_then_all_clear(stack)
    client = stack.client
    ack = token_in(inbox.to("/ann")[0].body, "ack")
    wrong = client.post("/api/v1/episodes/label", json={"token": ack, "label": "reaction"})
    assert wrong.status_code == 403 and wrong.json()["reason"] == "wrong_action"
    assert client.get(f"/label/{ack}").status_code == 403
    label = token_in(inbox.to("/ann")[-1].body, "label")
    stack.clock.advance(15 * 86400)
    expired = client.post(f"/label/{label}/reaction")
    assert expired.status_code == 403 and "expired" in expired.text

    # a lost signal is about the band: a label token made for it is refused with the reason
    alert_id = raise_alert(stack, Severity.WARNING, kind="no_data", signal="no_data")
    stack.scheduler.run_until_idle()
    with stack.db.session() as session:
        contact_id = session.query(Contact).filter_by(name="ann").one().id
        link = stack.manager.link(TokenAction.LABEL, session.get_one(Alert, alert_id), contact_id)
    token = link.rsplit("/", 1)[1]
    refused = client.post("/api/v1/episodes/label", json={"token": token, "label": "reaction"})
    assert refused.status_code == 409 and "about the band" in refused.json()["detail"]
    page = client.post(f"/label/{token}/reaction")  # the page refuses it the same way
    assert page.status_code == 409 and "about the band" in page.text
    # ... and its all-clear does not ask
    stack.clock.advance(700)  # past the wearer's signal window: the caregiver is told
    stack.scheduler.run_until_idle()
    assert "no data" in inbox.to("/ann")[-1].title
    with stack.manager.transaction() as txn:
        stack.manager.resolve_alert(txn, txn.session.get_one(Alert, alert_id), "signal back")
    stack.scheduler.run_until_idle()
    all_clear = inbox.to("/ann")[-1]
    assert all_clear.title.startswith("All clear") and "/label/" not in all_clear.body
