"""A channel that stopped delivering is shown: on the patient's page and on its owner's account.

Alex's team is Ann (a working channel at the local HTTP receiver) then Dee (a channel where
nothing listens); Cy's is Cid then Ann again, on a dead channel. After real alerts, each page
says whose last message failed, and Ann's account page says what became of each of her channels.
A channel that broke and was mended is cleared by a test message that arrives, and a test that
fails marks it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.alarm import AlarmKind
from service.db.accounts import get_account, link_contact
from service.db.care_teams import add_contact
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, care_world, form_token, words

DEAD = "json://127.0.0.1:9/dead-end"
"""A channel where nothing listens."""


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", http.url("")) as built:
        with built.stack.db.session() as session:
            add_contact(session, "p1", "Dee", [DEAD], now_s=built.clock())
            ann_for_cy = add_contact(session, "p3", "Ann", [DEAD], now_s=built.clock())
            link_contact(session, get_account(session, "ann"), ann_for_cy.id, built.clock())
        yield built


def _escalate(world: CareWorld, minutes: int = 10) -> None:
    """Let the acknowledgement timeouts and the dead channel's retries run out."""
    for _ in range(minutes * 2):
        world.clock.advance(30)
        world.stack.scheduler.run_until_idle()


def test_whose_last_message_failed_is_shown(world: CareWorld, inbox: Inbox) -> None:
    ann = world.signed_in("ann")
    before = words(ann.get("/app/patients/p1").text)
    assert "did not arrive" not in before
    account = words(ann.get("/app/account").text)
    assert account.count("no alert sent this way in the last 30 days") == 2

    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    world.episode("p3", AlarmKind.ANAPHYLAXIS)
    _escalate(world)
    inbox.wait_for("/ann", 1)
    inbox.wait_for("/cid", 1)

    team = words(ann.get("/app/patients/p1").text).split("Care team")[1]
    assert "Dee (caregiver). Their last message did not arrive, " in team
    assert "Ann (caregiver)." not in team, "Ann's messages arrived"
    account = words(ann.get("/app/account").text)
    alex, cy = account.split("About Alex: ")[1], account.split("About Cy: ")[1]
    assert ": the last message arrived " in alex.split("About")[0]
    assert ": the last message FAILED " in cy.split("About")[0]
    assert "dead-end" not in account, "channels stay redacted"


def _test_message(world: CareWorld, username: str) -> str:
    """What the test message page says (a minute after any earlier test: one a minute)."""
    world.clock.advance(61)
    client = world.signed_in(username)
    token = form_token(client.get("/app/account").text)
    answer = client.post("/app/account/test-message", data={"csrf": token})
    assert answer.status_code == 200
    return words(answer.text)


def _ann_on_alexs_team(world: CareWorld) -> str:
    team = words(world.signed_in("ann").get("/app/patients/p1").text).split("Care team")[1]
    return team.split("Dee (caregiver)")[0]


def test_a_test_message_that_arrives_clears_the_mark_and_one_that_fails_sets_it(
    world: CareWorld, http: HttpReceiver, inbox: Inbox
) -> None:
    http.refusing.add("/ann")  # Ann's phone app was logged out: her pushes fail
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    _escalate(world)
    assert "Their last message did not arrive" in _ann_on_alexs_team(world)
    alex = words(world.signed_in("ann").get("/app/account").text).split("About Alex: ")[1]
    assert ": the last message FAILED " in alex.split("About")[0]

    http.refusing.discard("/ann")  # she signs in again, and tests
    _test_message(world, "ann")
    inbox.wait_for("/ann", 1)
    assert "did not arrive" not in _ann_on_alexs_team(world), "the test got through"
    alex = words(world.signed_in("ann").get("/app/account").text).split("About Alex: ")[1]
    assert ": your test message arrived " in alex.split("About")[0]
    cy = words(world.signed_in("ann").get("/app/account").text).split("About Cy: ")[1]
    assert ": your test message FAILED " in cy.split("About")[0], "her dead channel for Cy"

    http.refusing.add("/ann")  # broken again: a test that fails says so at once
    said = _test_message(world, "ann")
    assert "FAILED" in said
    team = _ann_on_alexs_team(world)
    assert "Ann (caregiver). Their last message did not arrive, " in team
    alex = words(world.signed_in("ann").get("/app/account").text).split("About Alex: ")[1]
    assert ": your test message FAILED " in alex.split("About")[0]
    assert "dead-end" not in alex, "channels stay redacted"
