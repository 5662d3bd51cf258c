"""Messages as each kind of channel shows them: chat services that ping and format, and SMS.

Delivered for real by Apprise to a loopback receiver on a fake clock. Discord and Slack post only
to their own hosts, so their plugins' endpoint is pointed at the receiver (the plugin, its payload
and its escaping are Apprise's own); Mattermost and SMSEagle (a self-hosted SMS gateway) take a
host in their URL.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack

from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.lifecycle import Purpose
from service.alerts.manager import AlertManager
from service.alerts.render import AlertFacts, render_message
from service.alerts.tokens import TokenAction, verify_token
from service.db import Alert, Database
from service.episodes import EpisodeEngine
from tests.alerting_helpers import (
    REACTION_PLAN,
    SECRET,
    FakeClock,
    build_stack,
    patient_policy,
    register_team,
)

T0 = 1_764_036_720.0  # 03:12 in Berlin (CET), 2025-11-25
PLAN = REACTION_PLAN
VITALS = {"heart_rate_bpm": 131.0, "battery_percent": 80.0}
SMS_PART_SEPTETS = 153
"""GSM-7 characters in each part of a multi-part SMS (a phone may show the first part alone)."""
HOSTILE_NAME = "Alex @everyone @here"
HOSTILE_PLAN = (
    "Call @channel and @all, ping <@&123456789012345678> <@123456789012345678> @room "
    "@**all**; read [the plan](http://evil.example/phish) ||hidden||; ask sam@example.org."
)
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")
"""GSM 03.38, the SMS alphabet (3GPP TS 23.038 §6.2.1): an extension character takes two."""


def septets(text: str) -> int | None:
    """GSM-7 characters ``text`` takes in an SMS; ``None`` if it cannot be sent as GSM-7."""
    if not set(text) <= GSM7_BASIC | GSM7_EXTENSION:
        return None
    return len(text) + sum(c in GSM7_EXTENSION for c in text)


LINK = re.compile(r"http://127\.0\.0\.1:9/ack/[A-Za-z0-9_.-]+")


class Posts:
    """A loopback HTTP endpoint that records each JSON post and answers like a happy service."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                posts.append((self.path, json.loads(raw)))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                # SMSEagle's answer; the others only look at the status
                self.wfile.write(b'{"result": {"message_id": 1, "status": "ok"}}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def posts() -> Iterator[Posts]:
    receiver = Posts()
    yield receiver
    receiver.close()


def deliver_critical(tmp_path: Any, url: str, name: str = "Alex", plan: str = PLAN) -> Any:
    """Caregiver Ann (one channel, ``url``) is told of a critical episode; returns the stack."""
    clock = FakeClock(T0)
    stack = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", clock)
    register_team(stack.db, "p1", [("Ann", [url])], policy=patient_policy(name, plan))
    alarm = Alarm("p1", T0, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test-1", evidence={})
    EpisodeEngine(stack.manager).on_alarm(alarm, VITALS)
    stack.scheduler.run_until_idle()
    return stack


def assert_no_live_mentions_nor_links(text: str) -> None:
    """Nothing in ``text`` pings a crowd or shows a link under other words."""
    for mention in ("@everyone", "@here", "@channel", "@all", "@room", "@**all**"):
        assert mention not in text, mention
    assert not re.search(r"<@[!&]?\d", text), "a user or role ping"
    assert "[the plan](" not in text, "a masked link"
    assert not re.search(r"(?<!\\)\|\|hidden", text), "a spoiler hiding text"


def test_discord_gets_no_mass_mention_nor_masked_link_from_a_name_or_plan(
    tmp_path, posts, monkeypatch
):
    monkeypatch.setattr(NotifyDiscord, "notify_url", f"{posts.base}/discord")
    stack = deliver_critical(tmp_path, "discord://1234/abcd", HOSTILE_NAME, HOSTILE_PLAN)
    try:
        [(path, payload)] = posts.posts
        assert path == "/discord/1234/abcd"
        assert "allowed_mentions" not in payload, "Apprise does not limit pings: the text must"
        content = payload["content"]
        assert_no_live_mentions_nor_links(content)
        assert "sam@example.org" in content, "an ordinary e-mail address is left as it is"
        link = LINK.search(content)
        assert link, "the acknowledgement link is intact (no escapes inside it)"
        token = link.group(0).rsplit("/", 1)[1]
        assert stack.manager.redeem(token, TokenAction.ACK, via="link").acked_by == "Ann"
    finally:
        stack.close()


def test_mattermost_gets_no_mass_mention_nor_masked_link_from_a_name_or_plan(tmp_path, posts):
    url = f"mmost://127.0.0.1:{posts.port}/abcdefghijklmnopqrstuvwxyz"
    stack = deliver_critical(tmp_path, url, HOSTILE_NAME, HOSTILE_PLAN)
    stack.close()
    [(_path, payload)] = posts.posts
    assert_no_live_mentions_nor_links(payload["text"])
    assert "sam@example.org" in payload["text"]
    assert LINK.search(payload["text"])


def test_a_markdown_service_gets_the_name_escaped_and_the_link_intact(tmp_path, posts):
    """Rocket.Chat takes Markdown only: the text must be escaped, but not inside the link.

    Apprise's own conversion of plain text to Markdown also escapes the link's ``.``, ``-`` and
    ``_``, and ``127\\.0\\.0\\.1:9/ack/…`` is not a link a phone opens.
    """
    url = f"rocket://abcdefghijklmnop/qrstuvwxyz@127.0.0.1:{posts.port}/%23alerts"
    stack = deliver_critical(tmp_path, url, HOSTILE_NAME, HOSTILE_PLAN)
    try:
        [(_path, payload)] = posts.posts
        text = payload["text"]
        assert_no_live_mentions_nor_links(text)
        link = LINK.search(text)
        assert link, text
        token = link.group(0).rsplit("/", 1)[1]
        assert stack.manager.redeem(token, TokenAction.ACK, via="link").acked_by == "Ann"
    finally:
        stack.close()


def test_slack_pings_nobody_because_apprise_escapes_its_markup(tmp_path, posts, monkeypatch):
    """Slack pings only through ``<!channel>``-style markup, which Apprise escapes for text.

    If an Apprise upgrade stopped escaping it, a plan could ping a whole workspace again.
    """
    monkeypatch.setattr(NotifySlack, "webhook_url", f"{posts.base}/slack")
    plan = "Tell <!channel> <!here> <!everyone> <@U024BE7LH> <http://evil.example|the plan>"
    deliver_critical(tmp_path, "slack://T1234/B1234/abcdefgh", "Alex", plan).close()
    [(_path, payload)] = posts.posts
    text = json.dumps(payload)
    assert "<!" not in text and "<@" not in text and "<http" not in text, text
    assert payload.get("link_names") in (None, 0, False), "plain @channel must stay text"


def sms_url(posts: Posts) -> str:
    return f"smseagle://token1234@127.0.0.1:{posts.port}/+4915112345678?priority=high"


def sms_text(posts: Posts) -> str:
    return "".join(payload["params"]["message"] for _path, payload in posts.posts)


def first_part(text: str) -> str:
    """What a phone shows of a multi-part SMS when only its first part has arrived."""
    for end in range(len(text), 0, -1):
        size = septets(text[:end])
        if size is not None and size <= SMS_PART_SEPTETS:
            return text[:end]
    raise AssertionError("not GSM-7")


def test_the_first_part_of_an_sms_says_who_what_to_act_and_holds_the_link(tmp_path, posts):
    stack = deliver_critical(tmp_path, sms_url(posts), name="Alexandra Montgomery-Fairweather")
    try:
        text = sms_text(posts)
        assert (septets(text) or 0) > SMS_PART_SEPTETS, "a multi-part SMS"
        head = first_part(text)
        assert head.startswith("Alexandra"), head
        assert "possible anaphylaxis" in head and "act now" in head, head
        link = LINK.search(head)
        assert link, f"the whole link must be in the first part: {head!r}"
        assert f"Act now: {PLAN}" in text[len(head) :], "the plan follows, in full"
        assert "Since 03:12 CET" in text[len(head) :]
        token = link.group(0).rsplit("/", 1)[1]
        assert stack.manager.redeem(token, TokenAction.ACK, via="link").acked_by == "Ann"
    finally:
        stack.close()


def test_an_sms_gets_only_gsm7_characters_even_from_a_name_with_mentions(tmp_path, posts):
    """Defusing mentions (zero-width marks) is for chat services: it would halve an SMS."""
    deliver_critical(tmp_path, sms_url(posts), HOSTILE_NAME, HOSTILE_PLAN).close()
    text = sms_text(posts)
    assert septets(text) is not None, [c for c in text if septets(c) is None]
    first = text.splitlines()[0]
    assert first.startswith("Alex @everyone") and first.endswith(": possible anaphylaxis, act now")


def facts(**kw: Any) -> AlertFacts:
    base: dict[str, Any] = {
        "patient_name": "Alex",
        "timezone": "Europe/Berlin",
        "emergency_plan": PLAN,
        "kind": "anaphylaxis",
        "severity": Severity.CRITICAL,
        "since_s": T0,
        "now_s": T0 + 60,
        "vitals": VITALS,
    }
    return AlertFacts(**(base | kw))


def test_a_link_too_long_for_the_first_sms_part_still_follows_who_and_what_at_once():
    link = "https://flarewatch.care.example.org/ack/" + "A" * 100 + ".xyz"
    sms = render_message(facts(patient_name="Alexandra Montgomery"), Purpose.NOTIFY, link).sms
    assert sms is not None
    lines = sms.splitlines()
    assert lines[0] == "Alexandra Montgomery: possible anaphylaxis, act now", (
        "a name is not cut for a link that would not fit all the same"
    )
    assert lines[1:4] == [
        link,
        "Open the link if you are on it: it stops the alarm for the others.",
        "CRITICAL: Alexandra Montgomery - possible anaphylaxis - act now",
    ]


def test_a_critical_sms_holds_the_whole_link_in_its_first_part_behind_a_40_character_url(
    tmp_path,
):
    """The token was 70-76 characters: behind a 40-character public URL the link ended in the
    second part whatever the name, so a phone showing the first part showed no link."""
    public_url = "https://alerts.care-team.example.org:443"
    name = "Alexandra Montgomery"
    assert (len(public_url), len(name)) == (40, 20)
    db = Database(f"sqlite:///{tmp_path}/fw.sqlite3", secret_key=SECRET)
    manager = AlertManager(db, FakeClock(T0), secret_key=SECRET, public_base_url=public_url)
    alert = Alert(id=2_000_000_000, patient_id="p1", created_s=T0)  # many alerts later
    link = manager.link(TokenAction.ACK, alert, 4_000)
    db.dispose()
    sms = render_message(facts(patient_name=name), Purpose.NOTIFY, link).sms
    assert sms is not None
    who_what_link = f"{name}: possible anaphylaxis, act now\n{link}\n"
    assert sms.startswith(who_what_link), "the name is not cut: the link leaves it room"
    assert first_part(sms).startswith(who_what_link.rstrip()), "the whole link in the first part"
    claim = verify_token(SECRET, link.rsplit("/", 1)[1], T0)
    assert (claim.action, claim.alert_id, claim.contact_id) == (TokenAction.ACK, alert.id, 4_000)


def test_a_short_sms_fits_one_segment_and_the_wearer_gets_their_own_words():
    link = "http://127.0.0.1:9/cancel/abc.def"
    flush = facts(kind="flush", severity=Severity.WARNING)
    sms = render_message(flush, Purpose.PATIENT_CHECK, link).sms
    assert sms is not None
    assert sms.splitlines()[:3] == [
        "Are you OK? Possible flush reaction",
        link,
        "Open the link if you are OK: it cancels the alarm.",
    ]
    band = render_message(facts(kind="no_data"), Purpose.PATIENT_CHECK, link).sms
    assert band is not None
    assert band.splitlines()[:3] == [
        "Check your band - no data from the band",
        link,
        "Open the link if you took the band off on purpose.",
    ]


def test_gsm7_counts_the_extension_characters_twice_and_refuses_the_rest():
    from service.alerts.render import gsm7_septets

    assert gsm7_septets("Alex @ 112; é") == 13
    assert gsm7_septets("[x]") == 5
    assert gsm7_septets("\u200bx") is None
    assert gsm7_septets("علي") is None
