"""Drills: a practice alert through the whole chain, delivered for real to a local receiver.

Alex's team is Ann then Dee. Ann starts a drill from Alex's page: it reaches her at once, then
Dee after the acknowledgement timeout, with DRILL first in every message; Dee's "I'm on it"
ends it, the all-clear tells both who answered, and the page keeps the result. Unanswered, a
drill ends by itself after 10 minutes. It never stands beside a real alert.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models.alarm import AlarmKind
from service.alerts.const import DRILL_MAX_S
from service.db.models import Alert, AuditEvent
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, form_token, words, world_with_dee


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with world_with_dee(tmp_path, http) as built:
        yield built


def _start(world: CareWorld, client, patient_id: str = "p1"):
    page = client.get(f"/app/patients/{patient_id}").text
    return client.post(f"/app/patients/{patient_id}/drill", data={"csrf": form_token(page)})


def _step(world: CareWorld, seconds: float) -> None:
    world.clock.advance(seconds)
    world.stack.scheduler.run_until_idle()


def test_a_drill_goes_as_an_alert_would_and_the_first_answer_ends_it(
    world: CareWorld, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    assert "No drill yet." in words(ann.get("/app/patients/p1").text)
    assert _start(world, ann).status_code == 303
    _step(world, 0)
    [first] = inbox.wait_for("/ann", 1)
    assert first.title == "DRILL - CRITICAL: Alex - practice alert - act now"
    assert first.body.startswith("This is a DRILL: nothing is wrong.")
    assert "In a real alert: Adrenaline auto-injector" in first.body
    assert "A drill is going on" in words(ann.get("/app/patients/p1").text)
    again = _start(world, ann)
    assert again.status_code == 409 and "a drill is going on" in words(again.text)

    _step(world, 180)  # nobody answered: the next person, as in a real alert
    dee = inbox.wait_for("/dee", 1)[0]
    assert dee.title.startswith("DRILL - CRITICAL: Alex - practice alert - nobody answered")
    link = re.search(r"/ack/[A-Za-z0-9_-]+", dee.body)
    assert link is not None
    assert world.client().post(link.group(0)).status_code == 200  # Dee: I'm on it
    _step(world, 0)
    ann_clear = inbox.wait_for("/ann", 1 + 3 + 1)[-1]  # first, three repeats, the all-clear
    assert ann_clear.title.startswith("DRILL - All clear: Alex")
    assert "The drill is over: Dee answered (after 3 min)." in ann_clear.body
    assert inbox.wait_for("/dee", 2)[-1].title.startswith("DRILL - All clear")
    page = words(ann.get("/app/patients/p1").text)
    assert "Dee answered after 3 min 0 s." in page
    with world.stack.db.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert "drill_started" in actions and "acknowledged" in actions


def test_an_unanswered_drill_ends_by_itself_and_says_so(world: CareWorld, inbox: Inbox) -> None:
    ann = world.signed_in("ann")
    assert _start(world, ann).status_code == 303
    for _ in range(int(DRILL_MAX_S // 60) + 1):
        _step(world, 60)
    clears = [m for m in inbox.to("/ann") if m.title.startswith("DRILL - All clear")]
    assert clears and "nobody answered in 10 min" in clears[0].body
    assert "nobody answered" in words(ann.get("/app/patients/p1").text)
    with world.stack.db.session() as session:
        drill = session.scalars(select(Alert).where(Alert.kind == "drill")).one()
        assert drill.state == "resolved" and drill.acked_by is None


def test_no_drill_beside_a_real_alert_nor_for_others(world: CareWorld) -> None:
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    ann = world.signed_in("ann")
    refused = _start(world, ann)
    assert refused.status_code == 409 and "an alert is open" in words(refused.text)
    own = ann.get("/app/patients/p1").text
    assert ann.post("/app/patients/p2/drill", data={"csrf": form_token(own)}).status_code == 404
    assert ann.post("/app/patients/p1/drill", data={}).status_code == 403
    bo = world.signed_in("bo")
    assert _start(world, bo, "p2").status_code == 303, "a patient starts their own"


def test_a_real_alert_stops_the_drill_at_once(world: CareWorld, inbox: Inbox) -> None:
    ann = world.signed_in("ann")
    assert _start(world, ann).status_code == 303
    _step(world, 0)
    inbox.wait_for("/ann", 1)
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    _step(world, 0)
    _step(world, 120)
    titles = [m.title for m in inbox.to("/ann")]
    assert titles[0].startswith("DRILL - CRITICAL")
    assert not any(t.startswith("DRILL") for t in titles[1:]), titles
    assert any(t.startswith("CRITICAL: Alex - possible anaphylaxis") for t in titles)
    with world.stack.db.session() as session:
        drill = session.scalars(select(Alert).where(Alert.kind == "drill")).one()
        assert drill.state == "cancelled"
        actions = set(session.scalars(select(AuditEvent.action)))
    assert "drill_interrupted" in actions
