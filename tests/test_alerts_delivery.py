"""Alert delivery for real through Apprise to a local SMTP server and a local HTTP receiver.

The scheduler runs on a fake clock (no sleeping through timeouts); deliveries are real network
sends to loopback servers.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from models.alarm import Severity
from service.alerts.tokens import TokenAction
from service.db import Alert, AuditEvent, Database, Delivery, Patient, Role
from service.db import session as db_session
from service.db.care_teams import PolicyUpdate, add_contact, remove_contact
from tests.alerting_helpers import (
    SECRET,
    AlertingStack,
    FakeClock,
    GatedReceiver,
    SmtpReceiver,
    build_stack,
    refused_smtp_url,
    register_team,
)


def open_alert(
    stack: AlertingStack, patient_id: str, severity: Severity, kind: str = "anaphylaxis"
) -> int:
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, patient_id)
        alert = stack.manager.open_alert(
            txn, patient, kind=kind, severity=severity, since_s=txn.now_s - 30
        )
        return alert.id


def step(stack, clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)
    stack.scheduler.run_until_idle()


def audit(stack, alert_id: int) -> list[AuditEvent]:
    with stack.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.alert_id == alert_id).order_by(AuditEvent.id)
            )
        )


def link_token(body: str, kind: str = "ack") -> str:
    match = re.search(rf"/{kind}/([A-Za-z0-9_.-]+)", body)
    assert match, body
    return match.group(1)


def test_critical_reaches_caregiver1_repeats_escalates_to_caregiver2_until_acked(
    service_db_url, inbox, http, smtp
):
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(
        stack.db,
        "p1",
        [("ann", [http.url("ann")]), ("bob", [smtp.url("bob@example.org")])],
        emergency=("ems", [http.url("ems")]),
    )
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    first = inbox.to("/ann")
    assert len(first) == 1 and "CRITICAL" in first[0].title
    assert "Give adrenaline auto-injector, call 112." in first[0].body
    assert inbox.to("bob") == []

    step(stack, clock, 60)
    step(stack, clock, 60)
    assert [m.title.startswith("REPEAT") for m in inbox.to("/ann")] == [False, True, True]
    assert inbox.to("bob") == []

    step(stack, clock, 60)  # ack timeout (180 s): caregiver 2 by e-mail
    bob = inbox.to("bob@example.org")
    assert len(bob) == 1 and "anaphylaxis" in bob[0].title
    step(stack, clock, 60)  # repeats now go to both caregivers
    assert len(inbox.to("/ann")) == 4 and len(inbox.to("bob@example.org")) == 2

    alert = stack.manager.redeem(link_token(bob[-1].body), TokenAction.ACK, via="test")
    assert alert.acked_by == "bob"
    before = len(inbox.items)
    for _ in range(6):
        step(stack, clock, 60)
    assert len(inbox.items) == before, "acknowledged alert kept notifying"
    assert inbox.to("/ems") == []
    actions = [e.action for e in audit(stack, alert_id)]
    assert actions.count("delivery_attempt") == 6 and "acknowledged" in actions
    stack.close()


def test_a_pause_sends_one_repeat_per_caregiver_then_the_usual_cadence(service_db_url, inbox, http):
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])])
    open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    for _ in range(3):  # ann told, repeated twice; then bob (the last level) is told
        step(stack, clock, 60)
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (3, 1)

    step(stack, clock, 600)  # the service was down for 10 min
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (4, 2)
    assert inbox.to("/ann")[-1].title.startswith("REPEAT")
    assert inbox.to("/bob")[-1].title.startswith("REPEAT")
    step(stack, clock, 30)
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (4, 2)
    step(stack, clock, 30)  # one interval after the catch-up repeat
    assert (len(inbox.to("/ann")), len(inbox.to("/bob"))) == (5, 3)
    stack.close()


def test_quiet_hours_ending_in_the_repeated_hour_hold_a_warning_once(service_db_url, inbox, http):
    """25 Oct 2026, Berlin: at the second 02:15 (CET) quiet hours end at the second 02:30."""
    second_0215_s = dt.datetime(2026, 10, 25, 1, 15, tzinfo=dt.UTC).timestamp()
    clock = FakeClock(second_0215_s - 60)
    stack = build_stack(service_db_url, clock)
    night = PolicyUpdate(quiet_hours="22:00-02:30", timezone="Europe/Berlin")
    register_team(stack.db, "p1", [("ann", [http.url("ann")])], policy=night)
    alert_id = open_alert(stack, "p1", Severity.WARNING, kind="flush")
    step(stack, clock, 60)  # the wearer's window is over, quiet hours hold the warning
    held = [e for e in audit(stack, alert_id) if e.action == "held_quiet_hours"]
    assert len(held) == 1 and inbox.to("/ann") == []
    assert stack.scheduler.next_due_s() == second_0215_s + 900
    step(stack, clock, 900)
    assert len(inbox.to("/ann")) == 1
    stack.close()


def test_broken_channels_retry_with_backoff_then_fall_through(service_db_url, inbox, http, smtp):
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(
        stack.db, "p1", [("ann", [refused_smtp_url(), http.url("ann-fail"), http.url("ann-ok")])]
    )
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    for _ in range(12):
        step(stack, clock, 1)
    assert len(inbox.to("/ann-ok")) == 1
    assert http.hits["/ann-fail"] == 3
    attempts = [e.detail for e in audit(stack, alert_id) if e.action == "delivery_attempt"]
    assert [a["ok"] for a in attempts] == [False] * 6 + [True]
    assert "Connection error" in attempts[0]["error"] and "500" in attempts[3]["error"]
    gave_up = [e for e in audit(stack, alert_id) if e.action == "channel_gave_up"]
    assert [e.detail["channel_index"] for e in gave_up] == [0, 1]
    with stack.db.session() as session:
        times = [
            e.time_s
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "delivery_attempt")
            )
        ]
    assert times[1] - times[0] == pytest.approx(1, abs=1) and times[2] - times[1] >= 2
    stack.close()


def test_unreachable_caregiver_escalates_at_once(service_db_url, inbox, http):
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("fail")]), ("bob", [http.url("bob")])])
    open_alert(stack, "p1", Severity.CRITICAL)
    for _ in range(5):
        step(stack, clock, 1)
    assert len(inbox.to("/bob")) == 1, "caregiver 2 must not wait for the 180 s ack timeout"
    stack.close()


def test_restart_mid_escalation_continues_without_duplicates(service_db_url, inbox, http, smtp):
    url = service_db_url
    clock = FakeClock()
    first = build_stack(url, clock)
    register_team(first.db, "p1", [("ann", [http.url("ann")]), ("bob", [smtp.url("bob@x.org")])])
    alert_id = open_alert(first, "p1", Severity.CRITICAL)
    first.scheduler.run_until_idle()
    step(first, clock, 60)
    assert len(inbox.to("/ann")) == 2
    first.close()  # "crash": a new process with new objects on the same database

    second = build_stack(url, clock)
    second.scheduler.run_until_idle()  # replaying the same instant must not resend anything
    assert len(inbox.to("/ann")) == 2
    step(second, clock, 60)
    assert len(inbox.to("/ann")) == 3
    step(second, clock, 60)
    assert len(inbox.to("bob@x.org")) == 1 and len(inbox.to("/ann")) == 3
    with second.db.session() as session:
        keys = session.scalars(select(Delivery.idempotency_key)).all()
        assert len(keys) == len(set(keys)) == 4
    assert sum(e.action == "delivery_attempt" for e in audit(second, alert_id)) == 4
    second.close()


def test_acknowledgement_never_stops_a_worsening_episode(service_db_url, inbox, http):
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])])
    alert_id = open_alert(stack, "p1", Severity.WARNING, kind="flush")
    step(stack, clock, 61)
    assert len(inbox.to("/ann")) == 1 and "WARNING" in inbox.to("/ann")[0].title
    stack.manager.acknowledge(alert_id, by="ann", via="test")
    step(stack, clock, 300)
    assert len(inbox.to("/ann")) == 1 and inbox.to("/bob") == []
    with stack.manager.transaction() as txn:
        alert = txn.session.get_one(Alert, alert_id)
        stack.manager.worsen_alert(txn, alert, Severity.CRITICAL, "test")
    stack.scheduler.run_until_idle()
    worse = inbox.to("/ann")
    assert len(worse) == 2 and worse[1].title.startswith("WORSE") and "CRITICAL" in worse[1].title
    step(stack, clock, 60)
    assert inbox.to("/ann")[-1].title.startswith("REPEAT")
    step(stack, clock, 120)
    assert len(inbox.to("/bob")) == 1
    stack.close()


def test_resolution_sends_all_clear_to_those_notified(service_db_url, inbox, http):
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])])
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    stack.scheduler.run_until_idle()
    with stack.manager.transaction() as txn:
        stack.manager.resolve_alert(txn, txn.session.get_one(Alert, alert_id), "test")
    step(stack, clock, 600)
    titles = [m.title for m in inbox.to("/ann")]
    assert len(titles) == 2 and titles[1].startswith("All clear")
    assert inbox.to("/bob") == []
    stack.close()


def test_a_notice_on_its_way_when_the_alert_ends_is_followed_by_the_all_clear(
    service_db_url, inbox, http
) -> None:
    """Told means reached: a message still being sent when the episode ends counts once it lands."""
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")])])
    alert_id = open_alert(stack, "p1", Severity.CRITICAL)
    ended: list[bool] = []

    def end_while_it_is_sent() -> None:
        if not ended:
            ended.append(True)
            with stack.manager.transaction() as txn:
                alert = txn.session.get_one(Alert, alert_id)
                stack.manager.resolve_alert(txn, alert, "episode_closed")

    http.on_post = end_while_it_is_sent
    step(stack, clock, 0)
    assert ended == [True]
    assert [m.title.split(" - ")[0] for m in inbox.wait_for("/ann", 2)] == [
        "CRITICAL: Alex",
        "All clear: Alex",
    ]
    stack.close()


SENDER_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from models.alarm import Severity
from service.db import Patient
from tests.alerting_helpers import build_stack
stack = build_stack(sys.argv[1])
with stack.manager.transaction() as txn:
    patient = txn.session.get_one(Patient, "p1")
    stack.manager.open_alert(txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL,
                             since_s=txn.now_s)
stack.scheduler.run_due()
time.sleep(600)
"""


def test_crash_during_a_send_resends_that_message_after_restart(service_db_url, inbox, http):
    url = service_db_url
    setup = build_stack(url)
    register_team(setup.db, "p1", [("ann", [http.url("ann-hang-once")])])
    setup.close()
    root = str(Path(__file__).resolve().parent.parent)
    sender = subprocess.Popen([sys.executable, "-c", SENDER_SCRIPT, url, root])
    try:
        assert inbox.wait_for("/ann-hang-once", 1, timeout_s=20), "first send never arrived"
        sender.kill()  # dies while the message is in flight: the row says "sending"
        sender.wait(10)
    finally:
        sender.kill()
        sender.wait(10)
    restarted = build_stack(url)
    restarted.scheduler.run_until_idle()
    assert len(inbox.to("/ann-hang-once")) == 2, "the interrupted message was not sent again"
    with restarted.db.session() as session:
        [delivery] = session.scalars(select(Delivery)).all()
        assert delivery.state == "sent" and delivery.attempts == 2
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "delivery_resumed_after_restart" in actions
    restarted.close()


def test_a_result_the_database_refused_is_recorded_later_and_the_message_falls_through(
    service_db_url, inbox, http, monkeypatch, caplog
):
    """A failed send whose outcome could not be saved stayed "sending": never retried, lost."""
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.3)  # also PostgreSQL's lock wait
    gated = GatedReceiver(status=500)
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    other = Database(service_db_url, secret_key=SECRET)
    try:
        register_team(stack.db, "p1", [("ann", [gated.url, http.url("ann-backup")])])
        open_alert(stack, "p1", Severity.CRITICAL)
        stack.scheduler.run_due()  # the first channel's send is now in flight
        assert gated.hit.wait(10)
        with other.session() as session:  # another writer holds the database past the wait
            session.get(Patient, "p1")
            gated.release.set()  # the send fails; its result cannot be written now
            deadline = time.monotonic() + 10
            while "could not record the result" not in caplog.text:
                assert time.monotonic() < deadline, "the result was recorded despite the lock"
                time.sleep(0.02)
        for _ in range(6):  # the database is back: retries, then the next channel
            step(stack, clock, 5)
        assert len(inbox.to("/ann-backup")) == 1, "the alert never reached the second channel"
        with stack.db.session() as session:
            states = session.scalars(select(Delivery.state).order_by(Delivery.id)).all()
        assert states == ["failed", "sent"]
    finally:
        gated.close()
        other.dispose()
        stack.close()


def test_all_clear_failing_after_a_caregiver_left_is_recorded(service_db_url, inbox, http, caplog):
    """Resolved alerts keep their level; the care team shrank under it (an IndexError)."""
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    bobs_server = SmtpReceiver(inbox).__enter__()
    ids = register_team(
        stack.db, "p1", [("ann", [http.url("ann")]), ("bob", [bobs_server.url("bob@x.org")])]
    )
    try:
        alert_id = open_alert(stack, "p1", Severity.CRITICAL)
        step(stack, clock, 0)
        step(stack, clock, 180)  # bob (level 1) is alerted
        assert len(inbox.to("bob@x.org")) == 1
        bobs_server.__exit__()  # and then his mail server is gone: his all-clear is refused
        with stack.manager.transaction() as txn:
            alert = txn.session.get_one(Alert, alert_id)
            stack.manager.resolve_alert(txn, alert, "episode_closed")
        with stack.db.session() as session:
            remove_contact(session, ids["ann"], clock())
        for _ in range(4):  # bob's all-clear fails and is retried until it gives up
            step(stack, clock, 30)
        with stack.db.session() as session:
            bobs = session.scalars(
                select(Delivery.state).where(Delivery.contact_id == ids["bob"])
            ).all()
        assert "sending" not in bobs and bobs[-1] == "failed"
        assert "could not record the result" not in caplog.text
    finally:
        stack.close()


def test_a_contact_added_during_an_alert_that_had_nobody_left_to_tell_gets_it(
    service_db_url, inbox, http
):
    """Such alerts had no next action: nobody added later ever heard of them."""
    clock = FakeClock()
    stack = build_stack(service_db_url, clock)
    register_team(stack.db, "p1", [])
    register_team(stack.db, "p2", [("bea", [http.url("bea")])])
    try:
        open_alert(stack, "p1", Severity.CRITICAL)  # nobody on the team yet
        open_alert(stack, "p2", Severity.WARNING)
        step(stack, clock, 61)  # bea, p2's last level, is told of the warning: nothing left
        assert len(inbox.to("/bea")) == 1
        with stack.db.session() as session:
            add_contact(session, "p1", "ann", [http.url("ann")])
            add_contact(session, "p2", "erin", [http.url("erin")], role=Role.EMERGENCY)
        step(stack, clock, 0)
        assert len(inbox.to("/ann")) == 1, "the ongoing critical alert never reached ann"
        step(stack, clock, 180)
        assert len(inbox.to("/erin")) == 1, "the unacknowledged warning never escalated"
    finally:
        stack.close()
