"""No channel URL reaches a log: Apprise logs a URL it cannot parse in full, and the HTTP library
logs request paths that hold tokens; ``flarewatch admin caregiver add`` and the service's sends
report in their own, secret-free words (real Apprise, real local webhook)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from flarewatch.cli import main
from models.alarm import Severity
from service.alerts.apprise_notifier import AppriseNotifier
from service.alerts.notifier import Message
from tests.alerting_helpers import HttpReceiver, Inbox

BOT_ID = "918273645"
TOKEN = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
"""Shaped like a Telegram bot token (bot id, colon, 35 characters)."""
CHAT = "-100424242"


def _leaks(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[str]:
    lines = [r.getMessage() for r in caplog.records]
    lines += [r.exc_text or "" for r in caplog.records]
    return [line for line in lines if any(secret in line for secret in secrets)]


@pytest.mark.parametrize(
    "mistyped",
    [
        f"tgram://{BOT_ID}:{TOKEN}./{CHAT}",  # pasted from a sentence: Apprise logs the token
        f"tgram://{BOT_ID}/{CHAT}",  # token left out: "Unparseable Telegram URL tgram://…"
    ],
)
def test_a_mistyped_telegram_url_is_refused_without_logging_its_secrets(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    mistyped: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    db = ["admin", "--database-url", f"sqlite:///{tmp_path}/service.sqlite3"]
    assert main([*db, "patient", "add", "alex"]) == 0
    code = main([*db, "caregiver", "add", "alex", "Alex", "--url", mistyped])
    out, err = capsys.readouterr()
    assert code == 1
    assert "tgram://" in err and "Apprise does not understand this URL" in err
    assert not [s for s in (TOKEN, BOT_ID, CHAT) if s in out + err]
    assert any(r.name == "apprise" for r in caplog.records), "Apprise said nothing: test is moot"
    assert _leaks(caplog, TOKEN, BOT_ID, CHAT) == []


def test_sends_log_neither_the_url_nor_its_parts(
    caplog: pytest.LogCaptureFixture, inbox: Inbox, http: HttpReceiver
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = AppriseNotifier()
    message = Message("flarewatch test", "Test message.", Severity.WARNING)
    good = notifier.send(f"{http.url(TOKEN)}?-X-Api-Key={BOT_ID}x", message)
    assert good.ok
    assert inbox.wait_for(f"/{TOKEN}", 1)
    refused = notifier.send(f"json://user:{TOKEN}@127.0.0.1:9/hook-{BOT_ID}", message)
    assert not refused.ok and TOKEN not in (refused.reason or "")
    assert any(r.name.startswith("urllib3") for r in caplog.records), "no HTTP debug log: moot"
    assert _leaks(caplog, TOKEN, BOT_ID) == []
