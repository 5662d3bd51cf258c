"""Channels through the service's own servers: an e-mail address, a private ntfy topic.

A caregiver who sets up their own alerts (:mod:`service.alerts.channel_changes`) should not
need an Apprise URL with somebody's SMTP password or server token in it. They give an address,
or ask for a topic on the ntfy server the operator named, and the channel is stored as one of
the service's own URLs:

* ``flarewatch-mail://sam@example.org``: sent with ``service.mail_url`` (the SMTP server, its
  login and the sender), to that address;
* ``flarewatch-ntfy://fw-…``: published to that topic on ``service.ntfy_url`` at the highest
  priority (an alert must sound).

They are resolved into Apprise URLs when each message is sent (:meth:`OwnServers.resolve`), so
the operator's credentials are in one place, and a new SMTP password or ntfy server reaches
every such channel at once. A topic is made by the service (:func:`new_topic`): on a shared
ntfy server whoever knows a topic can read it, so it is as hard to guess as a password.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from flarewatch.settings import ServiceSettings
from service.accounts.account_mail import mail_url_to

MAIL_SCHEME: Final = "flarewatch-mail"
NTFY_SCHEME: Final = "flarewatch-ntfy"
OWN_SCHEMES: Final = (MAIL_SCHEME, NTFY_SCHEME)
TOPIC_PREFIX: Final = "fw-"
TOPIC_BYTES: Final = 18
"""144 random bits: a topic nobody guesses (ntfy topics are up to 64 of ``[-_A-Za-z0-9]``)."""
_TOPIC: Final = re.compile(r"[-_A-Za-z0-9]{1,64}")


class NotOffered(ValueError):
    """The service does not offer this kind of channel (its server is not configured)."""


def mail_channel(address: str) -> str:
    """The channel URL of an e-mail ``address`` (normalised by the caller)."""
    return f"{MAIL_SCHEME}://{quote(address, safe='@')}"


def ntfy_channel(topic: str) -> str:
    """The channel URL of ntfy ``topic`` on the service's ntfy server."""
    if not _TOPIC.fullmatch(topic):
        raise ValueError("an ntfy topic is 1-64 letters, digits, - or _")
    return f"{NTFY_SCHEME}://{topic}"


def new_topic() -> str:
    """A new private topic: nobody can guess it to read the alerts sent there."""
    return TOPIC_PREFIX + secrets.token_urlsafe(TOPIC_BYTES)


def own_part(url: str) -> tuple[str, str] | None:
    """``(scheme, address or topic)`` of one of the service's own channel URLs, else None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in OWN_SCHEMES:
        return None
    return scheme, unquote(rest)


def describe(url: str) -> str | None:
    """What the channel's owner reads about it ("e-mail to sam@…", "ntfy topic fw-…"), or None.

    For its owner only: the address and the topic are in it (the topic is how they subscribe
    on a new phone). Everyone else sees the redacted URL.
    """
    own = own_part(url)
    if own is None:
        return None
    scheme, part = own
    return f"e-mail to {part}" if scheme == MAIL_SCHEME else f"ntfy topic {part}"


@dataclass(frozen=True, slots=True)
class OwnServers:
    """The servers the service's own channels go through (None: that kind is not offered)."""

    mail_url: str | None = None
    """``service.mail_url``: an Apprise ``mailto://``/``mailtos://`` URL."""
    ntfy_url: str | None = None
    """``service.ntfy_url``: ``https://ntfy.sh`` or your own server, at the root of its address
    (``https://user:password@ntfy.example.org`` with a login)."""

    @classmethod
    def of(cls, service: ServiceSettings) -> OwnServers:
        """The servers ``service`` names (an empty URL counts as none)."""
        mail, ntfy = service.mail_url, service.ntfy_url
        return cls(
            mail.get_secret_value() or None if mail is not None else None,
            ntfy.get_secret_value() or None if ntfy is not None else None,
        )

    @property
    def ntfy_server(self) -> str | None:
        """The ntfy server as its users type it into the app (no login), or None."""
        if not self.ntfy_url:
            return None
        parts = urlsplit(self.ntfy_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, "", "", ""))

    def offered(self, scheme: str) -> bool:
        """Whether channels of ``scheme`` (one of :data:`OWN_SCHEMES`) can be sent."""
        return bool(self.mail_url if scheme == MAIL_SCHEME else self.ntfy_url)

    def resolve(self, url: str) -> str:
        """The Apprise URL to send ``url`` with: itself unless it is one of the own kinds.

        Raises :class:`NotOffered` when its server is not configured (any more).
        """
        own = own_part(url)
        if own is None:
            return url
        scheme, part = own
        if scheme == MAIL_SCHEME:
            if not self.mail_url:
                raise NotOffered("the service has no mail server (service.mail_url)")
            return mail_url_to(self.mail_url, part)
        if not self.ntfy_url:
            raise NotOffered("the service has no ntfy server (service.ntfy_url)")
        parts = urlsplit(self.ntfy_url)
        apprise_scheme = "ntfys" if parts.scheme == "https" else "ntfy"
        # at the root of its address: Apprise reads every part of a path as one more topic
        return urlunsplit((apprise_scheme, parts.netloc, f"/{part}", "priority=max", ""))
