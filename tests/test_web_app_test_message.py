"""A caregiver's test message from their account page, delivered for real to a local receiver.

Ann stands on Alex's care team (a channel at the local HTTP receiver) and on Cy's (one channel
there, one where nothing listens): the page lists where alerts reach her, redacted; the test
goes through every channel and says which failed; it is audited on each patient's trail and
limited to one a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.db.accounts import get_account, link_contact
from service.db.care_teams import add_contact
from service.db.models import AuditEvent
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, care_world, form_token, words

DEAD = "json://127.0.0.1:9/dead-end"
"""A channel where nothing listens."""


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", http.url("")) as built:
        with built.stack.db.session() as session:
            contact = add_contact(session, "p3", "Ann", [http.url("ann-for-cy"), DEAD])
            link_contact(session, get_account(session, "ann"), contact.id, built.clock())
        yield built


def test_a_caregiver_sees_where_alerts_reach_her_and_tests_every_channel(
    world: CareWorld, http: HttpReceiver, inbox: Inbox
):
    ann = world.signed_in("ann")
    page = ann.get("/app/account").text
    said = words(page)
    assert "About Alex: json://127.0.0.1" in said and "About Cy: json://127.0.0.1" in said
    assert http.url("ann") not in page and "dead-end" not in page  # redacted
    assert "Send me a test message" in said

    answer = ann.post("/app/account/test-message", data={"csrf": form_token(page)})
    assert answer.status_code == 200
    result = words(answer.text)
    assert "1 of 3 channels failed" in result and result.count("sent") == 2
    assert "FAILED: " in result
    inbox.wait_for("/ann", 2)  # "/ann" and "/ann-for-cy"
    by_path = {message.path_or_rcpt: message for message in inbox.items}
    assert len(inbox.items) == 2 and by_path.keys() == {"/ann", "/ann-for-cy"}
    for message in by_path.values():
        assert message.title == "flarewatch test"
        assert "Nothing is wrong" in message.body and "bpm" not in message.body
    assert "alerts about Alex reach you here" in by_path["/ann"].body
    assert "Test message for Ann: alerts about Cy reach you here" in by_path["/ann-for-cy"].body

    again = ann.post("/app/account/test-message", data={"csrf": form_token(page)})
    assert again.status_code == 429 and "try again in" in words(again.text)
    world.clock.advance(61)
    assert ann.post("/app/account/test-message", data={"csrf": form_token(page)}).status_code == 200
    with world.stack.db.session() as session:
        tested = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "channels_tested")
        ).all()
    assert {(e.patient_id, e.detail["channels"], e.detail["failed"]) for e in tested} == {
        ("p1", 1, 0),
        ("p3", 2, 1),
    }
    assert len(tested) == 4 and all("http" not in str(e.detail) for e in tested)


def test_only_caregivers_test_and_only_with_their_pages_form(world: CareWorld, inbox: Inbox):
    ann = world.signed_in("ann")
    assert ann.post("/app/account/test-message", data={}).status_code == 403  # no form token
    for username in ("bo", "rita"):
        other = world.signed_in(username)
        page = other.get("/app/account").text
        assert "Your alerts" not in page
        refused = other.post("/app/account/test-message", data={"csrf": form_token(page)})
        assert refused.status_code == 404
    assert inbox.items == []
