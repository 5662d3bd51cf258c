"""A forgotten password set again from a link sent by e-mail, delivered to a real SMTP server.

Ann's account has an address, Ben's has none. The request answers the same whatever exists; the
link works once, for 30 minutes; setting the password signs Ann out everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.accounts.const import (
    RESET_LINK_S,
    RESET_MAIL_EVERY_S,
    RESET_REQUESTS_MAX,
    RESET_REQUESTS_WINDOW_S,
)
from service.accounts.password_reset import set_email
from service.api.account_pages import RESET_ASKED_TEXT
from service.db.accounts import get_account, set_disabled
from service.db.models import AuditEvent, PasswordReset
from tests.alerting_helpers import Inbox, SmtpReceiver
from tests.web_app_helpers import PASSWORD, RECEIVER, CareWorld, care_world, form_token, words

NEW = "a fresh passphrase, long enough"
ANN = "ann@example.org"


@pytest.fixture
def world(tmp_path, smtp: SmtpReceiver) -> Iterator[CareWorld]:
    url = smtp.url("nobody@example.org")  # the service's sender; each mail's "to" is replaced
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER, mail_url=url) as built:
        with built.stack.db.session() as session:
            set_email(session, get_account(session, "ann"), " Ann@Example.org ", built.clock())
        yield built


def ask(world: CareWorld, named: str) -> str:
    answer = world.client().post("/app/reset", data={"named": named})
    assert answer.status_code == 200, answer.text
    return words(answer.text)


def link_path(message_body: str) -> str:
    found = re.search(r"http://127\.0\.0\.1:9(/app/reset/[A-Za-z0-9_-]+)", message_body)
    assert found is not None, message_body
    return found.group(1)


def test_a_link_by_e_mail_sets_a_new_password_once(world, inbox: Inbox):
    login = world.client().get("/app/login").text
    assert 'href="/app/reset"' in login and "Forgot your password?" in login
    elsewhere = world.signed_in("ann")
    assert RESET_ASKED_TEXT in ask(world, "ANN")
    (mail,) = inbox.wait_for(ANN, 1)
    assert mail.title == "flarewatch: set a new password" and "account ann" in mail.body
    path = link_path(mail.body)

    client = world.client()
    form = client.get(path)
    assert form.status_code == 200 and "For the account ann" in words(form.text)
    differ = client.post(path, data={"new": NEW, "again": NEW + "!"})
    assert differ.status_code == 422 and "differ" in differ.text
    weak = client.post(path, data={"new": "short", "again": "short"})
    assert weak.status_code == 422 and "Not set" in words(weak.text)
    done = client.post(path, data={"new": NEW, "again": NEW})
    assert done.status_code == 303 and done.headers["location"] == "/app/login?done=reset"
    assert "Your new password is set" in words(client.get(done.headers["location"]).text)

    assert elsewhere.get("/app").status_code == 303  # signed out everywhere
    old = world.client().post("/app/login", data={"username": "ann", "password": PASSWORD})
    assert old.status_code == 401
    assert world.signed_in("ann", NEW).get("/app").status_code == 200
    assert client.get(path).status_code == 410  # once
    assert client.post(path, data={"new": NEW, "again": NEW}).status_code == 410
    with world.stack.db.session() as session:
        events = session.scalars(select(AuditEvent)).all()
        assert session.scalars(select(PasswordReset)).all() == []  # used: forgotten
    actions = [e.action for e in events]
    assert {"password_reset_sent", "password_reset_used", "account_email_set"} <= set(actions)
    assert not any(ANN in str(e.detail) for e in events)  # the address stays out of the trail


def test_the_answer_is_the_same_whatever_exists_and_mail_goes_only_where_it_should(
    world, inbox: Inbox
):
    with world.stack.db.session() as session:
        set_disabled(session, get_account(session, "ben"), True, world.clock())
        set_email(session, get_account(session, "ben"), "ben@example.org", world.clock())
    for named in ("nobody", "rita", "ben", "ben@example.org", "x" * 400):
        assert RESET_ASKED_TEXT in ask(world, named), named
    world.clock.advance(RESET_REQUESTS_WINDOW_S)  # this address may ask again
    assert ask(world, ANN)  # by address
    inbox.wait_for(ANN, 1)
    assert ask(world, "ann")  # within five minutes: no second mail
    world.clock.advance(RESET_MAIL_EVERY_S)
    assert ask(world, "ann")
    mails = inbox.wait_for(ANN, 2)
    assert [m.path_or_rcpt for m in inbox.items] == [ANN, ANN]  # rita has no address, ben off
    first, second = (link_path(m.body) for m in mails)
    client = world.client()
    assert client.get(first).status_code == 200 and client.get(second).status_code == 200
    world.clock.advance(RESET_LINK_S + 1)
    assert client.get(second).status_code == 410  # 30 minutes
    assert client.get("/app/reset/not-a-token").status_code == 410


def test_requests_from_one_address_are_limited_and_need_this_site(world, inbox: Inbox):
    other_site = world.client().post(
        "/app/reset", data={"named": "ann"}, headers={"sec-fetch-site": "cross-site"}
    )
    assert other_site.status_code == 403
    for _ in range(RESET_REQUESTS_MAX):
        ask(world, "nobody")
    limited = world.client().post("/app/reset", data={"named": "ann"})
    assert limited.status_code == 429 and "Too many requests" in limited.text
    world.clock.advance(RESET_REQUESTS_WINDOW_S)
    ask(world, "ann")
    assert len(inbox.wait_for(ANN, 1)) == 1


def test_one_sets_ones_own_address_with_the_password(world):
    ben = world.signed_in("ben")
    page = ben.get("/app/account").text
    assert "None yet" in words(page)
    token = form_token(page)
    wrong = ben.post(
        "/app/account/email",
        data={"csrf": token, "email": "ben@example.org", "email-password": "nope"},
    )
    assert wrong.status_code == 403
    bad = ben.post(
        "/app/account/email",
        data={"csrf": token, "email": "not an address", "email-password": PASSWORD},
    )
    assert bad.status_code == 422 and "not an e-mail address" in words(bad.text)
    ok = ben.post(
        "/app/account/email",
        data={"csrf": token, "email": "Ben@Example.org", "email-password": PASSWORD},
    )
    assert ok.status_code == 303
    assert "Now: ben@example.org" in words(ben.get("/app/account").text)


def test_without_a_mail_url_there_is_no_link_and_the_administrator_resets(tmp_path):
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER) as plain:
        client = plain.client()
        login = client.get("/app/login").text
        assert "/app/reset" not in login and "The administrator sets a new one" in words(login)
        assert client.get("/app/reset").status_code == 404
        assert client.post("/app/reset", data={"named": "ann"}).status_code == 404
        assert "E-mail address" not in plain.signed_in("ann").get("/app/account").text
