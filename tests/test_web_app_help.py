"""A patient's "I need help now", delivered for real to their caregiver's local receiver.

Bo (patient account ``bo``) asks for help from the app: caregiver Ben gets a critical message
with Bo's emergency plan and an acknowledgement link, repeats and escalation as for a detector's
critical alert; Ben's page offers "I'm on it"; either of them ends it, and Ben hears all clear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.alerts.help_requests import HELP, HELP_AGAIN_AFTER_S
from service.db.care_teams import add_contact
from service.db.models import Alert, AlertState, AuditEvent, Role
from tests.alerting_helpers import REACTION_PLAN, HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, care_world, form_token, words


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", http.url("")) as built:
        yield built


def press(client, path: str, page: str):
    return client.post(path, data={"csrf": form_token(page)})


def help_alerts(world: CareWorld) -> list[Alert]:
    with world.stack.db.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == HELP)).all()
        session.expunge_all()
        return list(alerts)


def test_the_patient_asks_for_help_and_the_caregiver_is_alerted_at_once(world, inbox: Inbox):
    bo = world.signed_in("bo")
    home = bo.get("/app").text
    assert "I need help now" in words(home)
    answer = press(bo, "/app/patients/p2/help", home)
    assert answer.status_code == 303
    world.stack.scheduler.run_until_idle()
    (message,) = inbox.wait_for("/ben", 1)
    assert message.title == "CRITICAL: Bo - call for help - act now"
    assert "asked you for help from the flarewatch app" in message.body
    assert REACTION_PLAN.split(";")[0] in message.body and "/ack/" in message.body
    assert inbox.to("/ann") == []  # Alex's caregiver hears nothing of Bo
    link = re.search(r"/ack/[A-Za-z0-9_-]+", message.body)
    assert link is not None
    link_page = world.client().get(link.group(0))  # the link page, before anyone acts
    assert link_page.status_code == 200 and "call for help" in words(link_page.text).lower()
    (alert,) = help_alerts(world)
    assert alert.state == AlertState.ACTIVE and alert.severity == "critical"
    assert alert.episode_id is None  # nothing was measured

    ben = world.signed_in("ben")
    page = ben.get("/app/patients/p2").text
    said = words(page)
    assert "CRITICAL: call for help since" in said and "nobody has acknowledged it yet" in said
    assert "I need help now" not in said  # the patient's own button
    assert "It's over" not in said  # not beside "I'm on it", for a caregiver: once on it
    assert press(ben, f"/app/patients/p2/alerts/{alert.id}/ack", page).status_code == 303
    world.clock.advance(600)
    world.stack.scheduler.run_until_idle()
    assert len(inbox.to("/ben")) == 1  # acknowledged: no repeat
    assert "Ben is on it" in words(bo.get("/app/patients/p2").text)
    assert "It's over: all clear" in words(ben.get("/app/patients/p2").text)

    mine = bo.get("/app/patients/p2").text
    assert press(bo, f"/app/patients/p2/alerts/{alert.id}/end", mine).status_code == 303
    world.stack.scheduler.run_until_idle()
    inbox.wait_for("/ben", 2)
    assert inbox.to("/ben")[-1].title == "All clear: Bo - call for help is over"
    assert help_alerts(world)[0].state == AlertState.RESOLVED
    assert "Nothing going on" in words(bo.get("/app/patients/p2").text)
    with world.stack.db.session() as session:
        trail = [
            (e.action, e.detail.get("by"))
            for e in session.scalars(select(AuditEvent).where(AuditEvent.patient_id == "p2"))
            if e.action in ("help_requested", "acknowledged", "help_ended")
        ]
    assert trail == [("help_requested", "Bo"), ("acknowledged", "Ben"), ("help_ended", "Bo")]


def test_unanswered_it_repeats_and_pressing_again_re_alerts_at_most_once_a_minute(
    world, inbox: Inbox
):
    bo = world.signed_in("bo")
    home = bo.get("/app").text
    press(bo, "/app/patients/p2/help", home)
    press(bo, "/app/patients/p2/help", home)  # a double tap
    world.stack.scheduler.run_until_idle()
    assert len(inbox.wait_for("/ben", 1)) == 1 and len(help_alerts(world)) == 1
    world.clock.advance(HELP_AGAIN_AFTER_S)
    press(bo, "/app/patients/p2/help", home)
    world.stack.scheduler.run_until_idle()
    titles = [m.title for m in inbox.wait_for("/ben", 2)]
    assert titles[-1].startswith("WORSE, now CRITICAL: Bo - call for help")
    world.clock.advance(10 * 60)  # nobody answers: the alert repeats as a critical one does
    world.stack.scheduler.run_until_idle()
    assert any(t.startswith("REPEAT CRITICAL: Bo") for t in (m.title for m in inbox.to("/ben")))
    assert len(help_alerts(world)) == 1


def test_only_the_patient_asks_and_only_for_themselves(world, inbox: Inbox):
    ben = world.signed_in("ben")
    page = ben.get("/app/patients/p2").text
    assert press(ben, "/app/patients/p2/help", page).status_code == 403
    bo = world.signed_in("bo")
    home = bo.get("/app").text
    assert press(bo, "/app/patients/p1/help", home).status_code == 404  # not Bo's record
    assert bo.post("/app/patients/p2/help", data={}).status_code == 403  # no form token
    world.episode("p2")
    (alert_id,) = [
        a.id for a in _open_alerts(world) if a.kind != HELP
    ]  # a detector's alert: only a call for help is ended by hand
    mine = bo.get("/app/patients/p2").text
    assert "It's over" not in words(mine)
    assert press(bo, f"/app/patients/p2/alerts/{alert_id}/end", mine).status_code == 403
    world.stack.scheduler.run_until_idle()
    assert help_alerts(world) == [] and inbox.to("/ann") == []


def _open_alerts(world: CareWorld) -> list[Alert]:
    with world.stack.db.session() as session:
        alerts = session.scalars(select(Alert)).all()
        session.expunge_all()
        return list(alerts)


def test_the_wearer_answers_not_ok_to_a_warning_and_the_team_is_alerted_at_once(
    tmp_path, http: HttpReceiver, inbox: Inbox
):
    with care_world(f"sqlite:///{tmp_path / 'w.sqlite3'}", http.url("")) as world:
        with world.stack.db.session() as session:  # Bo's own phone: asked first
            add_contact(session, "p2", "Bo", [http.url("bo-phone")], role=Role.PATIENT)
        world.episode("p2")  # a flush warning: the wearer is asked first (60-s window)
        (check,) = inbox.wait_for("/bo-phone", 1)
        link = re.search(r"/im-ok/[A-Za-z0-9_-]+", check.body)
        assert link is not None
        client = world.client()
        asked = client.get(link.group(0))
        assert "I'm not OK: alert my caregivers now" in words(asked.text)
        assert inbox.to("/ben") == []  # the window is still open
        answer = client.post(f"{link.group(0)}/help")
        assert answer.status_code == 200 and "being alerted now" in words(answer.text)
        world.stack.scheduler.run_until_idle()
        titles = [m.title for m in inbox.wait_for("/ben", 1)]
        assert titles == ["CRITICAL: Bo - call for help - act now"]  # at once, not in 60 s
        bad = client.post("/im-ok/forged-token/help")
        assert bad.status_code in (400, 403, 404) and len(inbox.to("/ben")) == 1


def test_a_patient_who_must_still_turn_on_two_step_sign_in_can_still_ask(
    tmp_path, http: HttpReceiver, inbox: Inbox
):
    url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    with care_world(url, http.url(""), second_factor_roles=("patient",)) as world:
        bo = world.signed_in("bo")
        assert bo.get("/app").headers["location"] == "/app/account"  # the policy holds...
        page = bo.get("/app/account").text
        assert "I need help now" in words(page)  # ...but never holds back a call for help
        answer = press(bo, "/app/patients/p2/help", page)
        assert answer.status_code == 200 and "being alerted now" in words(answer.text)
        world.stack.scheduler.run_until_idle()
        assert inbox.wait_for("/ben", 1)[0].title == "CRITICAL: Bo - call for help - act now"
