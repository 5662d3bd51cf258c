"""The :class:`Notifier` for every service Apprise speaks (ntfy, Pushover, Telegram, e-mail, …).

Each service gets the message in the form it shows safely: an SMS service the message's SMS form
(who, what, act and the link in the first part; no marks outside GSM-7); every other service the
title and body with mass mentions defused, and a service that shows Markdown (Discord and
Mattermost even for plain text) with Markdown escaped and links intact (``service.alerts.render``
holds how; this module knows which service needs what).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Final
from urllib.parse import urlsplit

import apprise
from apprise.plugins.base import NotifyBase
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.mattermost import NotifyMattermost

from models.alarm import Severity
from service.alerts.backoff import FailureKind
from service.alerts.const import ERROR_TEXT_MAX_CHARS, SECRET_PART_MIN_CHARS
from service.alerts.notifier import Message, Notifier, SendResult
from service.alerts.own_servers import NotOffered, OwnServers
from service.alerts.render import SMS_SEGMENT_SEPTETS, defuse_mentions, markdown_literal

log = logging.getLogger(__name__)

_PERMANENT_HINTS = re.compile(r"\b(401|403|404|unauthori[sz]ed|forbidden|invalid)\b", re.I)
_URLISH = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)
_URL_PARTS = re.compile(r"[/:@?&=#;,+ ]+")
GUARDED_LOGGERS: Final = ("apprise", "urllib3.connectionpool")
"""Apprise's own logger, and the HTTP library's, which logs request paths (a Telegram bot token
is one) at DEBUG."""


def _url_parts(url: str) -> set[str]:
    """The URL and every part of it that could be a credential (user, token, host, path, query)."""
    rest = url.split("://", 1)[-1]
    return {url} | {p for p in _URL_PARTS.split(rest) if len(p) >= SECRET_PART_MIN_CHARS}


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URLs nor any of ``secrets`` (longest first, so none is left half-shown)."""
    text = _URLISH.sub("<url>", text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


class _AppriseLogScrubber(logging.Filter):
    """Rewrites every record of :data:`GUARDED_LOGGERS` so that no channel URL reaches a log.

    Apprise logs a URL it cannot parse in full (``Unparseable Telegram URL tgram://…``), and some
    plugins log the token they reject. While a notifier validates or sends a URL its parts are
    registered here (counted: several threads may use one URL) and scrubbed from every record, as
    is anything shaped like a URL; tracebacks are dropped, since their text cannot be vetted.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = set(self._secrets)
        record.msg = scrub(record.getMessage(), secrets)
        record.args = None
        record.exc_info = record.exc_text = record.stack_info = None
        return True

    @contextlib.contextmanager
    def guarding(self, url: str) -> Iterator[None]:
        """Scrub the parts of ``url`` from the guarded logs while the block runs."""
        parts = _url_parts(url)
        with self._lock:
            self._secrets.update(parts)
        try:
            yield
        finally:
            with self._lock:
                self._secrets.subtract(parts)
                self._secrets += Counter()  # drop the parts no longer in use

    def install(self) -> None:
        """Attach to the guarded loggers (once)."""
        for name in GUARDED_LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)


_SCRUBBER: Final = _AppriseLogScrubber()


def _failure_text(result: object, secrets: set[str]) -> str:
    """The warnings Apprise logged for this call (its result object keeps them per call)."""
    lines: list[str] = []
    for service_result in getattr(result, "results", ()):
        for entry in service_result.logs():
            # Apprise 2.x keeps the level *name* ("WARNING"); tolerate numbers too.
            level = (
                logging.getLevelName(entry.level) if isinstance(entry.level, str) else entry.level
            )
            if isinstance(level, int) and level >= logging.WARNING:
                lines.append(str(entry.message))
    # Apprise messages name hosts, not credentials; URLs and the channel's parts are stripped
    # anyway to be sure (the text is kept in the audit trail).
    return scrub(" | ".join(lines), secrets)[:ERROR_TEXT_MAX_CHARS]


SMS_SCHEMES: Final = frozenset(
    {
        "46elks", "atalk", "bulksms", "bulkvs", "burstsms", "clickatell", "clicksend", "cm",
        "d7sms", "eight00com", "elks", "exotel", "freemobile", "httpsms", "infobip", "kaleyra",
        "kavenegar", "klr", "kudosity", "mobilemessage", "mobilemsg", "msg91", "msgbird", "nexmo",
        "notifyre", "octopush", "plivo", "ringc", "serwersms", "seven", "sfr", "sinch", "smpp",
        "smpps", "smsc", "smseagle", "smseagles", "smsmanager", "smsmgr", "smstunnel", "sns",
        "telesign", "telnyx", "twilio", "voipms", "vonage",
    }
)  # fmt: skip
"""Schemes of Apprise's SMS services (Apprise 2.3; its service list marks them 📲). Most take one
SMS (160 characters) and are also told by that limit; these include the gateways that send a long
text as a multi-part SMS (SMSEagle, Telesign, CM.com…). A plugin with a title field is not sending
an SMS (Amazon SNS to a topic, a Twilio voice call)."""

_MARKDOWN_AS_TEXT: Final = (NotifyDiscord, NotifyMattermost)
"""Services that render what Apprise sends them as plain text as Markdown all the same.
Guilded's plugin is Discord's."""


def _schemes(plugin: NotifyBase) -> set[str]:
    """The URL schemes of ``plugin``'s service (one or several names, plain or secure)."""
    found: set[str] = set()
    for attribute in ("protocol", "secure_protocol"):
        value = getattr(plugin, attribute, None)
        found.update([value] if isinstance(value, str) else value or ())
    return found


def is_sms(plugin: NotifyBase) -> bool:
    """Whether ``plugin`` sends an SMS: an SMS service, or a title-less one of one SMS's length."""
    if plugin.title_maxlen > 0:
        return False
    return bool(_schemes(plugin) & SMS_SCHEMES) or 0 < plugin.body_maxlen <= SMS_SEGMENT_SEPTETS


def as_sent(plugin: NotifyBase, message: Message) -> tuple[str, str, apprise.NotifyFormat]:
    r"""The title, body and format ``plugin``'s service gets of ``message``, shown safely.

    An SMS has no title (Apprise would put it first, before the link) and no mentions; every
    other service may be a chat where ``@everyone`` in a name pings everyone in it. A service
    that shows Markdown gets it escaped here, links left as they are: Apprise's own conversion of
    plain text to Markdown (Rocket.Chat, Google Chat, any ``?format=markdown``) escapes inside
    links too, and ``flarewatch\.example\.org/ack/…`` is no longer the acknowledgement link.
    """
    text, markdown = apprise.NotifyFormat.TEXT, apprise.NotifyFormat.MARKDOWN
    if is_sms(plugin):
        return ("", message.sms, text) if message.sms else (message.title, message.body, text)
    title, body = defuse_mentions(message.title), defuse_mentions(message.body)
    if plugin.resolve_format(text) == markdown:
        return markdown_literal(title), markdown_literal(body), markdown
    if isinstance(plugin, _MARKDOWN_AS_TEXT):
        return markdown_literal(title), markdown_literal(body), text
    return title, body, text


def _fits(plugin: NotifyBase, title_text: str, body_text: str) -> bool:
    """Whether the service takes the message in one piece (its limits as Apprise knows them)."""
    title, body = len(title_text), len(body_text)
    if plugin.title_maxlen <= 0:  # no title field: Apprise puts the title on the first line
        return (title + 2 if title else 0) + body <= plugin.body_maxlen
    if plugin.overflow_amalgamate_title:
        return title <= plugin.title_maxlen and title + body <= plugin.body_maxlen
    return title <= plugin.title_maxlen and body <= plugin.body_maxlen


def _split_if_too_long(plugin: NotifyBase, title: str, body: str) -> None:
    """Send a message too long for its service as several, instead of one it refuses.

    Apprise's default ``overflow=upstream`` hands the whole text over, and Telegram (4096),
    Discord (2000) or Pushover (1024) then refuse a long emergency plan: the caregiver would get
    nothing from that channel. Split, the first piece holds the title, the action and the link
    (``service.alerts.render`` puts them first). A URL's own ``?overflow=`` is kept.
    """
    if plugin.overflow_mode == apprise.OverflowMode.UPSTREAM and not _fits(plugin, title, body):
        plugin.overflow_mode = apprise.OverflowMode.SPLIT


class AppriseNotifier(Notifier):
    """Deliver through Apprise, one fresh ``Apprise`` object per send (thread-safe).

    No channel URL reaches a log: Apprise's log records are scrubbed (:class:`_AppriseLogScrubber`)
    and this class reports problems in its own words, naming URLs only redacted.
    """

    def __init__(self, servers: OwnServers | None = None) -> None:
        _SCRUBBER.install()
        self.servers = servers or OwnServers()
        """Where the service's own channels go (an address, a topic: ``own_servers``)."""

    def validate(self, url: str) -> str | None:
        """Reject URLs no Apprise plugin understands, and own kinds the service cannot send."""
        try:
            sent = self.servers.resolve(url)
        except NotOffered as exc:
            return str(exc)
        with _SCRUBBER.guarding(sent):
            understood = apprise.Apprise().add(sent)
        if understood:
            return None
        return (
            "Apprise does not understand this URL: check the service's URL format at "
            "https://appriseit.com/services/ (a mistyped scheme, token or missing part)"
        )

    def redact(self, url: str) -> str:
        """Scheme, host (when it is a host name, not a token) and a short fingerprint.

        Apprise's own privacy rendering still shows ntfy topics and similar secrets, so only
        parts that cannot be credentials are kept; the fingerprint tells channels apart.
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        shown = host if ("." in host or host == "localhost") else "…"
        fingerprint = hashlib.sha256(url.encode()).hexdigest()[:6]
        return f"{parts.scheme}://{shown} #{fingerprint}"

    def send(self, url: str, message: Message) -> SendResult:
        """Send once; classify a failure as transient unless it looks like bad credentials."""
        try:
            sent = self.servers.resolve(url)
        except NotOffered as exc:
            return SendResult(False, FailureKind.PERMANENT, str(exc))
        with _SCRUBBER.guarding(sent):
            return self._send(sent, message)

    def _send(self, url: str, message: Message) -> SendResult:
        client = apprise.Apprise()
        if not client.add(url):
            return SendResult(False, FailureKind.PERMANENT, "URL not understood by Apprise")
        title, body, body_format = as_sent(client[0], message)
        _split_if_too_long(client[0], title, body)
        notify_type = (
            apprise.NotifyType.FAILURE
            if message.severity is Severity.CRITICAL
            else apprise.NotifyType.WARNING
        )
        try:
            result = client.notify(
                title=title,
                body=body,
                notify_type=notify_type,
                body_format=body_format,
            )
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not kill the scheduler
            log.warning("apprise plugin raised %s", type(exc).__name__)
            return SendResult(False, FailureKind.TRANSIENT, f"plugin error {type(exc).__name__}")
        if result:
            return SendResult(True)
        text = _failure_text(result, _url_parts(url)) or "delivery failed"
        kind = FailureKind.PERMANENT if _PERMANENT_HINTS.search(text) else FailureKind.TRANSIENT
        return SendResult(False, kind, text)
