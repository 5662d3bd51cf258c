"""The :class:`Notifier` for every service Apprise speaks (ntfy, Pushover, Telegram, e-mail, …)."""

from __future__ import annotations

import hashlib
import logging
import re
from urllib.parse import urlsplit

import apprise

from models.alarm import Severity
from service.alerts.backoff import FailureKind
from service.alerts.const import ERROR_TEXT_MAX_CHARS
from service.alerts.notifier import Message, Notifier, SendResult

log = logging.getLogger(__name__)

_PERMANENT_HINTS = re.compile(r"\b(401|403|404|unauthori[sz]ed|forbidden|invalid)\b", re.I)
_URLISH = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)


def _failure_text(result: object) -> str:
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
    # Apprise messages name hosts, not credentials; URLs are stripped anyway to be sure.
    return _URLISH.sub("<url>", " | ".join(lines))[:ERROR_TEXT_MAX_CHARS]


class AppriseNotifier(Notifier):
    """Deliver through Apprise, one fresh ``Apprise`` object per send (thread-safe)."""

    def validate(self, url: str) -> str | None:
        """Reject URLs no Apprise plugin understands."""
        if apprise.Apprise().add(url):
            return None
        return "Apprise does not understand this URL (see https://appriseit.com/services/)"

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
        client = apprise.Apprise()
        if not client.add(url):
            return SendResult(False, FailureKind.PERMANENT, "URL not understood by Apprise")
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
        text = _failure_text(result) or "delivery failed"
        kind = FailureKind.PERMANENT if _PERMANENT_HINTS.search(text) else FailureKind.TRANSIENT
        return SendResult(False, kind, text)
