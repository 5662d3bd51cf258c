"""A patient's help link: the care team alerted without signing in, delivered for real.

Bo makes the link on their account page; opened with no session it shows one button and sends
nothing; pressed, caregiver Ben gets the critical call for help; the page follows it; a new link
replaces the old, and a removed one stops working.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.db.accounts import get_account, set_disabled
from service.db.models import AuditEvent
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import PASSWORD, CareWorld, care_world, form_token, words


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", http.url("")) as built:
        yield built


def make_link(world: CareWorld) -> str:
    bo = world.signed_in("bo")
    page = bo.get("/app/account").text
    assert "Make my help link" in page or "Make a new help link" in page
    made = bo.post(
        "/app/account/help-link", data={"csrf": form_token(page), "link-password": PASSWORD}
    )
    assert made.status_code == 200, made.text
    found = re.search(r'href="http://127\.0\.0\.1:9(/help/[A-Za-z0-9_-]+)"', made.text)
    assert found is not None, made.text
    return found.group(1)


def test_the_link_alerts_the_care_team_without_signing_in(world, inbox: Inbox):
    path = make_link(world)
    phone = world.client()  # no session at all
    shown = phone.get(path)
    assert shown.status_code == 200 and "I need help now" in words(shown.text)
    assert 'http-equiv="refresh"' not in shown.text
    world.stack.scheduler.run_until_idle()
    assert inbox.items == []  # opening it (or a link preview) sends nothing

    pressed = phone.post(path)
    assert pressed.status_code == 200
    said = words(pressed.text)
    assert "Your care team is being alerted now" in said and "nobody has answered yet" in said
    assert 'http-equiv="refresh"' in pressed.text  # follows the call while it lasts
    world.stack.scheduler.run_until_idle()
    (message,) = inbox.wait_for("/ben", 1)
    assert message.title == "CRITICAL: Bo - call for help - act now"

    ben = world.signed_in("ben")
    page = ben.get("/app/patients/p2").text
    alert_id = re.search(r"/alerts/(\d+)/ack", page)
    assert alert_id is not None
    ben.post(f"/app/patients/p2/alerts/{alert_id.group(1)}/ack", data={"csrf": form_token(page)})
    assert "Ben is on it" in words(phone.get(path).text)

    over = phone.post(f"{path}/end")
    assert over.status_code == 200 and "whoever was told hears all clear" in words(over.text)
    assert 'http-equiv="refresh"' not in over.text
    world.stack.scheduler.run_until_idle()
    assert inbox.wait_for("/ben", 2)[-1].title == "All clear: Bo - call for help is over"
    with world.stack.db.session() as session:
        trail = [
            (e.action, e.detail.get("via"))
            for e in session.scalars(select(AuditEvent))
            if e.action in ("help_link_made", "help_requested", "help_ended")
        ]
    assert trail == [
        ("help_link_made", None),
        ("help_requested", "help_link"),
        ("help_ended", "help_link"),
    ]


def test_a_new_link_replaces_the_old_and_a_removed_one_stops(world, inbox: Inbox):
    old = make_link(world)
    new = make_link(world)
    client = world.client()
    assert client.get(old).status_code == 404 and client.post(old).status_code == 404
    assert client.get(new).status_code == 200
    bo = world.signed_in("bo")
    page = bo.get("/app/account").text
    assert "Make a new help link" in page
    removed = bo.post("/app/account/help-link/remove", data={"csrf": form_token(page)})
    assert removed.status_code == 200 and "Your help link is removed" in words(removed.text)
    assert client.get(new).status_code == 404
    assert client.get("/help/not-a-link").status_code == 404
    world.stack.scheduler.run_until_idle()
    assert inbox.items == []


def test_refused_from_another_site_for_a_disabled_account_and_for_caregivers(world, inbox):
    path = make_link(world)
    client = world.client()
    other_site = client.post(path, headers={"sec-fetch-site": "cross-site"})
    assert other_site.status_code == 403
    with world.stack.db.session() as session:
        set_disabled(session, get_account(session, "bo"), True, world.clock())
    assert client.post(path).status_code == 404
    ben = world.signed_in("ben")
    page = ben.get("/app/account").text
    assert "help link" not in page.lower()
    made = ben.post(
        "/app/account/help-link", data={"csrf": form_token(page), "link-password": PASSWORD}
    )
    assert made.status_code == 404
    wrong = world.signed_in("ann").post(
        "/app/account/help-link",
        data={"csrf": form_token(world.signed_in("ann").get("/app").text), "link-password": "x"},
    )
    assert wrong.status_code == 403
    world.stack.scheduler.run_until_idle()
    assert inbox.items == []
