"""``flarewatch admin account …``: accounts made, linked, listed, changed and removed.

The password never appears on the command line: it is read from standard input, asked for on a
terminal, or made up and shown once.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from flarewatch.cli import main
from service.accounts.sign_in import sign_in
from service.db import Database
from service.db.models import Account, AuditEvent

KEY = "account-cli-test-key-0123456789"
PASSWORD = "a long enough passphrase"


@pytest.fixture
def admin(tmp_path, capsys, monkeypatch):
    """The admin CLI on a database with patient alex and caregiver Ann (contact 1)."""
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", KEY)
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["admin", "--database-url", url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    run.url = url
    assert run("patient", "add", "alex", "--name", "Alex")[0] == 0
    assert run("caregiver", "add", "alex", "Ann", "--url", "json://127.0.0.1:9/ann")[0] == 0
    return run


def can_sign_in(url: str, username: str, password: str) -> bool:
    db = Database(url, secret_key=KEY)
    try:
        with db.session() as session:
            return sign_in(session, username, password, 1e9) is not None
    finally:
        db.dispose()


def test_a_caregiver_account_linked_to_its_contact_sees_that_patient(admin):
    code, out, _ = admin(
        "account",
        "add",
        "ann",
        "--role",
        "caregiver",
        "--contact",
        "1",
        "--name",
        "Ann M.",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0 and "account ann (caregiver) added" in out
    assert PASSWORD not in out
    code, out, _ = admin("account", "list")
    assert code == 0
    [row] = [line for line in out.splitlines() if line.startswith("ann")]
    assert "caregiver" in row and "Ann M." in row and "alex" in row and "never" in row
    assert can_sign_in(admin.url, "ann", PASSWORD)
    assert not can_sign_in(admin.url, "ann", "a wrong passphrase!")

    code, out, _ = admin("account", "unlink", "1")
    assert code == 0 and "unlinked from ann" in out
    assert "(nobody yet)" in admin("account", "list")[1]
    code, out, _ = admin("account", "link", "ann", "1")
    assert code == 0 and "ann now sees: alex" in out


def test_generated_password_is_shown_once_and_works(admin):
    code, out, _ = admin(
        "account", "add", "alex", "--role", "patient", "--patient", "alex", "--generate"
    )
    assert code == 0
    password = out.strip().rsplit(": ", 1)[1]
    assert len(password) >= 20 and can_sign_in(admin.url, "alex", password)
    code, out, _ = admin("account", "password", "alex", "--generate")
    assert code == 0 and "signed out of 1 browsers" in out
    new = out.strip().rsplit(": ", 1)[1]
    assert new != password and can_sign_in(admin.url, "alex", new)
    assert not can_sign_in(admin.url, "alex", password)


@pytest.mark.parametrize(
    ("argv", "stdin", "said"),
    [
        (("add", "ann", "--role", "caregiver", "--password-stdin"), "short\n", "too short"),
        (
            ("add", "ann", "--role", "caregiver", "--password-stdin"),
            "ann-ann-ann-ann\n",
            "must not contain the username",
        ),
        (("add", "ann", "--role", "caregiver"), "", "no terminal to ask the password on"),
        (("add", "Not Valid!", "--role", "researcher", "--generate"), "", "is not allowed"),
        (("add", "pat", "--role", "patient", "--generate"), "", "needs the patient it is"),
        (("add", "pat", "--role", "patient", "--patient", "nobody", "--generate"), "", "nobody"),
        (
            ("add", "rita", "--role", "researcher", "--patient", "alex", "--generate"),
            "",
            "not a patient",
        ),
        (
            ("add", "rita", "--role", "researcher", "--contact", "1", "--generate"),
            "",
            "only caregiver accounts stand on care teams",
        ),
        (("add", "ann", "--role", "caregiver", "--contact", "9", "--generate"), "", "9"),
        (("password", "nobody", "--generate"), "", "no account 'nobody'"),
    ],
)
def test_refusals_say_why_and_change_nothing(admin, argv, stdin, said):
    code, _out, err = admin("account", *argv, stdin=stdin)
    assert code != 0
    assert said in err, err
    assert admin("account", "list")[1].count("\n") <= 2  # the header and its rule only
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        assert session.scalars(select(Account)).all() == []
    db.dispose()


def test_disable_enable_remove_are_audited_without_secrets(admin):
    admin(
        "account", "add", "rita", "--role", "researcher", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert admin("account", "disable", "rita")[0] == 0
    assert "disabled" in admin("account", "list")[1]
    assert not can_sign_in(admin.url, "rita", PASSWORD)
    assert admin("account", "enable", "rita")[0] == 0
    assert can_sign_in(admin.url, "rita", PASSWORD)
    assert admin("account", "remove", "rita")[0] == 0
    assert not can_sign_in(admin.url, "rita", PASSWORD)
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    db.dispose()
    actions = [e.action for e in events if e.action.startswith("account_")]
    assert actions == ["account_added", "account_disabled", "account_enabled", "account_removed"]
    assert all(PASSWORD not in str(e.detail) and "argon2" not in str(e.detail) for e in events)


def test_an_accounts_address_for_reset_links_is_set_and_cleared(admin):
    code, out, _ = admin(
        "account",
        "add",
        "rita",
        "--role",
        "researcher",
        "--email",
        "Rita@Example.org",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0
    code, out, _ = admin("account", "email", "rita", "r.new@example.org")
    assert code == 0 and "links to set a new password go to r.new@example.org" in out
    code, _, err = admin("account", "email", "rita", "not-an-address")
    assert code != 0 and "is not an e-mail address" in err
    code, out, _ = admin("account", "email", "rita", "--none")
    assert code == 0 and "no e-mail address" in out
    db = Database(admin.url, secret_key=KEY)
    try:
        with db.session() as session:
            rita = session.scalars(select(Account).where(Account.username == "rita")).one()
            assert rita.email is None
            said = [
                e.detail["has_email"]
                for e in session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "account_email_set")
                )
            ]
    finally:
        db.dispose()
    assert said == [True, True, False]
