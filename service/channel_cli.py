"""``flarewatch admin caregiver channel-add|channel-remove``: one channel of a contact.

The administrator's side of what people do on their account page
(:mod:`service.alerts.channel_changes`): a channel added comes after the contact's others; one
taken off passes the messages waiting for it to the next. The administrator may add any Apprise
URL, and an e-mail address or a new ntfy topic through the service's own servers where its
settings name them.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from flarewatch.settings import load_settings, require_secret_key
from service.alerts.channel_changes import ChannelKind, ChannelOffer, add_channel, remove_channel
from service.alerts.own_servers import OwnServers, describe, own_part
from service.alerts.transaction import AlertTransaction
from service.cli_tables import row_number
from service.db.care_teams import get_contact
from service.episode_labels_cli import Handler

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.alerts.apprise_notifier import AppriseNotifier


def require_own_key(args: argparse.Namespace, refused: str) -> None:
    """Refuse to encrypt secrets (channel URLs) with a key anyone can know or guess."""
    try:
        require_secret_key(load_settings(getattr(args, "config", None)).service)
    except ConfigError as exc:
        raise ConfigError(f"{refused}: {exc}") from exc


def own_servers(args: argparse.Namespace) -> OwnServers:
    """The service's own mail and ntfy servers, from the settings the command runs with."""
    return OwnServers.of(load_settings(getattr(args, "config", None)).service)


def cli_notifier(args: argparse.Namespace) -> AppriseNotifier:
    """Apprise, loaded by the commands that check, redact or send channel URLs (about 1 s).

    With the service's own servers, so that an e-mail or ntfy channel someone added in the web
    app is sent as the service sends it.
    """
    from service.alerts.apprise_notifier import AppriseNotifier

    return AppriseNotifier(own_servers(args))


def _channel_add(args: argparse.Namespace, session: Session) -> int:
    contact = get_contact(session, args.contact_id)
    notifier = cli_notifier(args)
    offer = ChannelOffer(notifier.servers, any_url=True)
    kind, value = (
        (ChannelKind.URL, args.url)
        if args.url is not None
        else (ChannelKind.EMAIL, args.email)
        if args.email is not None
        else (ChannelKind.NTFY, "")
    )
    url = offer.channel_url(kind, value, notifier)
    require_own_key(args, "refusing to store channel URLs encrypted with this key")
    add_channel(session, contact, url, time.time(), by="administrator", via="cli")
    place = len(contact.live_channels)
    shown = describe(url) or notifier.redact(url)
    print(f"channel {place} of {contact.name} (contact {contact.id}): {shown}")
    topic = own_part(url)
    if kind is ChannelKind.NTFY and topic is not None:
        print(
            f"subscribe in the ntfy app to topic {topic[1]} on {notifier.servers.ntfy_server} "
            "(keep it private: whoever knows it can read the alerts)"
        )
    return 0


def _channel_remove(args: argparse.Namespace, session: Session) -> int:
    contact = get_contact(session, args.contact_id)
    live = contact.live_channels
    if not 1 <= args.place <= len(live):
        raise ConfigError(
            f"{contact.name} has {len(live)} channel(s): give a place from 1 to {len(live)} "
            "(`caregiver list` shows them in order)"
        )
    moved = remove_channel(
        AlertTransaction(session, time.time()),
        contact,
        live[args.place - 1],
        by="administrator",
        via="cli",
    )
    waiting = f"; {moved} waiting message(s) passed to the next channel" if moved else ""
    print(f"channel {args.place} of {contact.name} taken off{waiting}")
    return 0


def add_channel_commands(
    parent: Any, command: Callable[[Any, str, Handler, str], argparse.ArgumentParser]
) -> None:
    """``caregiver channel-add`` and ``caregiver channel-remove`` under ``parent``."""
    parser = command(parent, "channel-add", _channel_add, "give a contact one more channel")
    parser.add_argument("contact_id", type=row_number)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--url", help="an Apprise URL")
    what.add_argument("--email", help="an e-mail address, sent through service.mail_url")
    what.add_argument("--ntfy", action="store_true", help="a new private topic on service.ntfy_url")
    parser = command(
        parent,
        "channel-remove",
        _channel_remove,
        "take a contact's channel off (messages waiting for it go on to the next)",
    )
    parser.add_argument("contact_id", type=row_number)
    parser.add_argument(
        "place", type=row_number, help="the channel's place, 1 first (as `caregiver list`)"
    )
