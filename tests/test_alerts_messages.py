"""The messages as a frightened caregiver reads them: on a lock screen, in an SMS, at 3 am.

Delivered for real (Apprise → local HTTP and SMTP receivers) on a fake clock. The title alone
(what a lock screen shows) must say which message it is, who, what and what to do; the action
(the emergency plan) and the link come first in the body; times are on the patient's clock.
"""

from __future__ import annotations

import email
import json
import re
import threading
from email import policy as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from flarewatch.localservers import free_port
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.tokens import TokenAction
from service.db import Patient
from service.episodes import EpisodeEngine
from tests.alerting_helpers import (
    REACTION_PLAN,
    FakeClock,
    Received,
    build_stack,
    patient_policy,
    register_team,
)

T0 = 1_764_036_720.0  # 03:12 in Berlin (CET), 2025-11-25
PLAN = REACTION_PLAN
LOCK_SCREEN_CHARS = 60
"""What a lock screen shows of a title, about (40-60 characters)."""


@pytest.fixture
def world(tmp_path, http):
    """Patient p1 (Berlin) with caregivers ann and bob and a wearer, all at the HTTP receiver."""
    clock = FakeClock(T0)

    def make(name: str = "Alex", plan: str = PLAN, extra: list[tuple[str, list[str]]] = ()):
        stack = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", clock)
        team = [("Ann", [http.url("ann")]), ("Bob", [http.url("bob")]), *extra]
        register_team(
            stack.db, "p1", team, wearer=[http.url("wearer")], policy=patient_policy(name, plan)
        )
        made.append(stack)
        return stack, clock, EpisodeEngine(stack.manager)

    made: list[Any] = []
    yield make
    for stack in made:
        stack.close()


def alarm(kind: AlarmKind, severity: Severity, t: float, **kw: Any) -> Alarm:
    return Alarm("p1", t, kind, severity, "fw-test-1", evidence={"hr_rise_bpm": 45.0}, **kw)


VITALS = {
    "heart_rate_bpm": 131.0,
    "skin_temperature_c": 35.2,
    "acceleration_sd_g": 0.01,
    "battery_percent": 80.0,
}


def step(stack, clock, seconds: float) -> None:
    clock.advance(seconds)
    stack.scheduler.run_until_idle()


def critical(stack, clock, engine) -> None:
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, clock()), VITALS)
    stack.scheduler.run_until_idle()


def lock_screen(message: Received) -> str:
    return message.title[:LOCK_SCREEN_CHARS]


def head(message: Received, chars: int) -> str:
    """The first ``chars`` of what an SMS gateway or a title-less channel shows."""
    return f"{message.title}\n{message.body}"[:chars]


def test_the_lock_screen_says_who_what_and_to_act_and_the_plan_and_link_come_first(world, inbox):
    stack, clock, engine = world()
    critical(stack, clock, engine)
    [first] = inbox.to("/ann")
    assert lock_screen(first) == "CRITICAL: Alex - possible anaphylaxis - act now"
    lines = first.body.splitlines()
    assert lines[0] == f"Act now: {PLAN}"
    assert re.fullmatch(
        r"I'm on it \(stops the alarm for the others\): http://\S+/ack/\S+", lines[1]
    )
    assert "/ack/" in head(first, 320), "the link must survive a channel that cuts the message"


@pytest.mark.parametrize(
    ("steps", "step_s", "since"),
    [
        (4, 60, "Since 03:12 CET (4 min ago); last heart rate 131 beats a minute."),
        # "2 h 5 min ago" was read "2 H 5 minutes ago" by VoiceOver and TalkBack
        (25, 300, "Since 03:12 CET (2 hours 5 min ago)"),
    ],
)
def test_times_are_on_the_patients_clock_with_the_zone_and_how_long_ago(
    world, inbox, steps, step_s, since
):
    stack, clock, engine = world()
    critical(stack, clock, engine)
    for _ in range(steps):
        step(stack, clock, step_s)
    repeat = inbox.to("/ann")[-1]
    assert since in repeat.body
    assert "2025" not in repeat.body, "the day is named only when it is not today"
    assert not re.search(r"\d h\b", repeat.body), "hours as a word a screen reader says as one"


def test_each_kind_of_message_is_told_apart_by_its_title(world, inbox):
    stack, clock, engine = world()
    engine.on_alarm(alarm(AlarmKind.FLUSH, Severity.WARNING, T0), VITALS)
    stack.scheduler.run_until_idle()
    step(stack, clock, 60)  # the wearer did not cancel: ann is told
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, clock()), VITALS)
    stack.scheduler.run_until_idle()
    step(stack, clock, 60)  # a repeat
    step(stack, clock, 120)  # 3 min without an answer: bob
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, clock(), resolved=True))
    step(stack, clock, 1)
    titles = [m.title for m in inbox.to("/wearer") + inbox.to("/ann") + inbox.to("/bob")]
    assert titles == [
        "Are you OK? Possible flush reaction - tap I'm OK to cancel",
        "WARNING: Alex - possible flush reaction - check on them",
        "WORSE, now CRITICAL: Alex - possible anaphylaxis - act now",
        "REPEAT CRITICAL: Alex - possible anaphylaxis - still no answer",
        "All clear: Alex - possible anaphylaxis is over",
        "CRITICAL: Alex - possible anaphylaxis - nobody answered, act now",
        "All clear: Alex - possible anaphylaxis is over",
    ]
    assert all(len(t) <= 64 for t in titles)
    assert inbox.to("/bob")[0].body.startswith("The people alerted before you have not answered.")
    assert inbox.to("/ann")[1].body.startswith("It got worse: now CRITICAL.")
    assert "Nobody acknowledged it: it ended by itself." in inbox.to("/ann")[-1].body


def test_the_all_clear_says_who_acknowledged(world, inbox):
    stack, clock, engine = world()
    critical(stack, clock, engine)
    token = re.search(r"/ack/(\S+)", inbox.to("/ann")[0].body).group(1)
    stack.manager.redeem(token, TokenAction.ACK, via="link")
    engine.on_alarm(alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, T0 + 600, resolved=True))
    step(stack, clock, 600)
    all_clear = inbox.to("/ann")[-1]
    assert all_clear.body.splitlines()[:2] == [
        "Alex: possible anaphylaxis - no longer detected (after 10 min).",
        "Ann had acknowledged it.",
    ]


def test_only_the_heart_rate_no_raw_sensor_values_nor_internal_ids(world, inbox):
    stack, clock, engine = world()
    critical(stack, clock, engine)
    body = inbox.to("/ann")[0].body
    assert "heart rate 131 beats a minute" in body
    for jargon in ("°C", "skin temperature", "movement", " g,", "battery", "p1", "alert 1"):
        assert jargon not in body, jargon
    assert "Severity" not in body, "the title says it"


RTL_NAME = "\u202eعلي\u202c"  # Arabic, with a right-to-left override typed into it


def test_untrusted_names_and_plans_cannot_fake_lines_nor_reorder_the_message(world, inbox):
    name = "Alex\nAll clear: nothing to do <b>*bold*</b> " + "x" * 150
    plan = "Step 1: adrenaline\r\n\nStep 2:\tcall\x07 112 now\n" + "Then wait. " * 60
    stack, clock, engine = world(name=name, plan=plan)
    critical(stack, clock, engine)
    [first] = inbox.to("/ann")
    assert "\n" not in first.title and len(first.title) <= 90
    assert first.title.startswith("CRITICAL: Alex All clear: nothi... - possible anaphylaxis")
    lines = first.body.splitlines()
    assert lines[0].startswith("Act now: follow Alex All clear: nothing to do <b>*bold*</b> xx")
    assert "/ack/" in lines[1], "a long plan must not push the link down"
    assert lines[-3:-1] == ["Step 1: adrenaline", "Step 2: call 112 now"]
    assert not any(line.startswith("All clear") for line in lines)


def test_right_to_left_names_are_isolated(world, inbox):
    stack, clock, engine = world(name=RTL_NAME)
    critical(stack, clock, engine)
    title = inbox.to("/ann")[0].title
    assert title == "CRITICAL: \u2068علي\u2069 - possible anaphylaxis - act now"


def test_an_e_mail_is_plain_text_with_a_one_line_subject(world, inbox):
    raw: list[bytes] = []
    done = threading.Event()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            raw.append(envelope.content)
            done.set()
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = f"mailto://127.0.0.1:{port}?from=fw@example.org&to=sam@example.org&mode=insecure"
        stack, clock, engine = world(name="Alex <script>\r\nBcc: x@example.org")
        with stack.db.session() as session:
            from service.db.care_teams import add_contact

            add_contact(session, "p1", "Sam", [url])
        # Sam is the third caregiver: end the wait for an answer at once
        critical(stack, clock, engine)
        step(stack, clock, 180)
        step(stack, clock, 180)
        assert done.wait(10)
    finally:
        controller.stop()
    message = email.message_from_bytes(raw[0], policy=email_policy.default)
    assert message["bcc"] is None
    assert str(message["subject"]).startswith("CRITICAL: Alex <script> Bcc: x@... - ")
    parts = [p.get_content_type() for p in message.walk() if not p.is_multipart()]
    assert parts == ["text/plain"], parts


class ChatReceiver:
    """A Mattermost-style webhook on loopback (Apprise's ``mmost://``): records each post's text."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.posts.append(json.loads(raw)["text"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self) -> str:
        return f"mmost://127.0.0.1:{self.server.server_address[1]}/abcdefghijklmnopqrstuvwxyz"


def test_a_plan_too_long_for_the_channel_arrives_in_pieces_the_first_with_the_link(tmp_path):
    plan = " ".join(f"Step {i}: do this and that, then check again." for i in range(150))
    chat = ChatReceiver()
    chat.thread.start()
    clock = FakeClock(T0)
    stack = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", clock)
    try:
        register_team(stack.db, "p1", [("Sam", [chat.url()])], policy=patient_policy(plan=plan))
        critical(stack, clock, EpisodeEngine(stack.manager))
    finally:
        stack.close()
        chat.server.shutdown()
        chat.server.server_close()
    limit = 4000  # Apprise's body_maxlen for Mattermost; Telegram 4096, Discord 2000
    assert chat.posts and all(len(post) <= limit for post in chat.posts), [
        len(p) for p in chat.posts
    ]
    first = chat.posts[0].splitlines()
    assert first[0] == "CRITICAL: Alex - possible anaphylaxis - act now"
    assert "/ack/" in first[2]
    assert "Step 149: do this and that, then check again." in "".join(chat.posts)


def test_a_lost_signal_asks_to_check_on_them_not_to_follow_the_reaction_plan(world, inbox):
    stack, clock, _engine = world()
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        stack.manager.open_alert(
            txn, patient, kind="no_data", severity=Severity.WARNING, since_s=txn.now_s
        )
    stack.scheduler.run_until_idle()
    step(stack, clock, 600)  # the wearer did not answer within the signal window
    [notice] = inbox.to("/ann")
    assert notice.title == "WARNING: Alex - no data from the band - check on them"
    assert notice.body.splitlines()[0] == (
        "What to do: check on Alex (call or go): the band cannot watch over them now."
    )
    assert "adrenaline" not in notice.body.lower()
