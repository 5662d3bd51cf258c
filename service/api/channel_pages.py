"""The account page's part about one's own channels, and the pages of adding and testing them.

Built like the other app pages (:mod:`service.api.web_pages`): no script, every value escaped
here. A caregiver reads where each patient's alerts reach them; a patient where the messages
about their band do (the band went quiet: is all well?). Both can send themselves a test, add a
channel of a kind the service offers and take one off (:mod:`service.alerts.channel_changes`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.responses import HTMLResponse

from service.accounts.own_channels import CheckOutcome
from service.alerts.channel_changes import ChannelKind
from service.api.alert_view import person_html
from service.api.care_pages import act_form, small_form
from service.api.pages import page
from service.api.web_pages import account_bar
from service.api.web_session import APP_PATH
from service.db.models import Account, AccountRole

CHANNELS_PATH = f"{APP_PATH}/account/channels"


@dataclass(frozen=True, slots=True)
class ChannelLine:
    """One channel as its owner reads it."""

    channel_id: int
    shown: str
    """"e-mail to sam@example.org", "ntfy topic fw-…", or the URL redacted."""
    state: str
    """What became of its last message."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where one patient's messages reach the account: a contact's channels, in order."""

    patient: str
    contact_id: int
    channels: Sequence[ChannelLine]


@dataclass(frozen=True, slots=True)
class ChannelForms:
    """What the account may add (none: the administrator adds channels)."""

    kinds: Sequence[ChannelKind]
    email: str = ""
    """The account's address, offered first."""


def channels_part(
    account: Account,
    form_token: str,
    routes: Sequence[Route] | None,
    forms: ChannelForms | None = None,
) -> str:
    """Where the account's alerts (a patient's: their band's messages) go; test, add, take off.

    ``routes`` None: no such section (a researcher, or no notifier).
    """
    if routes is None:
        return ""
    patient = account.role == AccountRole.PATIENT
    head = "<h2>Your messages</h2>" if patient else "<h2>Your alerts</h2>"
    adding = _adding(form_token, routes, forms) if forms is not None and forms.kinds else ""
    if not routes:
        if patient:
            return (
                f"{head}<p>No message of flarewatch reaches you yet: when your band goes quiet "
                "your caregivers are told at once, without asking you first whether all is "
                "well.</p>"
                f"{adding or '<p>Ask the administrator to add a channel for you.</p>'}"
            )
        return f"{head}<p>You are on no care team: no alert reaches you. Ask the administrator.</p>"
    what = (
        "Messages about your band (it went quiet: is all well? it is still off)"
        if patient
        else "Alerts"
    )
    items = "".join(_route_item(form_token, route, leave=not patient) for route in routes)
    return (
        f"{head}<p>{what} reach you through these channels. Each message goes to the first "
        "one that takes it, the next only when it fails:</p>"
        f"<ul>{items}</ul>"
        + act_form(f"{APP_PATH}/account/test-message", form_token, "", "Send me a test message")
        + '<p class="note">One message through every channel above, saying nothing about '
        "anyone's health, so that you find a broken one before an alert needs it.</p>" + adding
    )


def _route_item(form_token: str, route: Route, *, leave: bool) -> str:
    leaving = (
        small_form(
            f"{APP_PATH}/account/teams/{route.contact_id}/leave",
            form_token,
            f"Leave {person_html(route.patient)}'s care team",
        )
        if leave
        else ""
    )
    if not route.channels:
        return (
            f"<li>About {person_html(route.patient)}: <strong>no channel</strong>: add one "
            f"below, or ask the administrator{leaving}</li>"
        )
    lines = "".join(
        f"<li><code>{html.escape(line.shown)}</code>: {html.escape(line.state)}"
        + (
            small_form(
                f"{CHANNELS_PATH}/{line.channel_id}/remove",
                form_token,
                f"Take off {html.escape(line.shown)}",
            )
            if len(route.channels) > 1
            else ""
        )
        + "</li>"
        for line in route.channels
    )
    return f"<li>About {person_html(route.patient)}: <ol>{lines}</ol>{leaving}</li>"


def _for_field(kind: ChannelKind, routes: Sequence[Route]) -> str:
    """Which care teams the new channel is for: one, or all (only asked with several)."""
    if len(routes) < 2:
        return ""
    options = '<option value="all">every patient above</option>' + "".join(
        f'<option value="{route.contact_id}">{html.escape(route.patient)}</option>'
        for route in routes
    )
    return (
        f'<label for="for-{kind}">For</label><select id="for-{kind}" name="for">{options}</select>'
    )


def _adding(form_token: str, routes: Sequence[Route], forms: ChannelForms) -> str:
    parts = []
    for kind in forms.kinds:
        kind_field = f'<input type="hidden" name="kind" value="{kind}">'
        if kind is ChannelKind.EMAIL:
            fields = (
                '<label for="channel-email">E-mail address</label><input id="channel-email" '
                f'name="value" type="email" autocomplete="email" required '
                f'value="{html.escape(forms.email)}">'
            )
            button = "Add this e-mail address"
        elif kind is ChannelKind.NTFY:
            fields = (
                '<p class="note">A private topic for you on the service\'s ntfy server: the '
                "ntfy app (Android, iPhone) rings for each alert sent there.</p>"
            )
            button = "Get a private ntfy topic"
        else:
            fields = (
                '<label for="channel-url">Apprise URL (<a href="https://appriseit.com/services/">'
                'formats</a>)</label><input id="channel-url" name="value" type="text" '
                'autocapitalize="none" spellcheck="false" autocomplete="off" required>'
            )
            button = "Add this URL"
        choice = _for_field(kind, routes)
        # the topic's note first: it says what the button does, the choice where it applies
        body = fields + choice if kind is ChannelKind.NTFY else choice + fields
        parts.append(act_form(CHANNELS_PATH, form_token, kind_field + body, button))
    return (
        "<h3>Add a channel</h3><p>It comes after your channels above. Then send yourself a "
        "test message.</p>" + "".join(parts)
    )


def channel_added_page(
    account: Account,
    form_token: str,
    shown: str,
    patients: Sequence[str],
    ntfy: tuple[str, str] | None = None,
) -> HTMLResponse:
    """Added: what, for whom; for an ntfy topic, how to subscribe to it; then the test button.

    ``ntfy``: the server, as the app asks for it, and the new topic.
    """
    about = ", ".join(person_html(name) for name in patients)
    steps = ""
    if ntfy is not None:
        server, topic = ntfy
        steps = (
            "<h2>Now in the ntfy app</h2><ol>"
            "<li>Install ntfy (Google Play, F-Droid or the App Store).</li>"
            f"<li>Tap <strong>+</strong> (subscribe to topic), type the topic "
            f"<code>{html.escape(topic)}</code>"
            + (
                ""
                if server == "https://ntfy.sh"
                else f", tick <strong>Use another server</strong> and type "
                f"<code>{html.escape(server)}</code>"
            )
            + ", then <strong>Subscribe</strong>.</li>"
            "<li>On Android, in the topic's settings, let it override Do Not Disturb: alerts "
            "come at the highest priority.</li></ol>"
            '<p class="note">Whoever knows the topic can read what is sent there: keep it to '
            "yourself. Your account page keeps showing it to you, for a new phone.</p>"
        )
    return page(
        "Channel added",
        f"{account_bar(account, form_token)}"
        f'<p class="state done" role="status">Added: <code>{html.escape(shown)}</code>, for '
        f"{about}, after your other channels.</p>{steps}"
        + act_form(f"{APP_PATH}/account/test-message", form_token, "", "Send me a test message")
        + f'<p><a href="{APP_PATH}/account">Back to your account</a></p>',
    )


def checks_page(
    account: Account, form_token: str, outcomes: Sequence[CheckOutcome]
) -> HTMLResponse:
    """What became of the test message on each channel."""
    failed = [o for o in outcomes if not o.result.ok]
    head = (
        f'<p class="state done" role="status">Sent through {_channels(len(outcomes))}: check '
        "that each one reached you.</p>"
        if not failed
        else f'<p class="state" role="alert">{len(failed)} of {_channels(len(outcomes))} '
        "failed: a message would not reach you there. Take it off and add another, or tell "
        "the administrator what it says.</p>"
    )
    rows = "".join(
        f"<tr><td>{person_html(o.patient_name)}</td><td><code>{html.escape(o.channel)}</code>"
        f"</td><td>{'sent' if o.result.ok else 'FAILED: ' + html.escape(o.result.reason)}"
        "</td></tr>"
        for o in outcomes
    )
    return page(
        "Test message",
        f"{account_bar(account, form_token)}{head}"
        "<table><thead><tr><th>About</th><th>Channel</th><th>Result</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f'<p><a href="{APP_PATH}/account">Back to your account</a></p>',
    )


def _channels(count: int) -> str:
    return f"{count} channel{'' if count == 1 else 's'}"
