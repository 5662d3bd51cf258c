"""The link pages for people who see badly, use a screen reader, or tap with shaky hands.

A caregiver woken at 3 am, on a phone with large system text or dark mode, maybe on VoiceOver or
TalkBack; a patient mid-reaction pressing "I'm OK". Each page is checked in Debian's Chromium
(the fixtures of ``tests/test_link_pages_browser.py``) with axe-core's WCAG 2.2 A/AA and
best-practice rules (the ``axe-playwright-python`` package bundles axe-core: no npm), light and
dark, and by hand for what axe cannot judge: the button's size and place on the first screen at
200 % text, the keyboard, pages without JavaScript, a double tap, and a page that reloads itself
under a screen reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, Page, ViewportSize, expect

from models.alarm import Alarm, AlarmKind, Severity
from service.api.pages import SECURITY_HEADERS
from service.db import Alert, AlertState
from tests import test_link_pages_browser as browser_tests
from tests.test_link_pages_browser import ACK_BUTTON, PHONE, Phone, World, critical_episode, link_in

browser = browser_tests.browser
phone = browser_tests.phone
world = browser_tests.world
"""The fixtures of the browser tests: one Chromium, a phone-sized tab, Alex's care team."""

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
"""WCAG 2.2 level A and AA, and axe's best practices (landmarks, one ``h1``…)."""
SMALL_PHONE = ViewportSize(width=320, height=568)
"""The narrowest phone (iPhone SE), and what a 640 px wide screen shows at 200 % browser zoom."""
LARGE_TEXT_PX = 32
"""The browser's default font size at 200 % (16 px is 100 %): Android's and Chrome's text size."""
PHONE_SIZE = ViewportSize(width=PHONE["width"], height=PHONE["height"])
"""The browser tests' phone, typed for Playwright."""
MIN_TARGET_PX = 44
"""The smallest button a shaky finger hits (WCAG 2.5.5, Apple's and Android's guidelines)."""


def axe_violations(page: Page, *, skip: tuple[str, ...] = ()) -> list[str]:
    """axe-core's violations on the page as it is shown now, one line each."""
    options = {
        "runOnly": {"type": "tag", "values": AXE_TAGS},
        "rules": {rule: {"enabled": False} for rule in skip},
    }
    found = Axe().run(page, options=options).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in found]


def check_page(page: Page, *, skip: tuple[str, ...] = ()) -> None:
    """axe in light and dark mode, and the page's structure a screen reader user navigates by."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert axe_violations(page, skip=skip) == [], (scheme, page.url)
    page.emulate_media(color_scheme="light")
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("h1").count() == 1 and page.locator("main").count() == 1
    assert page.title() and page.title() == page.inner_text("h1")
    assert page.evaluate("document.getAnimations().length") == 0  # nothing moves
    # no abbreviation a screen reader spells out letter by letter
    assert not re.search(r"\bbpm\b|\d h\b", page.inner_text("main")), page.url


def flush_for_the_wearer(world: World) -> str:
    """A flush warning in its cancel window; the wearer's "I'm OK" link."""
    onset = {"onset": 1.0, "episode_no": 2.0}
    flush = Alarm("p1", world.clock(), AlarmKind.FLUSH, Severity.WARNING, "fw-9", evidence=onset)
    world.engine.on_alarm(flush, {"heart_rate_bpm": 101.0})
    world.stack.scheduler.run_until_idle()
    return link_in(world.inbox.to("/wearer")[-1].body, world.api.base_url, "im-ok")


def end_of_reaction(world: World) -> None:
    """17:10: the detectors say the critical episode calmed down (the all-clear goes out)."""
    world.clock.advance(360)
    end = Alarm("p1", world.clock(), AlarmKind.ANAPHYLAXIS, Severity.WARNING, "fw-9", True, {})
    world.engine.on_alarm(end)
    world.stack.scheduler.run_until_idle()


def pages_with_a_button(world: World) -> Iterator[tuple[str, re.Pattern[str]]]:
    """Ben's acknowledgement link while nobody is on it, then (the reaction over) the wearer's."""
    yield link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack"), ACK_BUTTON
    end_of_reaction(world)
    yield flush_for_the_wearer(world), re.compile("I'm OK")


def alert_states(world: World) -> list[str]:
    with world.stack.db.session() as session:
        return [alert.state for alert in session.query(Alert).order_by(Alert.id)]


@pytest.fixture
def large_text(phone: Phone) -> Iterator[Page]:
    """The phone with the browser's text at 200 % (as Chrome's text size setting does)."""
    session = phone.page.context.new_cdp_session(phone.page)
    session.send("Page.setFontSizes", {"fontSizes": {"standard": LARGE_TEXT_PX}})
    yield phone.page


def test_every_link_page_passes_axe_light_and_dark_with_one_main_landmark(world, phone):
    critical_episode(world)
    page = phone.page
    ben = link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack")

    page.goto(ben)  # waiting: reloads itself (meta-refresh: see the next test)
    check_page(page, skip=("meta-refresh",))
    page.get_by_role("link", name="Stop updating this page").click()
    check_page(page)  # the same page, still
    page.get_by_role("button", name=ACK_BUTTON).click()
    expect(page.get_by_text("You acknowledged")).to_be_visible()
    assert page.title().startswith("Acknowledged:")  # the new page's title says what changed
    check_page(page)
    page.goto(ben)
    check_page(page, skip=("meta-refresh",))  # acknowledged, going on: reloads itself
    end_of_reaction(world)
    page.goto(ben)
    check_page(page)  # over

    label = link_in(world.inbox.to("/ann")[-1].body, world.api.base_url, "label")
    page.goto(label)
    check_page(page)
    page.get_by_role("button", name="Yes, a real reaction").click()
    expect(page.get_by_text("kept as a real reaction")).to_be_visible()
    assert page.title() == "Thank you"
    check_page(page)

    page.goto(flush_for_the_wearer(world))
    check_page(page)
    page.get_by_role("button", name=re.compile("I'm OK")).click()
    expect(page.get_by_text("Nobody will be alerted")).to_be_visible()
    assert page.title() == "Cancelled"
    check_page(page)

    page.goto(ben.replace("/ack/", "/ack/x"))  # a refusal
    check_page(page)
    assert [p for p in phone.problems if "403" not in p] == []


def test_a_screen_reader_user_can_stop_the_page_reloading_under_them(world, phone):
    # A page that loads itself again every 30 s sends VoiceOver and TalkBack back to its top and
    # drops the keyboard focus (WCAG 2.2.1; axe's meta-refresh): it can be turned off, from a
    # link right after the button, before the plan and the details they take long to read.
    alert_id = critical_episode(world)
    page = phone.page
    ben = link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack")
    page.goto(ben)
    stop = page.get_by_role("link", name="Stop updating this page")
    text = page.inner_text("main")
    assert text.index("I'm on it") < text.index("Stop updating") < text.index("Adrenaline")

    stop.click()
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    assert axe_violations(page) == []
    assert "does not update itself" in page.inner_text("main")
    page.get_by_role("button", name=ACK_BUTTON).click()  # acts as from the page that reloads
    expect(page.get_by_text("You acknowledged at 17:04 CET")).to_be_visible()
    assert alert_states(world) == [AlertState.ACKNOWLEDGED]
    assert page.locator('meta[http-equiv="refresh"]').count() == 0, "turned on again by the POST"

    page.get_by_role("link", name="Update this page now").click()  # back to the usual page
    assert page.url == ben
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    assert alert_states(world) == [AlertState.ACKNOWLEDGED] and alert_id
    assert phone.problems == []


def test_with_large_text_the_button_is_on_the_first_screen_and_nothing_scrolls_sideways(
    world, phone, large_text
):
    critical_episode(world)
    page = large_text
    for link, button_name in pages_with_a_button(world):
        page.set_viewport_size(PHONE_SIZE)
        page.goto(link)
        assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 32
        box = page.get_by_role("button", name=button_name).bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], (link, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.set_viewport_size(SMALL_PHONE)  # 200 % text on the narrowest phone: it reflows
        page.reload()
        assert page.evaluate("document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
    assert phone.problems == []


def test_with_large_text_the_label_pages_answers_are_on_the_first_screen(world, phone, large_text):
    """The question and both answers first; what happened and why it is asked below them."""
    critical_episode(world)
    end_of_reaction(world)
    page = large_text
    page.set_viewport_size(PHONE_SIZE)
    page.goto(link_in(world.inbox.to("/ann")[-1].body, world.api.base_url, "label"))
    for name in ("Yes, a real reaction", "No, a false alarm"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], (name, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.problems == []


def test_at_200_percent_browser_zoom_the_button_is_on_the_first_screen(world, browser: Browser):
    critical_episode(world)
    context = browser.new_context(viewport=SMALL_PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    for link, button_name in pages_with_a_button(world):
        page.goto(link)
        box = page.get_by_role("button", name=button_name).bounding_box()
        assert box is not None and box["y"] + box["height"] <= SMALL_PHONE["height"], box
        assert page.evaluate("document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
    context.close()


def test_buttons_are_large_named_focus_visible_and_work_by_keyboard(world, browser: Browser):
    critical_episode(world)
    # a phone with a Bluetooth keyboard or a switch
    context = browser.new_context(viewport=PHONE_SIZE)
    page = context.new_page()
    page.goto(link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack"))
    page.keyboard.press("Tab")  # the first thing the keyboard reaches is the button
    focused = page.evaluate(
        "(e => [e.textContent, getComputedStyle(e).outlineStyle,"
        " parseFloat(getComputedStyle(e).outlineWidth)])(document.activeElement)"
    )
    assert focused[0] == "I'm on it: acknowledge" and focused[1] != "none" and focused[2] >= 2
    box = page.get_by_role("button", name=ACK_BUTTON).bounding_box()
    assert box is not None and min(box["width"], box["height"]) >= MIN_TARGET_PX
    page.keyboard.press("Enter")
    expect(page.get_by_text("You acknowledged at 17:04 CET")).to_be_visible()
    assert alert_states(world) == [AlertState.ACKNOWLEDGED]

    end_of_reaction(world)
    page.goto(link_in(world.inbox.to("/ann")[-1].body, world.api.base_url, "label"))
    for name in ("Yes, a real reaction", "No, a false alarm"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and min(box["width"], box["height"]) >= MIN_TARGET_PX, name
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(page.get_by_text("kept as a false alarm")).to_be_visible()
    context.close()


def test_every_page_works_without_javascript_under_the_same_headers(world, browser: Browser):
    critical_episode(world)
    context = browser.new_context(viewport=PHONE_SIZE, java_script_enabled=False)
    page = context.new_page()
    response = page.goto(link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack"))
    assert response is not None
    assert {k: response.headers[k] for k in SECURITY_HEADERS} == SECURITY_HEADERS
    page.get_by_role("button", name=ACK_BUTTON).click()
    expect(page.get_by_text("You acknowledged at 17:04 CET")).to_be_visible()
    end_of_reaction(world)
    page.goto(link_in(world.inbox.to("/ann")[-1].body, world.api.base_url, "label"))
    page.get_by_role("button", name="Yes, a real reaction").click()
    expect(page.get_by_text("kept as a real reaction")).to_be_visible()
    page.goto(flush_for_the_wearer(world))
    page.get_by_role("button", name=re.compile("I'm OK")).click()
    expect(page.get_by_text("Nobody will be alerted")).to_be_visible()
    assert alert_states(world) == [AlertState.RESOLVED, AlertState.CANCELLED]
    context.close()


def test_a_double_tap_on_im_ok_says_cancelled_not_refused(world, phone):
    # A patient mid-reaction taps twice, or opens the link again: the second answer must say
    # the alarm is cancelled, not "Not done … can no longer be cancelled", nor offer the button.
    critical_episode(world)
    end_of_reaction(world)
    link = flush_for_the_wearer(world)
    page = phone.page
    page.goto(link)
    first = page.request.post(link)
    second = page.request.post(link)
    assert first.status == 200 and "Nobody will be alerted" in first.text()
    assert second.status == 200, second.text()
    assert "Nobody will be alerted" in second.text() and "Not done" not in second.text()
    page.goto(link)  # the link opened again
    assert "already cancelled" in page.inner_text("main")
    assert page.get_by_role("button").count() == 0
    assert alert_states(world) == [AlertState.RESOLVED, AlertState.CANCELLED]

    ben = link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack")  # a double ack
    assert page.request.post(ben).status == page.request.post(ben).status == 200
    assert phone.problems == []


def test_too_late_to_cancel_says_so_in_plain_words(world, phone):
    critical_episode(world)
    end_of_reaction(world)
    link = flush_for_the_wearer(world)
    world.clock.advance(61)  # the cancel window is over: the caregivers are told
    world.stack.scheduler.run_until_idle()
    page = phone.page
    page.goto(link)
    assert page.get_by_role("button").count() == 0, "a button that can only fail"
    text = page.inner_text("main")
    assert "Too late to cancel" in page.title() and "tell them you are OK" in text
    refused = page.request.post(link)
    assert refused.status == 409 and "Too late to cancel" in refused.text()
    assert "cancel window" not in refused.text()  # the wearer's words, not the service's
    assert alert_states(world)[-1] == AlertState.ACTIVE
    assert phone.problems == []


def test_dark_mode_is_dark(world, phone):
    # At 3 am with the phone in dark mode, a white page is a flash in the eyes.
    critical_episode(world)
    page = phone.page
    page.emulate_media(color_scheme="dark")
    page.goto(link_in(world.inbox.to("/ben")[0].body, world.api.base_url, "ack"))
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in re.findall(r"\d+", background)[:3]]
    assert max(channels) < 64, background
    assert axe_violations(page, skip=("meta-refresh",)) == []
