"""The web app's pages about one's own account: the password, the second factor, its code.

Built like the other app pages (:mod:`service.api.web_pages`): no script, every value escaped
here. The QR code of a new second factor is an inline SVG (black on white in dark mode too, as
authenticator apps read it best); its secret is beside it as text for a phone that cannot scan.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final

import segno
from fastapi.responses import HTMLResponse

from service.accounts.away import AWAY_CHOICES, AwayState
from service.accounts.const import MIN_PASSWORD_CHARS, RECOVERY_CODE_COUNT, TOTP_DIGITS
from service.alerts.away_schedule import DAY_NAMES
from service.alerts.render import on_patient_clock
from service.api.care_pages import act_form
from service.api.channel_pages import ChannelForms, Route, channels_part
from service.api.pages import page
from service.api.web_pages import account_bar, help_button
from service.api.web_session import APP_PATH, hidden_token
from service.db.models import Account

SECOND_FACTOR_PATH: Final = f"{APP_PATH}/account/second-factor"
_QR_SCALE: Final = 5
"""Pixels per module: a 45-module code (an ``otpauth`` URI) is 225 px, easy to scan on a screen."""


def _said(said: str | None) -> str:
    return f'<p class="error" role="alert">{html.escape(said)}</p>' if said else ""


def _password_field(name: str, text: str, auto: str = "current-password") -> str:
    return (
        f'<label for="{name}">{text}</label><input id="{name}" name="{name}" type="password" '
        f'autocomplete="{auto}" required>'
    )


def _code_field(label: str) -> str:
    return (
        f'<label for="code">{label}</label><input id="code" name="code" '
        'autocomplete="one-time-code" autocapitalize="none" spellcheck="false" required>'
    )


def account_page(
    account: Account,
    form_token: str,
    codes_left: int | None,
    *,
    required: bool = False,
    alert_routes: Sequence[Route] | None = None,
    channel_forms: ChannelForms | None = None,
    mail: bool = False,
    browsers: int = 1,
    has_help_link: bool | None = None,
    away: AwayState | None = None,
    said: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The account's own page: change the password; turn the second factor on or off.

    ``codes_left``: its unused recovery codes, None without a second factor. ``required``: the
    account's role must use one (then it cannot be turned off, and until it is on, the page
    says that it must be). ``alert_routes``: a caregiver's patients (a patient: their own
    messages), each with the channels their alerts take and what became of each one's last
    message, and the button to test them; None: no such section. ``channel_forms``: the kinds
    of channel they may add themselves (None: only the administrator adds).
    ``mail``: the service mails links to set a new password (the account's address can be set).
    ``browsers``: how many are signed in as the account, this one included. ``has_help_link``:
    whether a patient account has made its help link (None: not a patient). ``away``: a
    caregiver's absence, and the form to set or end it (None: no such section). ``said``: why
    what was asked was not done; ``done``: what was.
    """
    if required and codes_left is None:
        said = (
            f"Every {account.role} signs in in two steps on this service: turn on two-step "
            f"sign-in below to go on.{' ' + said if said else ''}"
        )
    password = act_form(
        f"{APP_PATH}/account/password",
        form_token,
        _password_field("current", "Your password now")
        + _password_field(
            "new", f"New password (at least {MIN_PASSWORD_CHARS} characters)", "new-password"
        )
        + _password_field("again", "New password again", "new-password"),
        "Change the password",
    )
    return page(
        "Your account",
        f"{account_bar(account, form_token)}{help_button(account, form_token)}{_said(said)}"
        + (f'<p class="state done" role="status">{html.escape(done)}</p>' if done else "")
        + f"<h2>Password</h2>{password}"
        '<p class="note">Every other browser signed in as you is signed out.</p>'
        f"{_help_link_part(form_token, has_help_link)}"
        f"{_browsers_part(form_token, browsers)}"
        f"{_email_part(account, form_token) if mail else ''}"
        f"{channels_part(account, form_token, alert_routes, channel_forms)}"
        f"{_away_part(form_token, away)}{_away_schedule_part(form_token, away)}"
        f"<h2>Two-step sign-in</h2>{_second_factor_part(form_token, codes_left, required)}"
        f'<p><a href="{APP_PATH}">Back</a></p>',
        status,
    )


def _away_part(form_token: str, away: AwayState | None) -> str:
    """A caregiver's absence: away until when, "I'm back"; or the lengths to be away for."""
    if away is None:
        return ""
    intro = (
        "<h2>Away</h2><p>On a flight, asleep after a night shift, out of reach: while you are "
        "away, alerts go to everyone else on your care teams first. You hear of one only if "
        "nobody else answered, or if everyone is away.</p>"
    )
    if away.until_s is not None:
        until = on_patient_clock(away.until_s, away.now_s, away.timezone)
        return f'{intro}<p class="state" role="status">You are away until {until}.</p>' + act_form(
            f"{APP_PATH}/account/back", form_token, "", "I&#8217;m back"
        )
    options = "".join(
        f'<option value="{value}">{words}</option>' for value, words in AWAY_CHOICES.items()
    )
    field = (
        f'<label for="away-for">Away for</label><select id="away-for" name="for">{options}</select>'
    )
    return intro + act_form(f"{APP_PATH}/account/away", form_token, field, "I&#8217;m away")


def _away_schedule_part(form_token: str, away: AwayState | None) -> str:
    """Away every week at the same hours: the days and times, or none."""
    if away is None:
        return ""
    schedule = away.schedule
    now = (
        f'<p class="state" role="status">You are away every week: {schedule.words()}, on the '
        f"patient&#8217;s clock ({html.escape(away.timezone)}).</p>"
        if schedule
        else "<p>At work with the phone in a locker, on nights: be away at the same hours "
        "every week without saying so each time.</p>"
    )
    days = schedule.days if schedule else "12345"
    boxes = "".join(
        f'<label><input type="checkbox" name="day{number}" value="on"'
        f"{' checked' if str(number) in days else ''}>{name}</label>"
        for number, name in enumerate(DAY_NAMES, start=1)
    )
    fields = (
        f"<fieldset><legend>Away every</legend>{boxes}</fieldset>"
        '<label for="away-from">from</label><input id="away-from" name="from" type="time" '
        f'value="{html.escape(schedule.start if schedule else "08:00")}" required>'
        '<label for="away-to">to</label><input id="away-to" name="to" type="time" '
        f'value="{html.escape(schedule.end if schedule else "17:00")}" required>'
    )
    off = (
        act_form(f"{APP_PATH}/account/away/schedule/off", form_token, "", "No weekly absence")
        if schedule
        else ""
    )
    return (
        f"<h3>Every week</h3>{now}"
        + act_form(
            f"{APP_PATH}/account/away/schedule", form_token, fields, "Set the weekly absence"
        )
        + off
    )


def _help_link_part(form_token: str, has_link: bool | None) -> str:
    """A patient's help link: make one, or replace or remove the one they have."""
    if has_link is None:
        return ""
    intro = (
        "<h2>Your help link</h2><p>A link that alerts your care team without signing in, for "
        "when typing a password is too much. Keep it on your phone's home screen, and to "
        "yourself: whoever has it can alert your caregivers (and nothing else).</p>"
    )
    password = _password_field("link-password", "Your password")
    if not has_link:
        return intro + act_form(
            f"{APP_PATH}/account/help-link", form_token, password, "Make my help link"
        )
    return (
        intro + '<p class="state done">You have one. Lost it, or shared it by mistake? A new one '
        "replaces it.</p>"
        + act_form(f"{APP_PATH}/account/help-link", form_token, password, "Make a new help link")
        + f'<form method="post" action="{APP_PATH}/account/help-link/remove">'
        f'{hidden_token(form_token)}<button type="submit" class="link">Remove my help '
        "link</button></form>"
    )


def help_link_page(account: Account, form_token: str, link: str) -> HTMLResponse:
    """A new help link, shown once: open it on the phone and keep it on the home screen."""
    return page(
        "Your help link",
        f"{account_bar(account, form_token)}"
        f'<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>'
        "<ol><li>Open it on your phone (send it to yourself, or type it).</li>"
        "<li>In the browser's menu, choose <strong>Add to Home Screen</strong>.</li>"
        "<li>Tap it once to see it works: it shows the button, and nothing is sent until you "
        "press it.</li></ol>"
        '<p class="note">It is shown only now. Lost it? Make a new one on your account page; '
        "the old one stops working.</p>"
        f'<p><a href="{APP_PATH}/account">Back to your account</a></p>',
    )


def _browsers_part(form_token: str, browsers: int) -> str:
    """How many browsers are signed in as the account, and a button to sign out the others."""
    others = browsers - 1
    if others < 1:
        return "<h2>Signed in</h2><p>Only on this browser.</p>"
    return (
        f"<h2>Signed in</h2><p>On this browser and {others} other"
        f"{'' if others == 1 else 's'}. A phone lost or a computer left signed in? Sign them "
        "out.</p>"
        f'<form method="post" action="{APP_PATH}/account/sign-out-others">'
        f'{hidden_token(form_token)}<button type="submit" class="link">Sign out everywhere '
        "else</button></form>"
    )


def _email_part(account: Account, form_token: str) -> str:
    """The address links to set a new password go to (a forgotten password, no administrator)."""
    now = (
        f"Now: <strong>{html.escape(account.email)}</strong>."
        if account.email
        else "None yet: if you forget your password, only the administrator can set a new one."
    )
    return (
        f"<h2>E-mail address</h2><p>Where a link to set a new password goes. {now}</p>"
        + act_form(
            f"{APP_PATH}/account/email",
            form_token,
            '<label for="email">E-mail address (empty: none)</label><input id="email" '
            'name="email" type="email" autocomplete="email" '
            f'value="{html.escape(account.email or "")}">'
            + _password_field("email-password", "Your password"),
            "Save the address",
        )
    )


def _second_factor_part(form_token: str, codes_left: int | None, required: bool) -> str:
    """Turning it on, or, once on, renewing the recovery codes and turning it off (if allowed)."""
    if codes_left is None:
        return (
            "<p>Off: your password alone signs you in. With it on, signing in also asks for a "
            f"{TOTP_DIGITS}-digit code from an authenticator app on your phone, so a stolen "
            "password is not enough.</p>"
            + act_form(
                f"{SECOND_FACTOR_PATH}/start",
                form_token,
                _password_field("sf-password", "Your password"),
                "Turn on two-step sign-in",
            )
        )
    return (
        f'<p class="state done">On. {codes_left} of {RECOVERY_CODE_COUNT} recovery codes '
        "unused.</p>"
        + act_form(
            f"{SECOND_FACTOR_PATH}/codes",
            form_token,
            _password_field("codes-password", "Your password"),
            "New recovery codes",
        )
        + '<p class="note">The old recovery codes stop working.</p>'
        + (
            '<p class="note">Every account of your role signs in in two steps here: it stays '
            "on.</p>"
            if required
            else _off_form(form_token)
        )
    )


def _off_form(form_token: str) -> str:
    return act_form(
        f"{SECOND_FACTOR_PATH}/off",
        form_token,
        _password_field("off-password", "Your password")
        + _code_field("A code from your authenticator app"),
        "Turn two-step sign-in off",
    )


def enrolment_page(
    account: Account,
    form_token: str,
    secret: str,
    uri: str,
    *,
    said: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The new secret as a QR code and as text, and the form for the first code from it."""
    qr = segno.make(uri, error="m").svg_inline(scale=_QR_SCALE, light="#fff")
    qr = qr.replace("<svg ", '<svg role="img" aria-label="QR code of your new second factor" ', 1)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return page(
        "Turn on two-step sign-in",
        f"{account_bar(account, form_token)}{_said(said)}"
        "<ol><li>Open an authenticator app on your phone (any that takes TOTP codes: Aegis, "
        "FreeOTP, Google Authenticator, 1Password and others) and add an account by scanning "
        f'this code:</li></ol><div class="qr">{qr}</div>'
        f'<p>Or type this key: <code class="secret">{html.escape(grouped)}</code> '
        "(time-based).</p>"
        '<ol start="2"><li>Type the code the app now shows, to prove it works.</li></ol>'
        + act_form(
            f"{SECOND_FACTOR_PATH}/confirm",
            form_token,
            _code_field(f"The {TOTP_DIGITS}-digit code"),
            "Turn on",
        )
        + '<p class="note">Until a code comes back from it, nothing changes: you sign in with '
        "your password alone.</p>"
        f'<p><a href="{APP_PATH}/account">Not now</a></p>',
        status,
    )


def recovery_codes_page(account: Account, form_token: str, codes: list[str]) -> HTMLResponse:
    """New recovery codes, shown this once."""
    items = "".join(f'<li><code class="secret">{html.escape(code)}</code></li>' for code in codes)
    return page(
        "Your recovery codes",
        f"{account_bar(account, form_token)}"
        '<p class="state done">Two-step sign-in is on.</p>'
        "<p>Print these codes or write them down, and keep them away from your phone. Each "
        "one signs you in once in place of a code from the app, if you lose your phone. They "
        "are not shown again.</p>"
        f'<ul class="codes">{items}</ul>'
        '<p class="note">Every other browser signed in as you was signed out.</p>'
        f'<p><a href="{APP_PATH}">Continue</a></p>',
    )


def code_page(*, refused: str | None = None, status: int = 200) -> HTMLResponse:
    """The second step of signing in: the code from the authenticator app."""
    return page(
        "Your sign-in code",
        f'{_said(refused)}<form method="post" action="{APP_PATH}/login/code">'
        + _code_field(f"The {TOTP_DIGITS}-digit code from your authenticator app")
        + '<button type="submit" class="act">Sign in</button></form>'
        '<p class="note">Lost your phone? Type one of your recovery codes instead. Lost '
        "them too? The service's administrator can turn two-step sign-in off for you.</p>"
        f'<p><a href="{APP_PATH}/login">Start again</a></p>',
        status,
    )


RESET_ASKED_TEXT = (
    "If an account has that username or e-mail address, and an address to write to, a link to "
    "set a new password is on its way. It works for 30 minutes, once. No mail? Check the spam "
    "folder, or ask the administrator."
)
"""The one answer to every request for a link, whatever exists."""


def reset_request_page(*, said: str | None = None, status: int = 200) -> HTMLResponse:
    """Ask for a link to set a new password: the username or the e-mail address."""
    return page(
        "Set a new password",
        f'{_said(said)}<form method="post" action="{APP_PATH}/reset">'
        '<label for="named">Your username or e-mail address</label><input id="named" '
        'name="named" autocomplete="username" autocapitalize="none" spellcheck="false" '
        "required>"
        '<button type="submit" class="act">Send me a link</button></form>'
        '<p class="note">The link goes to the e-mail address the account has. An account '
        "without one: the administrator sets a new password.</p>"
        f'<p><a href="{APP_PATH}/login">Back to sign in</a></p>',
        status,
    )


def reset_asked_page() -> HTMLResponse:
    """What every request for a link is answered, whatever exists."""
    return page(
        "Check your e-mail",
        f'<p class="state done" role="status">{html.escape(RESET_ASKED_TEXT)}</p>'
        f'<p><a href="{APP_PATH}/login">Back to sign in</a></p>',
    )


def new_password_page(
    account: Account,
    path: str,
    *,
    welcome: bool = False,
    said: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The form of a reset link: the new password twice, for the account it names.

    ``welcome``: the link is an invitation to a new account (its first password).
    """
    name = f"<strong>{html.escape(account.username)}</strong>"
    intro = (
        f"<p>An account was made for you: {name}. Choose its password; then sign in with it.</p>"
        if welcome
        else f"<p>For the account {name}.</p>"
    )
    return page(
        "Welcome to flarewatch" if welcome else "Set a new password",
        f"{_said(said)}{intro}"
        f'<form method="post" action="{html.escape(path)}">'
        + _password_field(
            "new", f"New password (at least {MIN_PASSWORD_CHARS} characters)", "new-password"
        )
        + _password_field("again", "New password again", "new-password")
        + '<button type="submit" class="act">Set the password</button></form>'
        '<p class="note">Every browser signed in as you is signed out.</p>',
        status,
    )


def reset_gone_page() -> HTMLResponse:
    """A reset link that does not work (any more): why it may be, and what to do."""
    return page(
        "This link does not work",
        "<p>It was used already, is older than 30 minutes (an invitation: 7 days), or was "
        "replaced by a newer one. An invitation is renewed by whoever made your account.</p>"
        f'<p><a href="{APP_PATH}/reset">Ask for a new link</a></p>',
        410,
    )
