"""The :class:`Notifier` for every service Apprise speaks (ntfy, Pushover, Telegram, e-mail, …)."""

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

from models.alarm import Severity
from service.alerts.backoff import FailureKind
from service.alerts.const import ERROR_TEXT_MAX_CHARS, SECRET_PART_MIN_CHARS
from service.alerts.notifier import Message, Notifier, SendResult

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


def _fits(plugin: NotifyBase, message: Message) -> bool:
    """Whether the service takes ``message`` in one piece (its limits as Apprise knows them)."""
    title, body = len(message.title), len(message.body)
    if plugin.title_maxlen <= 0:  # no title field: Apprise puts the title on the first line
        return title + 2 + body <= plugin.body_maxlen
    if plugin.overflow_amalgamate_title:
        return title <= plugin.title_maxlen and title + body <= plugin.body_maxlen
    return title <= plugin.title_maxlen and body <= plugin.body_maxlen


def _split_if_too_long(plugin: NotifyBase, message: Message) -> None:
    """Send a message too long for its service as several, instead of one it refuses.

    Apprise's default ``overflow=upstream`` hands the whole text over, and Telegram (4096),
    Discord (2000) or Pushover (1024) then refuse a long emergency plan: the caregiver would get
    nothing from that channel. Split, the first piece holds the title, the action and the link
    (``service.alerts.render`` puts them first). A URL's own ``?overflow=`` is kept.
    """
    if plugin.overflow_mode == apprise.OverflowMode.UPSTREAM and not _fits(plugin, message):
        plugin.overflow_mode = apprise.OverflowMode.SPLIT


class AppriseNotifier(Notifier):
    """Deliver through Apprise, one fresh ``Apprise`` object per send (thread-safe).

    No channel URL reaches a log: Apprise's log records are scrubbed (:class:`_AppriseLogScrubber`)
    and this class reports problems in its own words, naming URLs only redacted.
    """

    def __init__(self) -> None:
        _SCRUBBER.install()

    def validate(self, url: str) -> str | None:
        """Reject URLs no Apprise plugin understands."""
        with _SCRUBBER.guarding(url):
            understood = apprise.Apprise().add(url)
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
        with _SCRUBBER.guarding(url):
            return self._send(url, message)

    def _send(self, url: str, message: Message) -> SendResult:
        client = apprise.Apprise()
        if not client.add(url):
            return SendResult(False, FailureKind.PERMANENT, "URL not understood by Apprise")
        _split_if_too_long(client[0], message)
        notify_type = (
            apprise.NotifyType.FAILURE
            if message.severity is Severity.CRITICAL
            else apprise.NotifyType.WARNING
        )
        try:
            result = client.notify(
                title=message.title,
                body=message.body,
                notify_type=notify_type,
                body_format=apprise.NotifyFormat.TEXT,
            )
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not kill the scheduler
            log.warning("apprise plugin raised %s", type(exc).__name__)
            return SendResult(False, FailureKind.TRANSIENT, f"plugin error {type(exc).__name__}")
        if result:
            return SendResult(True)
        text = _failure_text(result, _url_parts(url)) or "delivery failed"
        kind = FailureKind.PERMANENT if _PERMANENT_HINTS.search(text) else FailureKind.TRANSIENT
        return SendResult(False, kind, text)
