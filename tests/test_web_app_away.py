"""A caregiver away, from their account page: alerts go to the others first, for real.

Ann stands first on Alex's care team (before Dee) and second on Cy's (after Cid). Away for
8 hours, she is last on both; an alert about Alex reaches Dee at once, not her; back early, she is
told of it at once. Messages go to the local HTTP receiver; time is a fake clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from models.alarm import AlarmKind
from service.db.accounts import get_account, link_contact
from service.db.care_teams import add_contact
from service.db.models import AuditEvent, Contact
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, care_world, form_token, words


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", http.url("")) as built:
        with built.stack.db.session() as session:
            add_contact(session, "p1", "Dee", [http.url("dee")], now_s=built.clock())
            contact = add_contact(session, "p3", "Ann", [http.url("ann-for-cy")])
            link_contact(session, get_account(session, "ann"), contact.id, built.clock())
        yield built


def _ann_away_until(world: CareWorld) -> set[float | None]:
    with world.stack.db.session() as session:
        account = get_account(session, "ann")
        return {link.contact.away_until_s for link in account.contacts}


def test_away_from_the_account_page_puts_her_last_until_she_is_back(
    world: CareWorld, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    page = ann.get("/app/account").text
    assert "Away for" in words(page) and "1 week" in words(page)
    answer = ann.post("/app/account/away", data={"csrf": form_token(page), "for": "8h"})
    assert answer.status_code == 303
    assert _ann_away_until(world) == {world.clock() + 8 * 3600}, "on both of her teams"
    page = ann.get("/app/account").text
    assert "You are away until" in words(page) and "(in 8 hours 0 min)" in words(page)

    team = words(ann.get("/app/patients/p1").text).split("Care team")[1]
    assert "Ann (caregiver): away until " in team and "Dee (caregiver)" in team
    assert "Whoever is away is passed over: they hear of an alert only once everyone else" in team

    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    world.stack.scheduler.run_until_idle()
    [told] = inbox.wait_for("/dee", 1)
    assert inbox.to("/ann") == [], "away: Dee is told first"
    link = re.search(r"/ack/[A-Za-z0-9_-]+", told.body)
    assert link is not None
    ack_page = words(world.client().get(link.group(0)).text)
    assert "Away, and told only if nobody else answers: Ann (until " in ack_page

    back = ann.post("/app/account/back", data={"csrf": form_token(page)})
    assert back.status_code == 303
    world.stack.scheduler.run_until_idle()
    inbox.wait_for("/ann", 1)
    assert inbox.to("/ann")[0].title.startswith("CRITICAL"), "back first: told at once"
    assert _ann_away_until(world) == {None}
    assert "Away for" in words(ann.get("/app/account").text)
    with world.stack.db.session() as session:
        actions = [
            (e.action, e.patient_id)
            for e in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.in_(("contact_away", "contact_back")))
                .order_by(AuditEvent.id)
            )
        ]
    assert sorted(actions) == sorted(
        [
            ("contact_away", "p1"),
            ("contact_away", "p3"),
            ("contact_back", "p1"),
            ("contact_back", "p3"),
        ]
    )


def test_a_whole_team_away_says_so_on_the_patients_page(world: CareWorld) -> None:
    ann = world.signed_in("ann")
    page = ann.get("/app/account").text
    ann.post("/app/account/away", data={"csrf": form_token(page), "for": "1d"})
    with world.stack.db.session() as session:
        dee = session.scalars(select(Contact).where(Contact.name == "Dee")).one()
        dee.away_until_s = world.clock() + 3600
    said = words(ann.get("/app/patients/p1").text)
    assert "Everyone on the care team is away: alerts still reach them" in said


def test_only_caregivers_are_away_and_only_for_a_length_offered(world: CareWorld) -> None:
    ann = world.signed_in("ann")
    page = ann.get("/app/account").text
    assert ann.post("/app/account/away", data={"for": "8h"}).status_code == 403  # no form token
    for bad in ("", "forever", "-1h", "8h" * 500):
        refused = ann.post("/app/account/away", data={"csrf": form_token(page), "for": bad})
        assert refused.status_code == 422 and "Choose how long" in words(refused.text)
    assert _ann_away_until(world) == {None}
    for username in ("bo", "rita"):
        other = world.signed_in(username)
        own = other.get("/app/account").text
        assert "Away for" not in words(own)
        refused = other.post("/app/account/away", data={"csrf": form_token(own), "for": "8h"})
        assert refused.status_code == 404


def test_a_caregiver_on_no_team_is_told_so(world: CareWorld) -> None:
    with world.stack.db.session() as session:
        for link in get_account(session, "ann").contacts:
            link.contact.removed_s = world.clock()
    ann = world.signed_in("ann")
    page = ann.get("/app/account").text
    refused = ann.post("/app/account/away", data={"csrf": form_token(page), "for": "8h"})
    assert refused.status_code == 409 and "on no care team" in words(refused.text)


def test_away_every_week_from_the_account_page(world: CareWorld, inbox: Inbox) -> None:
    # the clock: Monday 17:00 in Berlin (Alex's and Cy's clock)
    ann = world.signed_in("ann")
    page = ann.get("/app/account").text
    assert "Away every" in words(page) and "Set the weekly absence" in words(page)
    weekdays = {f"day{day}": "on" for day in range(1, 6)}
    form = {"csrf": form_token(page), **weekdays, "from": "17:30", "to": "19:00"}
    assert ann.post("/app/account/away/schedule", data=form).status_code == 303
    said = words(ann.get("/app/account").text)
    assert "You are away every week: Mon, Tue, Wed, Thu, Fri from 17:30 to 19:00" in said
    assert _ann_away_until(world) == {None}, "not before 17:30"

    for _ in range(4):  # 17:40: away on both teams until 19:00
        world.clock.advance(600)
        world.stack.scheduler.run_until_idle()
    assert _ann_away_until(world) == {world.clock() - 40 * 60 + 2 * 3600}
    team = words(ann.get("/app/patients/p1").text).split("Care team")[1]
    assert "Ann (caregiver): away until 19:00" in team
    assert "(away every week: Mon, Tue, Wed, Thu, Fri from 17:30 to 19:00)" in team
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    assert inbox.wait_for("/dee", 1) and inbox.to("/ann") == [], "Dee first, as for any absence"

    page = ann.get("/app/account").text
    off = ann.post("/app/account/away/schedule/off", data={"csrf": form_token(page)})
    assert off.status_code == 303
    assert "You are away every week" not in words(ann.get("/app/account").text)
    with world.stack.db.session() as session:
        actions = [
            e.detail["schedule"]
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "away_schedule_set")
            )
        ]
    assert actions.count("Mon, Tue, Wed, Thu, Fri from 17:30 to 19:00") == 2  # her two teams
    assert actions.count(None) == 2


def test_a_weekly_absence_without_days_or_times_is_refused(world: CareWorld) -> None:
    ann = world.signed_in("ann")
    token = form_token(ann.get("/app/account").text)
    for form, says in (
        ({"from": "08:00", "to": "17:00"}, "choose at least one day of the week"),
        ({"day1": "on", "from": "08:00", "to": "08:00"}, "an absence that ends when it starts"),
        ({"day1": "on", "from": "8", "to": "17:00"}, "HH:MM"),
    ):
        answer = ann.post("/app/account/away/schedule", data={"csrf": token, **form})
        assert answer.status_code == 422 and says in words(answer.text)
    dee_like = world.signed_in("bo")  # a patient: not a caregiver
    page = dee_like.get("/app/account").text
    refused = dee_like.post(
        "/app/account/away/schedule", data={"csrf": form_token(page), "day1": "on"}
    )
    assert refused.status_code == 404
