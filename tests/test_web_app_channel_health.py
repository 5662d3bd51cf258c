"""A channel that stopped delivering is shown: on the patient's page and on its owner's account.

Alex's team is Ann (a working channel at the local HTTP receiver) then Dee (a channel where
nothing listens); Cy's is Cid then Ann again, on a dead channel. After real alerts, each page
says whose last message failed, and Ann's account page says what became of each of her channels.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.alarm import AlarmKind
from service.db.accounts import get_account, link_contact
from service.db.care_teams import add_contact
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, care_world, words

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
