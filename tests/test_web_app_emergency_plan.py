"""The emergency plan changed from the web app by the patient or their care team.

Every alert starts with the plan, so the next message carries the change (delivered for real to
a local HTTP receiver). A change made on a plan someone else changed since is refused, the
editor's text kept; the audit trail has who, when and from where, never the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models.alarm import AlarmKind
from service.const import EMERGENCY_PLAN_MAX_CHARS
from service.db.emergency_plan import change_plan
from service.db.models import AuditEvent, Patient
from tests import web_app_helpers
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, care_world, form_token, words

world = web_app_helpers.world  # on SQLite and on PostgreSQL

NEW_PLAN = "Auto-injector in the red pouch of the school bag.\nCall 112, lay flat, legs up."


@pytest.fixture
def delivering(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", http.url("")) as built:
        yield built


def _was(page: str) -> str:
    found = re.search(r'name="was" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


def _save(client, patient_id: str, page: str, plan: str, was: str | None = None):
    data = {"csrf": form_token(page), "was": was or _was(page), "plan": plan}
    return client.post(f"/app/patients/{patient_id}/plan", data=data)


def test_a_caregiver_changes_the_plan_and_the_next_alert_tells_it(
    delivering: CareWorld, inbox: Inbox
) -> None:
    ann = delivering.signed_in("ann")
    page = ann.get("/app/patients/p1").text
    assert "Change the plan" in words(page)
    assert _save(ann, "p1", page, NEW_PLAN.replace("\n", "\r\n") + "  \n").status_code == 303
    shown = words(ann.get("/app/patients/p1").text)
    assert "Auto-injector in the red pouch" in shown and "Changed by Ann, " in shown

    delivering.episode("p1", AlarmKind.ANAPHYLAXIS)
    [message] = inbox.wait_for("/ann", 1)
    assert message.body.endswith(f"Alex's emergency plan:\n{NEW_PLAN}")
    with delivering.stack.db.session() as session:
        assert session.get_one(Patient, "p1").emergency_plan == NEW_PLAN
        [change] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "emergency_plan_changed")
        ).all()
    assert change.patient_id == "p1"
    assert change.detail == {"by": "Ann", "via": "web", "chars": len(NEW_PLAN)}


def test_a_change_on_a_plan_changed_since_is_refused_and_kept_to_save(world: CareWorld) -> None:
    ann = world.signed_in("ann")
    page = ann.get("/app/patients/p1").text
    with world.stack.db.session() as session:
        patient = session.get_one(Patient, "p1")
        change_plan(
            session,
            patient,
            "Theirs.",
            was=None,
            by="administrator",
            now_s=world.clock(),
            via="cli",
        )
    refused = _save(ann, "p1", page, "Mine.")
    assert refused.status_code == 409
    said = words(refused.text)
    assert "Someone else changed the plan since you opened the page" in said
    assert "Theirs." in said and "Mine." in refused.text
    with world.stack.db.session() as session:
        assert session.get_one(Patient, "p1").emergency_plan == "Theirs."
    assert _save(ann, "p1", refused.text, "Mine.").status_code == 303, "saved knowingly"
    assert "Changed by Ann" in words(ann.get("/app/patients/p1").text)


def test_the_patient_changes_their_own_and_nobody_else_changes_any(world: CareWorld) -> None:
    bo = world.signed_in("bo")
    page = bo.get("/app/patients/p2").text
    assert (
        _save(bo, "p2", page, "Antihistamine first; adrenaline if it spreads.").status_code == 303
    )
    assert "Changed by Bo" in words(bo.get("/app/patients/p2").text)

    ann = world.signed_in("ann")
    own = ann.get("/app/patients/p1").text
    assert _save(ann, "p2", own, "Not hers to change.", _was(own)).status_code == 404
    rita = world.signed_in("rita")
    research = rita.get("/app/research").text
    data = {"csrf": form_token(research), "was": "0", "plan": "x"}
    assert rita.post("/app/patients/p1/plan", data=data).status_code == 404
    assert ann.post("/app/patients/p1/plan", data={"plan": "x"}).status_code == 403  # no token
    with world.stack.db.session() as session:
        assert "Not hers" not in session.get_one(Patient, "p2").emergency_plan
        assert session.get_one(Patient, "p1").emergency_plan != "x"


def test_a_plan_too_long_is_refused_and_control_characters_go(world: CareWorld) -> None:
    ann = world.signed_in("ann")
    page = ann.get("/app/patients/p1").text
    refused = _save(ann, "p1", page, "x" * (EMERGENCY_PLAN_MAX_CHARS + 1))
    assert refused.status_code == 422 and "at most 10000 fit" in words(refused.text)
    assert _save(ann, "p1", page, "Line one\x00\x1b[31m\r\nLine two\t \r\n").status_code == 303
    with world.stack.db.session() as session:
        assert session.get_one(Patient, "p1").emergency_plan == "Line one  [31m\nLine two"
