"""The care team's order and quiet hours, set from the patient's page by the patient or a
caregiver; audited, and what alerting then does (real deliveries to a local HTTP receiver).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models.alarm import AlarmKind
from service.db.models import AuditEvent, Patient
from tests import web_app_helpers
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, form_token, words, world_with_dee

world = web_app_helpers.world  # on SQLite and on PostgreSQL


@pytest.fixture
def delivering(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with world_with_dee(tmp_path, http) as built:
        yield built


def _up_path(page: str, name: str) -> str:
    found = re.search(
        rf'action="(/app/patients/p1/team/\d+/up)"><input[^>]+>'
        rf"<button[^>]*>Move <bdi>{name}</bdi> up",
        page,
    )
    assert found is not None, page
    return found.group(1)


def _audit(world: CareWorld, action: str) -> list[AuditEvent]:
    with world.stack.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_caregiver_moved_up_is_told_first(delivering: CareWorld, inbox: Inbox) -> None:
    ann = delivering.signed_in("ann")
    page = ann.get("/app/patients/p1").text
    assert "Move Ann up" not in words(page), "the first has no button"
    moved = ann.post(_up_path(page, "Dee"), data={"csrf": form_token(page)})
    assert moved.status_code == 303
    team = words(ann.get("/app/patients/p1").text).split("Care team")[1]
    assert team.index("Dee (caregiver)") < team.index("Ann (caregiver)")

    delivering.episode("p1", AlarmKind.ANAPHYLAXIS)
    inbox.wait_for("/dee", 1)
    assert inbox.to("/ann") == [], "Ann is second now: the acknowledgement timeout first"
    [reordered] = _audit(delivering, "contacts_reordered")
    assert reordered.patient_id == "p1" and reordered.detail["by"] == "Ann"
    assert reordered.detail["via"] == "web"

    again = ann.post(_up_path(page, "Dee"), data={"csrf": form_token(page)})
    assert again.status_code == 422 and "first already" in words(again.text)


def test_quiet_hours_set_shown_and_turned_off(world: CareWorld) -> None:
    bo = world.signed_in("bo")
    page = bo.get("/app/patients/p2").text
    assert "No quiet hours: warnings reach the care team at any time" in words(page)
    data = {"csrf": form_token(page), "start": "22:30", "end": "06:45"}
    assert bo.post("/app/patients/p2/quiet-hours", data=data).status_code == 303
    page = bo.get("/app/patients/p2").text
    assert "Quiet hours: 22:30 to 06:45, on the patient's clock" in words(page)
    with world.stack.db.session() as session:
        patient = session.get_one(Patient, "p2")
        assert (patient.quiet_start, patient.quiet_end) == ("22:30", "06:45")
    for bad in (
        {"start": "25:00", "end": "07:00"},
        {"start": "", "end": ""},
        {"start": "22:00"},
        {"start": "22:00", "end": "22:00"},
    ):
        refused = bo.post("/app/patients/p2/quiet-hours", data={"csrf": form_token(page)} | bad)
        assert refused.status_code == 422 and "quiet hours were not changed" in words(refused.text)
    off = bo.post("/app/patients/p2/quiet-hours/off", data={"csrf": form_token(page)})
    assert off.status_code == 303
    assert "No quiet hours" in words(bo.get("/app/patients/p2").text)
    changes = [
        (e.detail["quiet_hours"], e.detail["by"]) for e in _audit(world, "quiet_hours_changed")
    ]
    assert changes == [("22:30-06:45", "Bo"), ("off", "Bo")]


def test_only_the_patient_and_their_caregivers_change_them(world: CareWorld) -> None:
    ann = world.signed_in("ann")
    own = ann.get("/app/patients/p1").text
    data = {"csrf": form_token(own), "start": "22:00", "end": "07:00"}
    assert ann.post("/app/patients/p2/quiet-hours", data=data).status_code == 404
    assert ann.post("/app/patients/p2/quiet-hours/off", data=data).status_code == 404
    assert (
        ann.post(f"/app/patients/p2/team/{world.contacts['Ben']}/up", data=data).status_code == 404
    )
    assert (
        ann.post(
            "/app/patients/p1/quiet-hours", data={"start": "22:00", "end": "07:00"}
        ).status_code
        == 403
    )
    rita = world.signed_in("rita")
    research = rita.get("/app/research").text
    assert (
        rita.post(
            "/app/patients/p1/quiet-hours", data=data | {"csrf": form_token(research)}
        ).status_code
        == 404
    )
    wrong = ann.post(
        f"/app/patients/p1/team/{world.contacts['Ben']}/up", data={"csrf": form_token(own)}
    )
    assert wrong.status_code == 422 and "no caregiver of p1" in words(wrong.text)
    assert _audit(world, "quiet_hours_changed") == [] and _audit(world, "contacts_reordered") == []
