"""Invitations: a new account's first password chosen by its person, from a link.

`admin account add … --invite` makes the account with a password nobody knows and a link good
once, for 7 days: mailed to its address when the service mails (a real SMTP server here), else
shown once to hand over. The link's page welcomes them; the password they choose signs them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from flarewatch.cli import main
from service.accounts.const import INVITE_LINK_S
from service.accounts.password_reset import reset_account, start_invitation
from service.db.accounts import get_account
from tests.alerting_helpers import SECRET, Inbox, SmtpReceiver
from tests.web_app_helpers import RECEIVER, CareWorld, care_world, words

CHOSEN = "a passphrase of my own choosing"
SAM = "sam@example.org"


@pytest.fixture
def world(tmp_path: Path, smtp: SmtpReceiver) -> Iterator[CareWorld]:
    url = smtp.url("nobody@example.org")
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER, mail_url=url) as built:
        yield built


@pytest.fixture
def admin(world: CareWorld, capsys, monkeypatch):
    """``flarewatch admin`` on the world's database, as the service's own settings."""
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)
    monkeypatch.setenv("FLAREWATCH_SERVICE__PUBLIC_BASE_URL", world.api.base_url)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["admin", "--database-url", str(world.stack.db.url), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _path(text: str) -> str:
    found = re.search(r"https?://[^/\s]+(/app/reset/[A-Za-z0-9_-]+)", text)
    assert found is not None, text
    return found.group(1)


def test_an_invitation_shown_once_lets_them_choose_their_password(world: CareWorld, admin) -> None:
    contact = str(world.contacts["Cid"])  # nobody's yet
    code, out, _ = admin("account", "add", "sam", "--role", "caregiver", "--invite")
    assert code == 0 and "invitation of sam (works once, for 7 days" in out
    path = _path(out)
    client = world.client()
    page = words(client.get(path).text)
    assert "Welcome to flarewatch" in page and "An account was made for you: sam" in page
    assert client.post(path, data={"new": CHOSEN, "again": CHOSEN}).status_code == 303
    assert world.signed_in("sam", CHOSEN).get("/app").status_code == 200
    assert client.get(path).status_code == 410, "once"
    assert admin("account", "link", "sam", contact)[0] == 0


def test_an_invitation_is_mailed_when_the_service_mails(
    world: CareWorld, admin, inbox: Inbox, smtp: SmtpReceiver, monkeypatch
) -> None:
    monkeypatch.setenv("FLAREWATCH_SERVICE__MAIL_URL", smtp.url("nobody@example.org"))
    code, out, _ = admin(
        "account", "add", "sam", "--role", "researcher", "--email", SAM, "--invite"
    )
    assert code == 0 and "invitation mailed to the address of sam" in out
    assert "/app/reset/" not in out, "a mailed link is not shown too"
    (mail,) = inbox.wait_for(SAM, 1)
    assert mail.title == "flarewatch: your account" and "within 7 days" in mail.body
    first = _path(mail.body)
    code, out, _ = admin("account", "invite", "sam")
    (_, again) = inbox.wait_for(SAM, 2)
    second = _path(again.body)
    client = world.client()
    assert client.get(first).status_code == 410, "a new invitation replaces the old"
    assert client.post(second, data={"new": CHOSEN, "again": CHOSEN}).status_code == 303
    world.signed_in("sam", CHOSEN)  # signs in with the password chosen


def test_an_invitation_works_for_seven_days_and_not_for_a_disabled_account(
    world: CareWorld, admin
) -> None:
    with world.stack.db.session() as session:
        ann = get_account(session, "ann")
        token = start_invitation(session, ann, 1_000.0)
        assert reset_account(session, token, 1_000.0 + INVITE_LINK_S - 1) is ann
        assert reset_account(session, token, 1_000.0 + INVITE_LINK_S + 1) is None
    assert admin("account", "disable", "ann")[0] == 0
    code, _, err = admin("account", "invite", "ann")
    assert code != 0 and "ann is disabled" in err
    with pytest.raises(SystemExit):  # a password, or an invitation: not both
        admin("account", "add", "x1", "--role", "researcher", "--invite", "--generate")
