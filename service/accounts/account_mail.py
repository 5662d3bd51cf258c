"""E-mail about an account (a link to set a new password), sent with the service's mail URL.

The operator gives one Apprise ``mailto://``/``mailtos://`` URL (``service.mail_url``: the SMTP
server, its login and the sender); each message goes to the account's own address, put in as
the URL's ``to``. The message holds the link and the username, nothing about anyone's health.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from models.alarm import Severity
from service.accounts.const import INVITE_LINK_S, PASSWORD_LINK_PATH, RESET_LINK_S
from service.alerts.notifier import Message
from service.db.models import Account


def mail_url_to(mail_url: str, address: str) -> str:
    """``mail_url`` sending to ``address`` (any ``to`` it had replaced)."""
    parts = urlsplit(mail_url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "to"]
    query.append(("to", address))
    return urlunsplit(parts._replace(query=urlencode(query)))


def password_link(public_base_url: str, token: str) -> str:
    """The link that sets a password with ``token`` (a reset or an invitation)."""
    return f"{public_base_url.rstrip('/')}{PASSWORD_LINK_PATH}/{token}"


def reset_message(account: Account, link: str) -> Message:
    """The mail with the link to set a new password."""
    minutes = RESET_LINK_S / 60
    return Message(
        "flarewatch: set a new password",
        f"Someone, you we hope, asked to set a new password for the flarewatch account "
        f"{account.username}.\n"
        f"Set it here within {minutes:.0f} minutes (the link works once):\n{link}\n"
        "If it was not you, ignore this message: your password stays as it is.",
        Severity.WARNING,
    )


def invitation_message(account: Account, link: str) -> Message:
    """The mail inviting someone to their new account: the link to choose its password."""
    days = INVITE_LINK_S / 86_400
    return Message(
        "flarewatch: your account",
        f"An account was made for you on flarewatch: {account.username}.\n"
        f"Choose its password here within {days:.0f} days (the link works once):\n{link}\n"
        "Then sign in with it on the same site. If you did not expect this, ignore this "
        "message.",
        Severity.WARNING,
    )


def team_invitation_message(account: Account, link: str, patient: str) -> Message:
    """The mail inviting someone a patient put on their care team to their new account."""
    days = INVITE_LINK_S / 86_400
    return Message(
        f"flarewatch: {patient} asks you onto their care team",
        f"{patient} put you on their care team on flarewatch, which alerts the team when their "
        "band notices a reaction. An account was made for you: "
        f"{account.username}.\n"
        f"Choose its password here within {days:.0f} days (the link works once):\n{link}\n"
        "Then sign in, and on Your account add where alerts should reach you (until then none "
        "does). If you did not expect this, ignore this message.",
        Severity.WARNING,
    )


def team_added_message(account: Account, patient: str, account_link: str) -> Message:
    """The mail telling someone with an account that a patient put them on their care team."""
    return Message(
        f"flarewatch: {patient} asks you onto their care team",
        f"{patient} put you on their care team on flarewatch ({account.username}), which "
        "alerts the team when their band notices a reaction.\n"
        f"Sign in and add where their alerts should reach you (until then none does):\n"
        f"{account_link}\n"
        "If you do not want to be on their team, tell them: they take you off.",
        Severity.WARNING,
    )
