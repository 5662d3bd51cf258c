"""The link pages as a caregiver opens them: headless Chromium against the real API server.

What a frightened caregiver sees at 3 am on a phone after tapping the link in a push or an SMS:
who, what, since when, the state, who has been told, the last heart rate, the emergency plan,
and the acknowledge button on the first screen. Chromium is Debian's ``chromium`` package
(``scripts/test.sh`` installs it); the tests fail, never skip, without it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from models.alarm import Alarm, AlarmKind, Severity
from service.db import Alert, AlertState
from service.episodes import EpisodeEngine
from tests.alerting_helpers import (
    AlertingStack,
    ApiServer,
    FakeClock,
    HttpReceiver,
    Inbox,
    build_stack,
    patient_policy,
    register_team,
)

PHONE = {"width": 390, "height": 844}
"""A phone's viewport in CSS pixels (iPhone 12-15): the button must be on this first screen."""
NAME = '<script>alert("name")</script> Alex \u202egnp.exe'
"""A display name that would run a script unescaped, with a right-to-left override in it."""
PLAN = (
    "Adrenaline auto-injector in the blue bag, outer thigh.\n"
    "Call 112 and say: anaphylaxis.\n"
    "<img src=x onerror=alert('plan')>"
)
ACK_BUTTON = re.compile("I'm on it")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module (Debian's package: the Playwright CDN is not used)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium not found: install it with `sudo apt-get install -y chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


@dataclass
class Phone:
    """A browser tab at phone size that records what should never happen on a link page."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def watch(self) -> None:
        def console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):  # CSP violations are reported as errors
                self.problems.append(f"console {message.type}: {message.text}")

        self.page.on("console", console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("dialog", lambda dialog: self.problems.append(f"dialog: {dialog.message}"))


@pytest.fixture
def phone(browser: Browser) -> Iterator[Phone]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    tab = Phone(context.new_page())
    tab.watch()
    yield tab
    context.close()


@dataclass
class World:
    stack: AlertingStack
    clock: FakeClock
    api: ApiServer
    inbox: Inbox
    engine: EpisodeEngine


@pytest.fixture
def world(tmp_path, http: HttpReceiver, inbox: Inbox) -> Iterator[World]:
    """Alex (in Berlin) with caregivers Ann and Ben, an emergency contact and their own channel."""
    clock = FakeClock()  # 1_764_000_000: Mon 24 Nov 2025 17:00 in Berlin (CET)
    stack = build_stack(f"sqlite:///{tmp_path / 'service.sqlite3'}", clock)
    register_team(
        stack.db,
        "p1",
        [("Ann", [http.url("ann")]), ("Ben <b>bold</b>", [http.url("ben")])],
        emergency=("Emergency desk", [http.url("desk")]),
        wearer=[http.url("wearer")],
        policy=patient_policy(NAME, PLAN),
    )
    with ApiServer(stack.manager) as api:
        yield World(stack, clock, api, inbox, EpisodeEngine(stack.manager))
    stack.close()


def link_in(body: str, base_url: str, path: str) -> str:
    """The link of a message, pointed at the test's API server."""
    token = re.search(rf"/{path}/(\S+)", body)
    assert token is not None, body
    return f"{base_url}/{path}/{token.group(1)}"


def critical_episode(world: World) -> int:
    """A possible anaphylaxis at 17:00 with a heart rate of 131; Ann told, then Ben at 17:03."""
    vitals = {
        "heart_rate_bpm": 131.0,
        "heart_rate_time_s": world.clock() - 30,  # measured at 16:59:30
        "skin_temperature_c": 35.4,
        "battery_percent": 80.0,
    }
    onset = {"onset": 1.0, "episode_no": 1.0}
    world.engine.on_alarm(
        Alarm(
            "p1", world.clock(), AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-9", evidence=onset
        ),
        vitals,
    )
    world.stack.scheduler.run_until_idle()
    world.clock.advance(181)  # nobody answered Ann: Ben is told
    world.stack.scheduler.run_until_idle()
    world.clock.advance(60)  # 17:04: both are alerted again
    world.stack.scheduler.run_until_idle()
    with world.stack.db.session() as session:
        [alert] = session.query(Alert).all()
        return alert.id


def alert_row(world: World, alert_id: int) -> Alert:
    with world.stack.db.session() as session:
        return session.get_one(Alert, alert_id)


def test_a_caregiver_sees_the_whole_alert_and_acknowledges_from_the_first_screen(world, phone):
    alert_id = critical_episode(world)
    ben_link = link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack")
    page = phone.page

    response = page.goto(ben_link)
    assert response is not None and response.status == 200
    text = page.inner_text("body")
    # who (escaped, shown as typed, its direction override defused), what, since when
    assert '<script>alert("name")</script> Alex' in text
    assert "\u202e" not in text
    assert page.locator("script, img").count() == 0
    assert "possible anaphylaxis" in text
    assert "17:00 CET (4 min ago)" in text
    # the state in words, and who has been told when (names, never channel URLs)
    assert "Waiting for someone to acknowledge" in text
    assert re.search(r"Ann\W.*17:00 CET.*latest message 17:04 CET", text), text
    assert re.search(r"Ben <b>bold</b>\W.*17:03 CET", text), text
    assert "127.0.0.1" not in page.content().replace(world.api.base_url, "")
    # the last heart rate, and no other vitals
    assert "131 beats a minute (measured 16:59 CET" in text  # how old the reading is
    assert "35.4" not in text and "80 %" not in text
    # the emergency plan, its lines as typed
    for line in PLAN.splitlines():
        assert line in text
    # the acknowledge button first, big, on the phone's first screen, no sideways scrolling
    button = page.get_by_role("button", name=ACK_BUTTON)
    box = button.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    assert box["height"] >= 48 and box["width"] >= 0.8 * PHONE["width"] - 32, box
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert text.index("I'm on it") < text.index("Adrenaline") < text.index("Ann")
    # it keeps itself up to date while the alert goes on: a GET of this same page
    refresh = page.locator('meta[http-equiv="refresh"]').get_attribute("content")
    assert refresh is not None and refresh.startswith("30;"), refresh
    assert alert_row(world, alert_id).state == AlertState.ACTIVE, "opening the link acted"

    button.click()
    expect(page.get_by_text("You acknowledged at 17:04 CET")).to_be_visible()
    # the answer to the POST refreshes with a GET of the link, never by posting again
    refresh = page.locator('meta[http-equiv="refresh"]').get_attribute("content")
    assert refresh == f"30; url={ben_link.rsplit('/', 1)[1]}" and page.url == ben_link
    acked = alert_row(world, alert_id)
    assert (acked.state, acked.acked_by) == (AlertState.ACKNOWLEDGED, "Ben <b>bold</b>")
    text = page.inner_text("body")
    assert "others stop being alerted" in text and "131 beats a minute" in text
    assert "Adrenaline" in text
    assert page.get_by_role("button", name=ACK_BUTTON).count() == 0

    # Ann's link now says who is on it, and offers nothing to press
    page.goto(link_in(world.inbox.to("/ann")[0].body, world.api.base_url, "ack"))
    text = page.inner_text("body")
    assert "Acknowledged by Ben <b>bold</b> at 17:04 CET" in text
    assert page.get_by_role("button").count() == 0
    assert phone.problems == []


def test_an_alert_that_is_over_an_expired_link_and_the_wearers_own_page(world, phone):
    critical_episode(world)
    ann_link = link_in(world.inbox.to("/ann")[0].body, world.api.base_url, "ack")
    world.clock.advance(360)  # 17:10: the detectors say it calmed down
    end = Alarm("p1", world.clock(), AlarmKind.ANAPHYLAXIS, Severity.WARNING, "fw-9", True, {})
    world.engine.on_alarm(end)
    world.stack.scheduler.run_until_idle()
    page = phone.page

    page.goto(ann_link)
    text = page.inner_text("body")
    assert "Nothing to acknowledge" in text and "Over: no longer detected since 17:10 CET" in text
    assert page.get_by_role("button").count() == 0
    assert page.locator('meta[http-equiv="refresh"]').count() == 0, "an alert that is over"

    assert phone.problems == []

    world.clock.advance(2 * 86400)  # the link expired
    response = page.goto(ann_link)
    assert response is not None and response.status == 403
    assert "Link not usable" in page.inner_text("body") and "expired" in page.inner_text("body")
    assert [problem.rsplit(": ", 1)[-1] for problem in phone.problems] == [
        "the server responded with a status of 403 (Forbidden)"
    ]  # Chromium reports the refusal itself, and nothing else
    phone.problems.clear()

    # the wearer's "I'm OK" page: what the band shows, and the button on the first screen
    onset = {"onset": 1.0, "episode_no": 2.0}
    flush = Alarm("p1", world.clock(), AlarmKind.FLUSH, Severity.WARNING, "fw-9", evidence=onset)
    world.engine.on_alarm(flush, {"heart_rate_bpm": 101.0})
    world.stack.scheduler.run_until_idle()
    page.goto(link_in(world.inbox.to("/wearer")[-1].body, world.api.base_url, "im-ok"))
    text = page.inner_text("body")
    assert "Are you OK?" in text and "possible flush" in text and "17:10 CET" in text
    button = page.get_by_role("button", name=re.compile("I'm OK"))
    box = button.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    button.click()
    expect(page.get_by_text("Nobody will be alerted")).to_be_visible()
    with world.stack.db.session() as session:
        states = [alert.state for alert in session.query(Alert).order_by(Alert.id)]
    assert states == [AlertState.RESOLVED, AlertState.CANCELLED]
    assert phone.problems == []
