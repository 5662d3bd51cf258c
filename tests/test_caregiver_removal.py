"""``flarewatch admin caregiver remove``: a contact that was notified leaves the care team for good,
its history stays, and the alerts in progress carry on with the rest of the team.

The alerts go for real through Apprise to a loopback HTTP receiver; the scheduler runs on a fake
clock and the admin command is the real CLI on the same database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from flarewatch.cli import main
from models.alarm import Severity
from service.alerts.errors import TokenError
from service.alerts.tokens import TokenAction
from service.db import Alert, AuditEvent, Delivery, Patient
from service.db.care_teams import remove_contact
from service.db.models import DeliveryState
from tests.alerting_helpers import (
    SECRET,
    AlertingStack,
    FakeClock,
    build_stack,
    register_team,
    service_writes_possible,
)


@pytest.fixture
def admin(service_db_url, capsys, monkeypatch):
    """The admin CLI on the stack's database, with the stack's secret key."""
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")  # let monkeypatch undo load_settings' export
    monkeypatch.delenv("FLAREWATCH_CONFIG")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["admin", "--database-url", service_db_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def stacks(service_db_url):
    """Builds the alerting stack on the test database; closed even when the test fails."""
    built: list[AlertingStack] = []

    def build(clock: FakeClock) -> AlertingStack:
        built.append(build_stack(service_db_url, clock))
        return built[-1]

    yield build
    for stack in built:
        stack.close()


def open_critical(stack: AlertingStack) -> int:
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        alert = stack.manager.open_alert(
            txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s - 30
        )
        return alert.id


def step(stack: AlertingStack, clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)
    stack.scheduler.run_until_idle()


def actions(stack: AlertingStack) -> list[AuditEvent]:
    with stack.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_a_notified_caregiver_is_removed_kept_on_record_and_never_alerted_again(
    stacks, admin, inbox, http
):
    clock = FakeClock(time.time())  # the admin command stamps the removal with the wall clock
    stack = stacks(clock)
    # ann's webhook answers 500: her message waits for a retry when she is removed
    ids = register_team(
        stack.db, "p1", [("ann", [http.url("ann-fail")]), ("bob", [http.url("bob")])]
    )
    alert_id = open_critical(stack)
    stack.scheduler.run_until_idle()
    assert http.hits == {"/ann-fail": 1} and inbox.to("/bob") == []

    code, out, _ = admin("caregiver", "remove", str(ids["ann"]))
    assert code == 0 and "removed" in out
    # bob was next: the alert waited on ann, so he is told now, not after the ack timeout
    clock.now_s = time.time()
    stack.scheduler.run_until_idle()
    assert len(inbox.to("/bob")) == 1
    for _ in range(4):
        step(stack, clock, 60)
    assert http.hits["/ann-fail"] == 1, "a removed caregiver was retried or alerted again"
    assert len(inbox.to("/bob")) == 5  # the notice and four repeats

    with stack.db.session() as session:
        ann = session.scalars(select(Delivery).where(Delivery.contact_id == ids["ann"])).all()
        assert [d.state for d in ann] == [DeliveryState.SKIPPED]  # history kept
        assert session.get_one(Alert, alert_id).level == 0
    events = actions(stack)
    removed = [e for e in events if e.action == "contact_removed"]
    assert len(removed) == 1 and removed[0].detail["contact_id"] == ids["ann"]
    assert removed[0].patient_id == "p1" and removed[0].detail["deliveries_skipped"] == 1
    skipped = [e for e in events if e.action == "delivery_skipped"]
    assert [e.detail["reason"] for e in skipped] == ["contact_removed"]

    code, out, _ = admin("caregiver", "list", "p1")
    assert code == 0 and [line.split()[3] for line in out.splitlines()[1:]] == ["bob"]
    for argv in (["remove", str(ids["ann"])], ["test", str(ids["ann"])]):
        code, _, err = admin("caregiver", *argv)
        assert code == 1 and f"no contact with id {ids['ann']} on a care team" in err
    code, out, _ = admin("audit", "--patient", "p1")
    assert code == 0 and "contact_removed" in out


def test_removal_mid_escalation_keeps_who_was_told_and_revokes_their_links(
    stacks, admin, inbox, http
):
    clock = FakeClock()
    stack = stacks(clock)
    ids = register_team(
        stack.db,
        "p1",
        [("ann", [http.url("ann")]), ("bob", [http.url("bob")]), ("cat", [http.url("cat")])],
    )
    alert_id = open_critical(stack)
    stack.scheduler.run_until_idle()
    for _ in range(6):  # ann, 2 repeats; bob at 180 s, 2 repeats to both; cat at 360 s
        step(stack, clock, 60)
    told = (len(inbox.to("/ann")), len(inbox.to("/bob")), len(inbox.to("/cat")))
    assert told == (5, 3, 1)

    assert admin("caregiver", "remove", str(ids["ann"]))[0] == 0
    stack.scheduler.run_until_idle()
    with stack.db.session() as session:
        assert session.get_one(Alert, alert_id).level == 1  # bob, cat: still both told
    for _ in range(2):
        step(stack, clock, 60)
    # every repeat reaches bob and cat (none lost to an earlier message's idempotency key)
    told = (len(inbox.to("/ann")), len(inbox.to("/bob")), len(inbox.to("/cat")))
    assert told == (5, 5, 3)

    # a link already sent to ann stops working at once: she can no longer stop the escalation
    body = inbox.to("/ann")[-1].body
    token = re.search(r"/ack/([A-Za-z0-9_.-]+)", body)
    assert token, body
    with pytest.raises(TokenError, match="no longer on the care team") as refused:
        stack.manager.redeem(token.group(1), TokenAction.ACK, via="test")
    assert refused.value.reason == "revoked"
    with stack.db.session() as session:
        assert session.get_one(Alert, alert_id).acked_by is None


def test_a_test_message_does_not_hold_up_the_service_while_it_is_sent(
    stacks, admin, inbox, http, service_db_url
):
    """`caregiver test` sends over the network; the service must be able to write meanwhile."""
    stack = stacks(FakeClock())
    ids = register_team(stack.db, "p1", [("ann", [http.url("ann")])])
    seen: list[bool] = []
    http.on_post = lambda: seen.append(service_writes_possible(service_db_url))
    code, out, _ = admin("caregiver", "test", str(ids["ann"]))
    assert code == 0 and ": ok" in out
    assert seen == [True], "the service database was locked while the message was sent"


@pytest.mark.parametrize("second_channel", ["bob-ok", "bob-fail-2"])
def test_a_delivery_retrying_across_a_removal_still_falls_through(
    stacks, inbox, http, second_channel
):
    """bob's first channel answers 500; ann's removal renumbers the alert while he is retried.

    His retries running out must move on to his next channel, and once all his channels failed,
    to cat at once (not after the acknowledgement timeout).
    """
    clock = FakeClock()
    stack = stacks(clock)
    ids = register_team(
        stack.db,
        "p1",
        [
            ("ann", [http.url("ann")]),
            ("bob", [http.url("bob-fail"), http.url(second_channel)]),
            ("cat", [http.url("cat")]),
        ],
    )
    open_critical(stack)
    step(stack, clock, 0)
    step(stack, clock, 180)  # bob's turn: his first channel fails, retried in 1 s
    assert http.hits["/bob-fail"] == 1
    with stack.db.session() as session:
        remove_contact(session, ids["ann"], clock())
    for _ in range(6):  # three attempts 1 s and 2 s apart on each channel
        step(stack, clock, 2)
    assert http.hits["/bob-fail"] == 3
    if second_channel == "bob-ok":
        assert len(inbox.to("/bob-ok")) == 1, "bob's second channel never got the alert"
        assert inbox.to("/cat") == []
    else:
        assert http.hits.get("/bob-fail-2") == 3, "bob's second channel was never tried"
        assert len(inbox.to("/cat")) == 1


def test_a_message_in_flight_when_its_contact_is_removed_does_not_fall_through(stacks, inbox, http):
    """The removed contact's other channels are never queued, whichever round its step was in."""
    clock = FakeClock()
    stack = stacks(clock)
    ids = register_team(
        stack.db,
        "p1",
        [("ann", [http.url("ann-fail"), http.url("ann-2")]), ("bob", [http.url("bob")])],
    )

    def remove_ann_while_she_is_sent() -> None:
        http.on_post = None
        with stack.db.session() as session:
            remove_contact(session, ids["ann"], clock())

    http.on_post = remove_ann_while_she_is_sent
    open_critical(stack)
    for _ in range(6):
        step(stack, clock, 2)
    assert len(inbox.to("/bob")) == 1  # the alert went on to bob at once
    assert "/ann-2" not in http.hits
    with stack.db.session() as session:
        anns = session.scalars(select(Delivery).where(Delivery.contact_id == ids["ann"])).all()
    assert len(anns) == 1, "a delivery was queued for a contact taken off the team"
