"""The web app in headless Chromium, at phone size: sign in, see, label, sign out.

Debian's ``chromium`` (the fixtures of ``tests/test_link_pages_browser.py``); every page under
the same Content-Security-Policy as the link pages (no script, the one hashed style), checked by
axe-core (WCAG 2.2 A/AA) light and dark, and with no console error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import expect

from models.alarm import AlarmKind
from service.alerts.channel_changes import ChannelOffer
from service.alerts.own_servers import OwnServers
from service.db.models import Episode
from service.stores.sqlite import SqliteStore
from tests import test_link_pages_accessibility as accessibility_tests
from tests import test_link_pages_browser as browser_tests
from tests.alerting_helpers import HttpReceiver
from tests.test_link_pages_accessibility import MIN_TARGET_PX, PHONE_SIZE, SMALL_PHONE, check_page
from tests.test_link_pages_browser import PHONE, Phone
from tests.web_app_helpers import PASSWORD, CareWorld, care_world

browser = browser_tests.browser
phone = browser_tests.phone
large_text = accessibility_tests.large_text
"""One Chromium for the module, a phone-sized tab that records console errors, 200 % text."""


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    """The care world with a SQLite sample store holding Alex's last two hours (a surge)."""
    with (
        SqliteStore(tmp_path / "samples.sqlite3") as store,
        care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", http.url(""), store) as built,
    ):
        built.record_vitals("p1", range(0, 120), lambda minute: 125.0 if minute < 10 else 64.0)
        yield built


def sign_in(phone: Phone, world: CareWorld, username: str, password: str = PASSWORD) -> None:
    page = phone.page
    page.goto(f"{world.api.base_url}/app")
    expect(page).to_have_url(f"{world.api.base_url}/app/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_caregiver_signs_in_sees_the_alert_labels_the_episode_and_signs_out(world, phone):
    episode_id = world.episode("p1", AlarmKind.ANAPHYLAXIS)
    page = phone.page
    sign_in(phone, world, "ann", "a wrong password!")
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    check_page(page)
    assert phone.problems == [
        "console error: Failed to load resource: the server responded with a status of 401 "
        "(Unauthorized)"
    ]  # Chromium's note of the refusal's status, nothing else
    phone.problems.clear()

    sign_in(phone, world, "ann")
    expect(page).to_have_url(f"{world.api.base_url}/app")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your patients")
    expect(page.locator("main")).to_contain_text("possible anaphylaxis since")
    expect(page.locator("main")).not_to_contain_text("Bo")
    check_page(page)

    page.get_by_role("link", name="Alex").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alex")
    expect(page.locator(".plan")).to_contain_text("Adrenaline auto-injector")
    chart = page.get_by_role("img", name="The last 6 hours")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]  # fits the phone
    check_page(page)
    page.get_by_label("What").select_option("trigger")
    page.get_by_label("In a few words").fill("ate a curry at lunch")
    page.get_by_role("button", name="Add to the diary").click()
    expect(page.locator("main")).to_contain_text("A possible trigger: ate a curry at lunch")
    page.get_by_role("button", name="Yes (a real reaction)").click()
    expect(page.locator("table")).to_contain_text("a real reaction, said by Ann")
    with world.stack.db.session() as session:
        assert session.get_one(Episode, episode_id).label == "reaction"

    page.locator(f'a[href="/app/patients/p1/episodes/{episode_id}"]').click()
    expect(page.get_by_role("heading", level=2).first).to_have_text(
        "Possible anaphylaxis (critical)"
    )
    expect(page.get_by_role("img", name="From ")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Ann was told")
    expect(page.locator("main")).to_contain_text("A possible trigger: ate a curry at lunch")
    check_page(page)
    page.get_by_role("button", name="No (a false alarm)").click()
    expect(page).to_have_url(f"{world.api.base_url}/app/patients/p1/episodes/{episode_id}")
    expect(page.locator("main")).to_contain_text("a false alarm, said by Ann")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{world.api.base_url}/app/login")
    page.goto(f"{world.api.base_url}/app/patients/p1")
    expect(page).to_have_url(f"{world.api.base_url}/app/login")
    assert phone.problems == []


def test_a_researcher_sees_pseudonymised_episodes_and_downloads_them(world, phone):
    world.episode("p2")
    page = phone.page
    sign_in(phone, world, "rita")
    expect(page).to_have_url(f"{world.api.base_url}/app/research")
    expect(page.locator("main")).to_contain_text("1 episode of 1 consenting subject")
    expect(page.locator("main")).not_to_contain_text("Bo")
    check_page(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    assert download.value.suggested_filename == "flarewatch-episodes.csv"
    assert phone.problems == []


def test_with_large_text_the_app_reflows_on_a_phone_and_sign_in_is_on_the_first_screen(
    world, phone, large_text
):
    episode_id = world.episode("p1", AlarmKind.ANAPHYLAXIS)
    page = large_text
    page.goto(f"{world.api.base_url}/app/login")
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 32
    box = page.get_by_role("button", name="Sign in").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    assert box["height"] >= MIN_TARGET_PX
    sign_in(phone, world, "ann")
    for path in ("/app", "/app/patients/p1", f"/app/patients/p1/episodes/{episode_id}"):
        page.goto(f"{world.api.base_url}{path}")
        for viewport in (PHONE_SIZE, SMALL_PHONE):
            page.set_viewport_size(viewport)
            page.reload()
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], (
                path,
                viewport,
            )
    for button in page.get_by_role("button").all():
        size = button.bounding_box()
        assert size is not None and size["height"] >= MIN_TARGET_PX, button.inner_text()
    assert phone.problems == []


def test_a_researcher_turns_on_two_step_sign_in_from_a_phone_and_signs_in_with_it(world, phone):
    page = phone.page
    sign_in(phone, world, "rita")
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    check_page(page)
    page.get_by_label("Your password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page).to_have_url(f"{world.api.base_url}/app/account/second-factor")
    qr = page.get_by_role("img", name="QR code of your new second factor")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]  # whole on the phone
    check_page(page)
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("The 6-digit code").fill(pyotp.TOTP(secret).at(int(world.clock())))
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    assert page.locator("ul.codes li").count() == 10
    check_page(page)
    page.get_by_role("button", name="Sign out").click()

    world.clock.advance(30)
    sign_in(phone, world, "rita")
    expect(page).to_have_url(f"{world.api.base_url}/app/login/code")
    check_page(page)
    page.get_by_label("The 6-digit code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong code")
    phone.problems.clear()  # Chromium's note of the 401
    page.get_by_label("The 6-digit code from your authenticator app").fill(
        pyotp.TOTP(secret).at(int(world.clock()))
    )
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{world.api.base_url}/app/research")
    assert phone.problems == []


def test_a_caregiver_sends_herself_a_test_message_from_a_phone(world, phone, inbox):
    page = phone.page
    sign_in(phone, world, "ann")
    page.get_by_role("link", name="Your account").click()
    expect(page.locator("main")).to_contain_text("About Alex: json://127.0.0.1")
    check_page(page)
    page.get_by_role("button", name="Send me a test message").click()
    expect(page.get_by_role("status")).to_contain_text("Sent through 1 channel")
    check_page(page)
    assert inbox.wait_for("ann", 1)[0].title == "flarewatch test"
    page.get_by_role("link", name="Back to your account").click()
    page.get_by_label("Sat").check()
    page.get_by_role("button", name="Set the weekly absence").click()
    expect(page.locator("main")).to_contain_text(
        "You are away every week: Mon, Tue, Wed, Thu, Fri, Sat from 08:00 to 17:00"
    )
    check_page(page)
    assert phone.problems == []


def test_a_patient_asks_for_help_from_a_phone_and_ends_it(world, phone, inbox):
    page = phone.page
    sign_in(phone, world, "bo")
    help_button = page.get_by_role("button", name="I need help now")
    box = help_button.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"]  # on the first screen
    check_page(page)
    help_button.click()
    expect(page.locator("main")).to_contain_text("CRITICAL: call for help since")
    check_page(page)
    world.stack.scheduler.run_until_idle()
    assert inbox.wait_for("ben", 1)[0].title == "CRITICAL: Bo - call for help - act now"
    page.get_by_role("button", name="It's over: all clear").click()
    expect(page.locator("main")).to_contain_text("Nothing going on")
    page.goto(f"{world.api.base_url}/app/patients/p2")  # their own page: the band's reminder
    page.get_by_label("Remind me after").select_option("14400")
    page.get_by_label("Tell my caregivers after").select_option("0")
    page.get_by_role("button", name="Set the reminder").click()
    expect(page.get_by_label("Remind me after")).to_have_value("14400")
    check_page(page)
    assert phone.problems == []


def test_a_forgotten_password_is_set_again_from_the_mailed_link(tmp_path, smtp, inbox, phone):
    from service.accounts.password_reset import set_email
    from service.db.accounts import get_account

    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, "json://127.0.0.1:9", mail_url=smtp.url("x@example.org")) as world:
        with world.stack.db.session() as session:
            set_email(session, get_account(session, "bo"), "bo@example.org", world.clock())
        page = phone.page
        page.goto(f"{world.api.base_url}/app/login")
        page.get_by_role("link", name="Forgot your password?").click()
        check_page(page)
        page.get_by_label("Your username or e-mail address").fill("bo@example.org")
        page.get_by_role("button", name="Send me a link").click()
        expect(page.get_by_role("status")).to_contain_text("a link to set a new password")
        check_page(page)
        (mail,) = inbox.wait_for("bo@example.org", 1)
        link = re.search(r"/app/reset/[A-Za-z0-9_-]+", mail.body)
        assert link is not None
        page.goto(f"{world.api.base_url}{link.group(0)}")
        expect(page.locator("main")).to_contain_text("For the account bo")
        check_page(page)
        new = "a fresh passphrase, long enough"
        page.get_by_label("New password (at least 12 characters)").fill(new)
        page.get_by_label("New password again").fill(new)
        page.get_by_role("button", name="Set the password").click()
        expect(page.get_by_role("status")).to_contain_text("Your new password is set")
        check_page(page)
        page.get_by_label("Username").fill("bo")
        page.get_by_label("Password").fill(new)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Your record")
        page.get_by_role("link", name="Bo").click()
        expect(page.get_by_role("button", name="Stop sharing with researchers")).to_be_visible()
        check_page(page)
        page.goto(f"{world.api.base_url}{link.group(0)}")
        expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
        check_page(page)
        phone.problems.clear()  # Chromium's note of the 410


def test_a_patients_help_link_works_on_a_phone_without_signing_in(world, phone, inbox):
    page = phone.page
    sign_in(phone, world, "bo")
    page.get_by_role("link", name="Your account").click()
    page.get_by_label("Your password", exact=True).first.fill(PASSWORD)
    page.get_by_role("button", name="Make my help link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your help link")
    check_page(page)
    link = page.locator('main a[href*="/help/"]').get_attribute("href")
    assert link is not None and "/help/" in link
    page.context.clear_cookies()  # signed out: the link needs no session
    page.goto(f"{world.api.base_url}{link[link.index('/help/') :]}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Help for Bo")
    check_page(page)
    page.get_by_role("button", name="I need help now").click()
    expect(page.locator("main")).to_contain_text("Your care team is being alerted now")
    check_page(page, skip=("meta-refresh",))  # reloads itself while the call lasts, unless:
    page.get_by_role("link", name="Stop updating this page").click()
    expect(page.locator("main")).to_contain_text("This page does not update itself")
    check_page(page)
    world.stack.scheduler.run_until_idle()
    assert inbox.wait_for("ben", 1)[0].title == "CRITICAL: Bo - call for help - act now"
    assert phone.problems == []


def test_a_caregiver_adds_a_private_ntfy_topic_from_a_phone(tmp_path, http, smtp, inbox, phone):
    offer = ChannelOffer(
        OwnServers(smtp.url("x@example.org"), f"http://127.0.0.1:{http.port}"), any_url=False
    )
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, http.url(""), channel_offer=offer) as world:
        page = phone.page
        sign_in(phone, world, "ann")
        page.get_by_role("link", name="Your account").click()
        check_page(page)
        page.get_by_role("button", name="Get a private ntfy topic").click()
        expect(page.get_by_role("status")).to_contain_text("Added: ntfy topic fw-")
        check_page(page)
        topic = page.locator("li code").first.inner_text()
        page.get_by_role("button", name="Send me a test message").click()
        expect(page.get_by_role("status")).to_contain_text("Sent through 2 channels")
        assert inbox.wait_for(f"/{topic}", 1)[0].title == "flarewatch test"
        page.get_by_role("link", name="Back to your account").click()
        page.get_by_role("button", name=f"Take off ntfy topic {topic}").click()
        expect(page.locator("main")).not_to_contain_text(topic)
        page.get_by_label("E-mail address", exact=True).first.fill("ann@example.org")
        page.get_by_role("button", name="Add this e-mail address").click()
        expect(page.get_by_role("status")).to_contain_text("Added: e-mail to ann@example.org")
        check_page(page)
        assert phone.problems == []


def test_a_patient_invites_someone_and_takes_them_off_from_a_phone(tmp_path, smtp, inbox, phone):
    mail = smtp.url("x@example.org")
    offer = ChannelOffer(OwnServers(mail), any_url=False)
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, "json://127.0.0.1:9", mail_url=mail, channel_offer=offer) as world:
        page = phone.page
        sign_in(phone, world, "bo")
        page.goto(f"{world.api.base_url}/app/patients/p2")
        page.get_by_label("Their name").fill("Kim")
        page.get_by_label("Their e-mail address").fill("kim@example.org")
        page.get_by_role("button", name="Invite them").click()
        expect(page.get_by_role("status")).to_contain_text("Kim is on your care team")
        check_page(page)
        assert inbox.wait_for("kim@example.org", 1)
        page.get_by_role("link", name="Back to your page").click()
        expect(page.locator("main")).to_contain_text("Invited: no channel yet")
        check_page(page)
        page.get_by_role("button", name="Take Kim off").click()
        check_page(page)
        page.get_by_role("button", name="Take Kim off the care team").click()
        expect(page.locator("main")).not_to_contain_text("Kim (caregiver)")
        assert phone.problems == []
