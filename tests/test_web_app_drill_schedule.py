"""Drills on a schedule, set from the patient's page and started by the escalation scheduler.

Alex (Berlin) has Ann then Dee on the care team; the clock starts on Monday 24 November 2025 at
17:00 in Berlin. Messages are delivered for real to a local HTTP receiver.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models.alarm import AlarmKind
from service.alerts.drill_schedule import schedule_drills
from service.db.models import AuditEvent, Patient
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, form_token, words, world_with_dee

HOUR = 3600.0
DRILL_TITLE = "DRILL - CRITICAL: Alex - practice alert - act now"


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with world_with_dee(tmp_path, http) as built:
        yield built


def _set(world: CareWorld, username: str, every: str, at: str):
    client = world.signed_in(username)
    page = client.get("/app/account").text  # the session's token: any of its pages has it
    return client.post(
        "/app/patients/p1/drill/schedule",
        data={"csrf": form_token(page), "every": every, "at": at},
    )


def _next_drill_s(world: CareWorld) -> float | None:
    with world.stack.db.session() as session:
        return session.get_one(Patient, "p1").next_drill_s


def _drills_to(inbox: Inbox, path: str) -> list[str]:
    return [m.title for m in inbox.to(path) if m.title == DRILL_TITLE]


def _audit(world: CareWorld, action: str) -> list[dict]:
    with world.stack.db.session() as session:
        return [
            e.detail
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        ]


def test_a_drill_set_from_the_page_comes_by_itself_then_every_four_weeks(
    world: CareWorld, inbox: Inbox
) -> None:
    t0 = world.clock()
    assert "Drills come only when someone starts one." in words(
        world.signed_in("ann").get("/app/patients/p1").text
    )
    assert _set(world, "ann", "28", "18:30").status_code == 303
    page = words(world.signed_in("ann").get("/app/patients/p1").text)
    assert "A drill comes every 4 weeks at 18:30. The next: 18:30 CET" in page
    assert _next_drill_s(world) == t0 + 1.5 * HOUR  # 17:30 UTC

    world.stack.run_until(t0 + 1.5 * HOUR - 60)
    assert _drills_to(inbox, "/ann") == []
    world.stack.run_until(t0 + 1.5 * HOUR)
    [first] = inbox.wait_for("/ann", 1)
    assert first.title == DRILL_TITLE
    link = re.search(r"/ack/[A-Za-z0-9_-]+", first.body)
    assert link is not None
    assert world.client().post(link.group(0)).status_code == 200  # Ann: I'm on it
    assert "Ann answered after" in words(world.signed_in("ann").get("/app/patients/p1").text)
    [started] = _audit(world, "drill_started")
    assert started["by"] == "schedule" and started["via"] == "schedule"
    assert _audit(world, "drills_scheduled")[0] == {
        "every_days": 28, "at": "18:30", "by": "Ann", "via": "web"
    }  # fmt: skip
    # the same time on the patient's clock four weeks later (no clock change in between)
    assert _next_drill_s(world) == t0 + 1.5 * HOUR + 28 * 86_400

    assert _set(world, "ann", "", "18:30").status_code == 303
    assert _next_drill_s(world) is None
    assert "Drills come only when someone starts one." in words(
        world.signed_in("ann").get("/app/patients/p1").text
    )


def test_a_drill_waits_for_quiet_hours_to_end_and_for_an_open_alert(
    world: CareWorld, inbox: Inbox
) -> None:
    t0 = world.clock()  # 17:00 in Berlin
    client = world.signed_in("ann")
    page = client.get("/app/patients/p1").text
    quiet = {"csrf": form_token(page), "start": "18:00", "end": "19:00"}
    assert client.post("/app/patients/p1/quiet-hours", data=quiet).status_code == 303
    assert _set(world, "ann", "7", "18:30").status_code == 303
    world.stack.run_until(t0 + 2 * HOUR - 60)
    assert _drills_to(inbox, "/ann") == [], "a drill is critical: it would wake everyone"
    world.stack.run_until(t0 + 2 * HOUR)
    inbox.wait_for("/ann", 1)
    assert _drills_to(inbox, "/ann") == [DRILL_TITLE]
    assert [d["why"] for d in _audit(world, "drill_put_off")] == ["quiet_hours"]
    world.stack.run_until(t0 + 2 * HOUR + 15 * 60)  # unanswered: it ends after 10 min
    page = client.get("/app/patients/p1").text
    off = client.post("/app/patients/p1/quiet-hours/off", data={"csrf": form_token(page)})
    assert off.status_code == 303

    # a week later a real alert is open at the drill's time: the drill waits an hour
    due_s = _next_drill_s(world)
    assert due_s is not None
    world.stack.run_until(due_s - 120, step_s=6 * HOUR)
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    world.stack.run_until(due_s + HOUR - 60, step_s=60)
    assert _drills_to(inbox, "/ann") == [DRILL_TITLE], "never beside a real alert"
    assert _next_drill_s(world) == due_s + HOUR
    assert [d["why"] for d in _audit(world, "drill_put_off")] == ["quiet_hours", "alert_open"]


def test_a_weekly_drill_keeps_its_time_across_the_clock_change(world: CareWorld) -> None:
    friday = dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC).timestamp()  # 13:00 CET
    world.clock.now_s = friday
    with world.stack.db.session() as session:
        alex = session.get_one(Patient, "p1")
        schedule_drills(session, alex, 7, "18:00", friday, by="administrator", via="cli")
    assert _next_drill_s(world) == friday + 5 * HOUR  # 18:00 CET = 17:00 UTC
    world.stack.run_until(friday + 5 * HOUR)
    # the clocks go forward on Sunday: next Friday's 18:00 CEST is 16:00 UTC
    assert _next_drill_s(world) == friday + 7 * 86_400 + 4 * HOUR


@pytest.mark.parametrize(
    ("every", "at", "says"),
    [
        ("x", "18:00", "Choose how often drills come."),
        ("400", "18:00", "every 1 to 366 days, not every 400"),
        ("7", "25:00", "must look like 18:00"),
        ("7", "", "must look like 18:00"),
    ],
)
def test_bad_drill_settings_are_refused(world: CareWorld, every: str, at: str, says: str) -> None:
    answer = _set(world, "ann", every, at)
    assert answer.status_code == 422 and says in words(answer.text)
    assert _next_drill_s(world) is None


def test_only_the_care_team_sets_drills(world: CareWorld) -> None:
    assert _set(world, "ben", "7", "18:00").status_code == 404  # Ben looks after Bo, not Alex
    client = world.signed_in("ann")
    no_token = client.post("/app/patients/p1/drill/schedule", data={"every": "7", "at": "18:00"})
    assert no_token.status_code == 403
    assert _next_drill_s(world) is None
