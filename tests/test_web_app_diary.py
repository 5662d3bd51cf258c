"""A patient's diary in the web app: what happened when, written by the patient or a caregiver.

Through HTTP against the real server on SQLite and PostgreSQL: a time typed on the patient's
clock is stored in UTC, the text is shown escaped and never audited, whoever may not see the
patient can neither read nor write their diary, and a bad entry is refused with the reason and
stores nothing.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from service.db.erasure import erase_patient_records
from service.db.models import AuditEvent, DiaryEntry
from tests import web_app_helpers
from tests.web_app_helpers import CareWorld, form_token

world = web_app_helpers.world
"""The care world on SQLite and PostgreSQL."""

BERLIN = ZoneInfo("Europe/Berlin")
SCRIPT = '<script>alert("x")</script> ate chilli'


def local(world: CareWorld, minutes_ago: float) -> str:
    """A ``datetime-local`` value on Alex's clock (Berlin)."""
    at = dt.datetime.fromtimestamp(world.clock() - minutes_ago * 60, BERLIN)
    return at.strftime("%Y-%m-%dT%H:%M")


def entries(world: CareWorld) -> list[DiaryEntry]:
    with world.stack.db.session() as session:
        return list(session.scalars(select(DiaryEntry).order_by(DiaryEntry.id)))


def test_a_caregiver_notes_a_trigger_on_the_patients_clock(world):
    ann = world.signed_in("ann")
    page = ann.get("/app/patients/p1").text
    assert 'type="datetime-local"' in page and "Nothing noted yet." in page
    answer = ann.post(
        "/app/patients/p1/diary",
        data={
            "csrf": form_token(page),
            "when": local(world, 30),
            "kind": "trigger",
            "text": SCRIPT,
        },
    )
    assert answer.status_code == 303
    [entry] = entries(world)
    assert entry.time_s == pytest.approx(world.clock() - 30 * 60, abs=60)
    assert (entry.kind, entry.text, entry.written_by) == ("trigger", SCRIPT, "Ann")
    shown = ann.get("/app/patients/p1").text
    assert "<script>alert" not in shown and "&lt;script&gt;" in shown
    assert "A possible trigger" in shown
    with world.stack.db.session() as session:
        [added] = session.scalars(select(AuditEvent).where(AuditEvent.action == "diary_added"))
    assert added.detail["kind"] == "trigger" and added.detail["via"] == "web"
    assert "chilli" not in str(added.detail)  # the text is health data: not on the trail
    [listed] = ann.get("/api/v1/patients/p1").json()["diary"]
    assert listed["text"] == SCRIPT and listed["written_by"] == "Ann"


def test_the_patient_writes_their_own_diary_and_removes_a_mistake(world):
    bo = world.signed_in("bo")
    token = form_token(bo.get("/app/patients/p2").text)
    for kind, text in (("medication", "cetirizine 10 mg"), ("symptom", "itchy arms")):
        data = {"csrf": token, "when": local(world, 5), "kind": kind, "text": text}
        assert bo.post("/app/patients/p2/diary", data=data).status_code == 303
    wrong = entries(world)[1]
    path = f"/app/patients/p2/diary/{wrong.id}/remove"
    assert bo.post(path, data={}).status_code == 403  # no form token
    assert bo.post(path, data={"csrf": token}).status_code == 303
    assert [e.text for e in entries(world)] == ["cetirizine 10 mg"]
    assert "A dose taken" in bo.get("/app/patients/p2").text


def test_nobody_else_reads_or_writes_a_patients_diary(world):
    ann = world.signed_in("ann")
    token = form_token(ann.get("/app/patients/p1").text)
    data = {"csrf": token, "when": local(world, 1), "kind": "note", "text": "slept badly"}
    assert ann.post("/app/patients/p1/diary", data=data).status_code == 303
    [entry] = entries(world)
    ben = world.signed_in("ben")
    ben_token = form_token(ben.get("/app").text)
    assert ben.post("/app/patients/p1/diary", data={**data, "csrf": ben_token}).status_code == 404
    assert (
        ben.post(f"/app/patients/p1/diary/{entry.id}/remove", data={"csrf": ben_token}).status_code
        == 404
    )
    assert (
        ben.post(  # Alex's entry through Bo's page, whom Ben does see
            f"/app/patients/p2/diary/{entry.id}/remove", data={"csrf": ben_token}
        ).status_code
        == 404
    )
    rita = world.signed_in("rita")
    assert rita.get("/app/patients/p1").status_code == 404
    assert "slept badly" not in rita.get("/app/research/episodes.csv").text
    assert len(entries(world)) == 1


@pytest.mark.parametrize(
    ("when_minutes_ago", "kind", "text", "said"),
    [
        (5, "trigger", "   ", "no text"),
        (5, "trigger", "x" * 501, "too long"),
        (-60, "trigger", "later", "in the future"),
        (400 * 24 * 60, "trigger", "long ago", "more than a year ago"),
        (5, "mood", "fine", "unknown diary kind"),
        (None, "trigger", "when?", "not a date and time"),
    ],
)
def test_a_bad_entry_is_refused_with_its_reason(world, when_minutes_ago, kind, text, said):
    ann = world.signed_in("ann")
    token = form_token(ann.get("/app/patients/p1").text)
    when = "yesterday-ish" if when_minutes_ago is None else local(world, when_minutes_ago)
    answer = ann.post(
        "/app/patients/p1/diary", data={"csrf": token, "when": when, "kind": kind, "text": text}
    )
    assert answer.status_code == 422 and said in answer.text
    assert entries(world) == []


def test_erasing_the_patient_erases_their_diary(world):
    bo = world.signed_in("bo")
    token = form_token(bo.get("/app/patients/p2").text)
    data = {"csrf": token, "when": local(world, 5), "kind": "trigger", "text": "wasp sting"}
    assert bo.post("/app/patients/p2/diary", data=data).status_code == 303
    with world.stack.db.session() as session:
        erased = erase_patient_records(session, "p2", world.clock())
    assert erased.diary_entries == 1 and entries(world) == []
