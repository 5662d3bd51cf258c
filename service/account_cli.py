"""``flarewatch admin account …``: who may sign in to the web app, and what they see.

A password is never taken on the command line (other users of the machine can read it there):
it is asked for twice on a terminal, read from standard input with ``--password-stdin``, or
made up and shown once with ``--generate``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import secrets
import sys
import time
from typing import Final

from sqlalchemy.orm import Session

from flarewatch.cli_text import print_table
from flarewatch.errors import ConfigError
from flarewatch.settings import load_settings
from service.accounts.access import visible_patient_ids
from service.accounts.account_mail import invitation_message, mail_url_to, password_link
from service.accounts.const import INVITE_LINK_S
from service.accounts.password_reset import set_email, start_invitation
from service.accounts.second_factor import has_second_factor, turn_off
from service.cli_tables import row_number
from service.db.accounts import (
    add_account,
    get_account,
    link_contact,
    list_accounts,
    remove_account,
    set_disabled,
    set_password,
    unlink_contact,
)
from service.db.models import Account, AccountRole
from service.episode_labels_cli import CommandFactory

GENERATED_PASSWORD_BYTES: Final = 15
"""A made-up password: 20 URL-safe characters, 120 random bits."""


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new password and whether it was made up here (then it is shown once)."""
    if args.generate:
        return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), True
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if not sys.stdin.isatty():
        raise ConfigError(
            "no terminal to ask the password on: give --password-stdin (and the password on "
            "standard input) or --generate"
        )
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise ConfigError("the two passwords differ: nothing was changed")
    return first, False


def _show_generated(username: str, password: str, generated: bool) -> None:
    if generated:
        print(f"password of {username} (shown once, give it to them in person): {password}")


def _add(args: argparse.Namespace, session: Session) -> int:
    # invited, nobody knows the password the account is made with: the person sets theirs
    password, generated = (secrets.token_urlsafe(32), False) if args.invite else _password(args)
    now_s = time.time()
    account = add_account(
        session,
        args.username,
        password,
        AccountRole(args.role),
        now_s,
        patient_id=args.patient,
        display_name=args.name or "",
    )
    for contact_id in args.contact or ():
        link_contact(session, account, contact_id, now_s)
    if args.email:
        set_email(session, account, args.email, now_s)
    print(f"account {account.username} ({account.role}) added")
    _show_generated(account.username, password, generated)
    if args.invite:
        _send_invitation(args, session, account)
    return 0


def _invite(args: argparse.Namespace, session: Session) -> int:
    account = get_account(session, args.username)
    if account.disabled_s is not None:
        raise ConfigError(f"{account.username} is disabled: `admin account enable` it first")
    _send_invitation(args, session, account)
    return 0


def _send_invitation(args: argparse.Namespace, session: Session, account: Account) -> None:
    """A new invitation of ``account``: mailed to its address if the service mails, else shown.

    Committed before it is mailed: the link must work when it arrives, and a slow SMTP server
    must not hold the service's one-writer lock.
    """
    service = load_settings(getattr(args, "config", None)).service
    link = password_link(service.public_base_url, start_invitation(session, account, time.time()))
    username, email = account.username, account.email
    mail_url = service.mail_url.get_secret_value() if service.mail_url is not None else ""
    days = f"{INVITE_LINK_S / 86_400:.0f} days"
    if email and mail_url:
        session.commit()
        from service.alerts.apprise_notifier import AppriseNotifier

        result = AppriseNotifier().send(
            mail_url_to(mail_url, email), invitation_message(account, link)
        )
        if result.ok:
            print(f"invitation mailed to the address of {username} (works once, for {days})")
            return
        print(f"flarewatch: the invitation mail was not sent ({result.reason})", file=sys.stderr)
    print(
        f"invitation of {username} (works once, for {days}; hand it over as you would a "
        f"password): {link}"
    )


def _list(args: argparse.Namespace, session: Session) -> int:
    rows = []
    for account in list_accounts(session):
        sees = (
            "consenting patients, pseudonymised"
            if account.role == AccountRole.RESEARCHER
            else ", ".join(visible_patient_ids(session, account)) or "(nobody yet)"
        )
        state = "disabled" if account.disabled_s is not None else "active"
        if account.locked_until_s is not None and account.locked_until_s > time.time():
            state = "waiting (wrong passwords)"
        two_step = "on" if has_second_factor(account) else "off"
        rows.append(
            (
                account.username,
                account.role,
                account.display_name,
                sees,
                state,
                two_step,
                _day(account),
            )
        )
    print_table(["username", "role", "name", "sees", "state", "two-step", "last sign-in"], rows)
    return 0


def _day(account: Account) -> str:
    last = account.last_login_s
    return "never" if last is None else dt.datetime.fromtimestamp(last, dt.UTC).strftime("%Y-%m-%d")


def _password_cmd(args: argparse.Namespace, session: Session) -> int:
    account = get_account(session, args.username)
    password, generated = _password(args)
    signed_out = set_password(session, account, password, time.time())
    print(f"password of {account.username} changed; signed out of {signed_out} browsers")
    _show_generated(account.username, password, generated)
    return 0


def _disable(args: argparse.Namespace, session: Session) -> int:
    signed_out = set_disabled(session, get_account(session, args.username), True, time.time())
    print(f"account {args.username} disabled; signed out of {signed_out} browsers")
    return 0


def _enable(args: argparse.Namespace, session: Session) -> int:
    set_disabled(session, get_account(session, args.username), False, time.time())
    print(f"account {args.username} enabled")
    return 0


def _second_factor_off(args: argparse.Namespace, session: Session) -> int:
    account = get_account(session, args.username)
    if not turn_off(session, account, time.time(), by_admin=True):
        print(f"{account.username} signs in with a password alone already; nothing changed")
        return 0
    print(
        f"two-step sign-in of {account.username} turned off, recovery codes deleted; signed out "
        "everywhere: they sign in with their password and can turn it on again"
    )
    return 0


def _email(args: argparse.Namespace, session: Session) -> int:
    account = get_account(session, args.username)
    set_email(session, account, None if args.none else args.address, time.time())
    said = (
        f"links to set a new password go to {account.email}"
        if account.email
        else ("no e-mail address: you set their new passwords")
    )
    print(f"{account.username}: {said}")
    return 0


def _remove(args: argparse.Namespace, session: Session) -> int:
    remove_account(session, get_account(session, args.username), time.time())
    print(f"account {args.username} removed (kept in the audit trail by name)")
    return 0


def _link(args: argparse.Namespace, session: Session) -> int:
    account = get_account(session, args.username)
    for contact_id in args.contact_ids:
        link_contact(session, account, contact_id, time.time())
    print(f"{account.username} now sees: {', '.join(visible_patient_ids(session, account))}")
    return 0


def _unlink(args: argparse.Namespace, session: Session) -> int:
    for contact_id in args.contact_ids:
        username = unlink_contact(session, contact_id, time.time())
        said = f"unlinked from {username}" if username else "was not linked to an account"
        print(f"contact {contact_id} {said}")
    return 0


def _password_args(parser: argparse.ArgumentParser, *, invite: bool = False) -> None:
    given = parser.add_mutually_exclusive_group()
    if invite:
        given.add_argument(
            "--invite",
            action="store_true",
            help="no password: a link for them to choose it (mailed to --email if the service "
            "mails, else shown once)",
        )
    given.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    given.add_argument(
        "--generate", action="store_true", help="make a strong password up and show it once"
    )


def add_account_commands(
    groups: argparse._SubParsersAction[argparse.ArgumentParser], command: CommandFactory
) -> None:
    """Add ``admin account …`` to the admin group."""
    account = groups.add_parser(
        "account", help="web app sign-in: patients, caregivers, researchers"
    )
    cmds = account.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    parser = command(cmds, "add", _add, "let someone sign in to the web app")
    parser.add_argument("username")
    parser.add_argument("--role", required=True, choices=[r.value for r in AccountRole])
    parser.add_argument("--patient", help="a patient account: the patient it is")
    parser.add_argument(
        "--contact",
        type=row_number,
        action="append",
        help="a caregiver account: the care-team contact it is (repeatable; "
        "see `admin caregiver list PATIENT`)",
    )
    parser.add_argument("--name", help="the name shown (default: the username)")
    parser.add_argument(
        "--email", help="where links to set a new password go (service.mail_url sends them)"
    )
    _password_args(parser, invite=True)
    command(cmds, "list", _list, "list accounts: role, whom each sees, state")
    parser = command(cmds, "invite", _invite, "a new link to choose the password (7 days)")
    parser.add_argument("username")
    parser = command(cmds, "email", _email, "set or clear the address of password reset links")
    parser.add_argument("username")
    address = parser.add_mutually_exclusive_group(required=True)
    address.add_argument("address", nargs="?", help="the e-mail address")
    address.add_argument("--none", action="store_true", help="no address: no reset by e-mail")
    parser = command(cmds, "password", _password_cmd, "set a new password (signs them out)")
    parser.add_argument("username")
    _password_args(parser)
    for name, handler, text in (
        ("disable", _disable, "stop an account signing in (signs it out everywhere)"),
        ("enable", _enable, "let a disabled account sign in again"),
        ("remove", _remove, "delete an account"),
        (
            "second-factor-off",
            _second_factor_off,
            "turn off two-step sign-in (a lost phone and lost recovery codes)",
        ),
    ):
        command(cmds, name, handler, text).add_argument("username")
    parser = command(cmds, "link", _link, "let a caregiver account see the patients of contacts")
    parser.add_argument("username")
    parser.add_argument("contact_ids", type=row_number, nargs="+", metavar="CONTACT_ID")
    parser = command(cmds, "unlink", _unlink, "take care-team contacts from their account")
    parser.add_argument("contact_ids", type=row_number, nargs="+", metavar="CONTACT_ID")
