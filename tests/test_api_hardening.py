"""The acknowledgement API against hostile or unlucky requests, over real HTTP (uvicorn).

What a link page may leak or allow (caching, Referer, framing, foreign content), oversized and
invalid bodies, a database that is busy, and old links of alerts that are over.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from models.alarm import Severity
from service.db import Alert, AlertState, Database, Patient
from service.db import session as db_session
from tests.alerting_helpers import (
    SECRET,
    AlertingStack,
    ApiServer,
    FakeClock,
    HttpReceiver,
    Inbox,
    build_stack,
    register_team,
    served_stack,
)


@pytest.fixture
def stack(tmp_path, http: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertingStack]:
    """Patient p1 with caregiver ann; the API on a real port; writers wait 0.3 s for the lock."""
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    with served_stack(f"sqlite:///{tmp_path}/fw.sqlite3", http) as built:
        yield built


def ack_token(stack: AlertingStack, inbox: Inbox) -> tuple[int, str]:
    """Raise a critical alert for p1 and return it with the token of ann's acknowledgement link."""
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        alert_id = stack.manager.open_alert(
            txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s
        ).id
    stack.scheduler.run_until_idle()
    return alert_id, re.search(r"/ack/(\S+)", inbox.to("/ann")[-1].body).group(1)


def state_of(stack: AlertingStack, alert_id: int) -> str:
    with stack.db.session() as session:
        return session.get_one(Alert, alert_id).state


def test_every_answer_forbids_caching_framing_the_referrer_and_foreign_content(stack, inbox):
    """A token in a URL must not outlive the visit: not cached, not sent on, not framed."""
    _, token = ack_token(stack, inbox)
    client = stack.client
    json_type = {"content-type": "application/json"}
    answers = [
        client.get(f"/ack/{token}"),  # the confirmation page
        client.get("/ack/not-a-token"),  # a refusal page
        client.post("/api/v1/alerts/ack", json={"token": "x" * 20}),  # a JSON refusal
        client.post("/api/v1/alerts/ack", content=b"{", headers=json_type),
        client.put(f"/ack/{token}"),
        client.get("/nowhere"),
        client.get("/healthz"),
        client.post("/api/v1/alerts/ack", content=b" " * 100_000, headers=json_type),
        client.post(f"/ack/{token}"),  # the acknowledgement itself
    ]
    assert [a.status_code for a in answers] == [200, 403, 403, 422, 405, 404, 200, 413, 200]
    for answer in answers:
        headers = answer.headers
        where = f"{answer.request.method} {answer.request.url.path[:20]}"
        assert headers.get("cache-control") == "no-store", where
        assert headers.get("referrer-policy") == "no-referrer", where
        assert headers.get("x-frame-options") == "DENY", where
        assert headers.get("x-content-type-options") == "nosniff", where
        policy = headers.get("content-security-policy", "")
        for directive in ("default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"):
            assert directive in policy, where
    # the pages' one inline style is allowed by its hash (a policy without it unstyles them)
    style = re.search(r"<style>(.*?)</style>", answers[0].text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in answers[0].headers["content-security-policy"]
    # Swagger UI would run a CDN's scripts on the origin of the tokens; the schema stays
    assert client.get("/api/docs").status_code == 404
    assert client.get("/api/openapi.json").status_code == 200


def test_an_oversized_body_is_refused_without_being_read_or_echoed(stack, inbox):
    """One request of many megabytes was read whole into the service's memory, then quoted back."""
    big = b'{"token": "' + b"a" * 2_000_000 + b'"}'
    json_type = {"content-type": "application/json"}
    for path in ("/api/v1/alerts/ack", "/api/v1/alerts/im-ok", "/api/v1/episodes/label"):
        refused = stack.client.post(path, content=big, headers=json_type)
        assert refused.status_code == 413, path
        assert len(refused.content) < 1000, path

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"token": "'
        for _ in range(200):
            yield b"a" * 10_000
        yield b'"}'

    chunked = stack.client.post("/api/v1/alerts/ack", content=chunks(), headers=json_type)
    assert chunked.status_code == 413 and len(chunked.content) < 1000
    _, token = ack_token(stack, inbox)  # a normal request still works
    assert stack.client.post("/api/v1/alerts/ack", json={"token": token}).status_code == 200


def test_an_invalid_request_is_a_422_that_does_not_quote_its_input(stack, inbox):
    """The default answer quoted the input back, a token sent as a form field included."""
    _, token = ack_token(stack, inbox)
    form = stack.client.post("/api/v1/alerts/ack", data={"token": token})
    too_long = stack.client.post("/api/v1/alerts/ack", json={"token": "s3cr3t" * 100})
    for refused in (form, too_long):
        assert refused.status_code == 422
        assert token not in refused.text and "s3cr3t" not in refused.text
        assert refused.json()["reason"] == "invalid" and refused.json()["detail"][0]["msg"]


def test_a_busy_database_is_a_503_to_try_again_without_a_traceback(
    stack, inbox, tmp_path, capfd, caplog
):
    """A caregiver pressing the button while the database is locked got "Internal Server Error",
    and the log a traceback (a database error's message can quote the SQL parameters)."""
    alert_id, token = ack_token(stack, inbox)
    other = Database(f"sqlite:///{tmp_path}/fw.sqlite3", secret_key=SECRET)
    caplog.set_level(logging.ERROR, logger="service.api")
    try:
        with other.session() as session:  # another writer holds the lock past the wait
            session.get(Patient, "p1")
            page = stack.client.post(f"/ack/{token}")
            api = stack.client.post("/api/v1/alerts/ack", json={"token": token})
    finally:
        other.dispose()
    assert page.status_code == 503 and "Try again" in page.text
    assert page.headers["retry-after"] == "5" and page.headers["cache-control"] == "no-store"
    assert api.status_code == 503 and api.json()["reason"] == "busy"
    assert state_of(stack, alert_id) == AlertState.ACTIVE
    logged = capfd.readouterr().err + caplog.text
    assert "Traceback" not in logged and "database is locked" not in logged
    assert token not in logged and "OperationalError" in caplog.text
    # once the lock is free, the same link works
    assert stack.client.post(f"/ack/{token}").status_code == 200
    assert state_of(stack, alert_id) == AlertState.ACKNOWLEDGED


def test_an_old_link_of_an_alert_that_is_over_does_not_claim_to_acknowledge(stack, inbox):
    """Yesterday's link opened during today's emergency said "Acknowledged, repeats stop"."""
    alert_id, token = ack_token(stack, inbox)
    with stack.manager.transaction() as txn:
        stack.manager.resolve_alert(txn, txn.session.get_one(Alert, alert_id), "calmed down")
    page = stack.client.get(f"/ack/{token}")
    assert page.status_code == 200 and "Nothing to acknowledge" in page.text
    assert "<form" not in page.text, "a button to acknowledge an alert that is over"
    done = stack.client.post(f"/ack/{token}")
    assert done.status_code == 200 and "Nothing to acknowledge" in done.text
    assert "Acknowledged" not in done.text and "Repeats stop" not in done.text
    assert state_of(stack, alert_id) == AlertState.RESOLVED


def test_a_token_has_one_spelling(stack, inbox):
    """Characters outside the token alphabet were skipped when decoding, so one token had many
    spellings: ``!`` or ``:`` inserted still acknowledged, and a label page put the spelling it
    was opened with into its form's address (``x:…/reaction`` posts to a scheme ``x:``)."""
    alert_id, token = ack_token(stack, inbox)
    for spelling in (f"{token[:4]}!{token[4:]}", f"{token[:30]}:{token[30:]}", f"{token}="):
        refused = stack.client.post("/api/v1/alerts/ack", json={"token": spelling})
        assert refused.status_code == 403, spelling
        assert refused.json()["reason"] == "malformed"
        assert stack.client.get(f"/ack/{spelling}").status_code == 403
    assert state_of(stack, alert_id) == AlertState.ACTIVE
    assert stack.client.post("/api/v1/alerts/ack", json={"token": token}).status_code == 200


def test_a_link_of_an_alert_lost_in_a_restore_does_not_act_on_the_alert_given_its_id(
    tmp_path, http: HttpReceiver, inbox: Inbox
):
    """A database restored from a backup hands out alert ids again; old links must not follow."""
    clock = FakeClock()
    live, backup = tmp_path / "fw.sqlite3", tmp_path / "backup.sqlite3"
    first = build_stack(f"sqlite:///{live}", clock)
    register_team(first.db, "p1", [("ann", [http.url("ann")])])
    register_team(first.db, "p2", [("bob", [http.url("bob")])])
    with sqlite3.connect(live) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)  # the nightly backup, before the alert
    lost_id, lost_token = ack_token(first, inbox)
    first.close()

    for journal in tmp_path.glob("fw.sqlite3-*"):
        journal.unlink()  # the disk died with the write-ahead log; the backup comes back
    backup.replace(live)
    clock.advance(3600)
    restored = build_stack(f"sqlite:///{live}", clock)
    with restored.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p2")
        new_id = restored.manager.open_alert(
            txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s
        ).id
    assert new_id == lost_id  # the id the lost alert had

    with ApiServer(restored.manager) as api, httpx.Client(base_url=api.base_url) as client:
        page = client.get(f"/ack/{lost_token}")
        answer = client.post("/api/v1/alerts/ack", json={"token": lost_token})
        pressed = client.post(f"/ack/{lost_token}")
    assert page.status_code == answer.status_code == pressed.status_code == 403
    assert answer.json()["reason"] == "other_alert"
    assert state_of(restored, new_id) != AlertState.ACKNOWLEDGED  # p2's alert goes on
    restored.close()
