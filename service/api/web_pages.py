"""The signed-in web app's pages: sign-in, a person's patients, one patient, research.

Built like the link pages (:mod:`service.api.pages`: one layout, no script, every value escaped
here), for a phone first. What is going on comes first on every page: an alert nobody has taken
on, an episode, a band that went quiet.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import Final
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse

from models.alarm import Severity
from service.accounts.patient_view import EpisodeRow, OpenAlertRow, PatientView
from service.accounts.research_view import ResearchEpisode
from service.accounts.vitals import CHART_SPANS, DEFAULT_SPAN, ChartSpan
from service.alerts.help_requests import HELP
from service.alerts.off_reminders import NOTICE_CHOICES, REMINDER_CHOICES
from service.alerts.render import SHORT_WHAT, heart_rate_words, on_patient_clock
from service.api.alert_view import person_html
from service.api.band_pages import bands_part
from service.api.care_pages import (
    answering_part,
    care_team_part,
    drill_part,
    plan_changed_part,
    plan_form,
    quiet_hours_part,
    small_form,
)
from service.api.pages import Clock, page
from service.api.web_session import APP_PATH, hidden_token
from service.const import DIARY_TEXT_MAX_CHARS, DIARY_WORDS, PAIRING_FIX
from service.db.models import (
    Account,
    AccountRole,
    AlertState,
    EpisodeLabel,
    EpisodeState,
)

LABEL_WORDS: Final = {
    EpisodeLabel.REACTION.value: "a real reaction",
    EpisodeLabel.FALSE_ALARM.value: "a false alarm",
}
WAITING_STATES: Final = (AlertState.CANCEL_WINDOW, AlertState.ACTIVE)
"""Alerts nobody has taken on: a caregiver's page offers to acknowledge them."""


def _what(kind: str) -> str:
    return html.escape(SHORT_WHAT.get(kind, kind.replace("_", " ")))


def account_bar(account: Account, form_token: str) -> str:
    """Who is signed in, and the button to sign out (a form: a link would sign out on preview)."""
    return (
        f'<div class="account"><span>Signed in as {person_html(account.display_name)}'
        f" ({html.escape(account.role)})</span>"
        f'<form method="post" action="{APP_PATH}/logout">{hidden_token(form_token)}'
        '<button type="submit" class="link">Sign out</button></form>'
        f'<a href="{APP_PATH}/account">Your account</a></div>'
    )


def login_page(
    *,
    refused: str | None = None,
    username: str = "",
    status: int = 200,
    can_reset: bool = False,
    note: str | None = None,
) -> HTMLResponse:
    """The sign-in form; ``refused`` says why the last try did not sign in.

    ``can_reset``: the service mails links to set a new password (a link to ask for one).
    ``note``: a message above the form that is no refusal (a new password was set).
    """
    error = f'<p class="error" role="alert">{html.escape(refused)}</p>' if refused else ""
    if note:
        error += f'<p class="state done" role="status">{html.escape(note)}</p>'
    forgot = (
        f'<p><a href="{APP_PATH}/reset">Forgot your password?</a></p>'
        if can_reset
        else '<p class="note">Forgot your password? The administrator sets a new one.</p>'
    )
    return page(
        "Sign in to flarewatch",
        f'{error}<form method="post" action="{APP_PATH}/login">'
        '<label for="username">Username</label><input id="username" name="username" '
        f'autocomplete="username" autocapitalize="none" spellcheck="false" required '
        f'value="{html.escape(username)}">'
        '<label for="password">Password</label><input id="password" name="password" '
        'type="password" autocomplete="current-password" required>'
        '<button type="submit" class="act">Sign in</button></form>'
        f"{forgot}"
        '<p class="note">No account? The service\'s administrator gives one to patients, '
        "their caregivers and researchers.</p>",
        status,
    )


def status_lines(view: PatientView, now_s: float, account: Account, form_token: str) -> str:
    """What is going on for the patient, in words: alerts, the open episode, lost signals.

    Under an alert nobody has taken on, its button for the account: a caregiver's "I'm on it"
    (as the acknowledgement link does), the patient's own "I'm OK" while they may still cancel.
    """
    when = _clock(view, now_s)
    lines = []
    for alert in view.open_alerts:
        css = "state done" if alert.state == AlertState.ACKNOWLEDGED else "state"
        taken = (
            f"; {person_html(alert.acked_by)} is on it"
            if alert.acked_by
            else "; nobody has acknowledged it yet"
        )
        critical = ' class="critical"' if alert.severity == Severity.CRITICAL else ""
        lines.append(
            f'<p class="{css}"><span{critical}>{html.escape(alert.severity.upper())}</span>: '
            f"{_what(alert.kind)} since {when(alert.since_s)}{taken}.</p>"
        )
        lines.append(_alert_button(view, alert, account, form_token))
    episode = view.open_episode
    if episode is not None and not view.open_alerts:
        lines.append(
            f'<p class="state">Episode going on: {_what(episode.kind)} since '
            f"{when(episode.opened_s)}.</p>"
        )
    for signal, since_s in view.lost_signals:
        if not any(alert.kind == signal for alert in view.open_alerts):
            said = (
                f": {person_html(view.name)} said they took the band off"
                if signal in view.taken_off
                else ""
            )
            lines.append(f'<p class="state over">{_what(signal)} since {when(since_s)}{said}.</p>')
    if view.band_will_not_pair:
        lines.append(f'<p class="note">The gateway cannot pair with the band: {PAIRING_FIX}.</p>')
    if not lines:
        lines.append('<p class="state done">Nothing going on.</p>')
    return "".join(lines)


def _alert_button(view: PatientView, alert: OpenAlertRow, account: Account, token: str) -> str:
    """The forms that act on ``alert`` for ``account`` (none, one, or two for a call for help)."""
    actions = []
    if account.role == AccountRole.CAREGIVER and alert.state in WAITING_STATES:
        actions.append(("ack", "I'm on it: acknowledge", "act"))
    elif account.role == AccountRole.PATIENT and alert.state == AlertState.CANCEL_WINDOW:
        actions.append(("cancel", "I'm OK: cancel the alarm", "act"))
    # a call for help ends by the patient, or by a caregiver once someone is on it (not a
    # second big button under "I'm on it", where a hurried thumb would end it instead)
    if alert.kind == HELP and (
        account.role == AccountRole.PATIENT
        or (account.role == AccountRole.CAREGIVER and alert.state == AlertState.ACKNOWLEDGED)
    ):
        actions.append(("end", "It's over: all clear", "act calm"))
    return "".join(
        f'<form method="post" action="{APP_PATH}/patients/{html.escape(view.id)}/alerts/'
        f'{alert.id}/{action}">{hidden_token(token)}'
        f'<button type="submit" class="{css}">{label}</button></form>'
        for action, label, css in actions
    )


def help_button(account: Account, token: str) -> str:
    """A patient's own "I need help now", first on each of their pages (else nothing)."""
    if account.role != AccountRole.PATIENT or account.patient_id is None:
        return ""
    return (
        f'<form method="post" action="{APP_PATH}/patients/{html.escape(account.patient_id)}/help">'
        f'{hidden_token(token)}<button type="submit" class="act">I need help now</button></form>'
        '<p class="note">Alerts your care team at once, with your emergency plan, as a critical '
        "alarm does. It does not call an ambulance: call your emergency number if you can.</p>"
    )


def _clock(view: PatientView, now_s: float) -> Clock:
    return lambda time_s: on_patient_clock(time_s, now_s, view.timezone)


def home_page(
    account: Account,
    views: list[PatientView],
    now_s: float,
    form_token: str,
    *,
    unreached: Sequence[str] = (),
) -> HTMLResponse:
    """The patients an account may see, each with what is going on.

    ``unreached``: the patients whose alerts reach the caregiver nowhere yet (invited, they
    have added no channel): said first, with the way to their account page.
    """
    if not views:
        body = (
            "<p>No patient is shared with you yet. The service's administrator links your "
            "account to the care teams you are on.</p>"
        )
    else:
        body = "".join(
            f'<section><h2><a href="{APP_PATH}/patients/{html.escape(view.id)}">'
            f"{person_html(view.name)}</a></h2>{help_button(account, form_token)}"
            f"{status_lines(view, now_s, account, form_token)}</section>"
            for view in views
        )
    if unreached:
        names = ", ".join(person_html(name) for name in unreached)
        body = (
            f'<p class="state" role="status">No alert about {names} reaches you yet: '
            f'<a href="{APP_PATH}/account">add where it should</a> on your account page.</p>' + body
        )
    title = "Your record" if account.role == "patient" else "Your patients"
    return page(title, account_bar(account, form_token) + body + _as_of(now_s))


def patient_page(
    account: Account,
    view: PatientView,
    now_s: float,
    form_token: str,
    *,
    chart: str = "",
    span: ChartSpan = DEFAULT_SPAN,
    invites: bool = False,
) -> HTMLResponse:
    """One patient: what is going on, the plan, the vitals chart, the episodes, the team.

    Above the chart, links to its other spans (the one shown is marked, not a link).
    ``invites``: the patient may invite people onto their team (they can add channels).
    """
    when = _clock(view, now_s)
    plan = "".join(f"<p>{html.escape(line)}</p>" for line in view.plan.splitlines() if line)
    parts = [
        account_bar(account, form_token),
        help_button(account, form_token),
        status_lines(view, now_s, account, form_token),
        '<section class="plan"><h2>Emergency plan</h2>'
        + (plan or "<p>None recorded yet: add it below.</p>")
        + plan_changed_part(view, when)
        + "</section>"
        + plan_form(view, form_token),
        f'<h2 id="chart">Heart and skin</h2>{_span_links(view, span)}{chart}' if chart else "",
        _diary(view, now_s, form_token),
        "<h2>Episodes</h2>",
        _episode_table(view, when, form_token) if view.episodes else "<p>None yet.</p>",
        "<h2>Care team</h2>",
        care_team_part(
            view,
            when,
            form_token,
            own=account.role == AccountRole.PATIENT,
            invites=invites and account.role == AccountRole.PATIENT,
        ),
        answering_part(view),
        quiet_hours_part(view, form_token),
        drill_part(view, when, form_token),
        bands_part(view, when),
        _band_part(view, account, form_token),
        _research_part(view, account, form_token),
        f'<p class="note">Detection: {html.escape(view.detection_profile)}. '
        f"Times on the patient's clock "
        f"({html.escape(view.timezone)}).</p>",
        _as_of(now_s),
        f'<p><a href="{APP_PATH}">All your patients</a></p>',
    ]
    return page(view.name, "".join(parts))


def _band_part(view: PatientView, account: Account, form_token: str) -> str:
    """A patient's own reminder of a band they took off: after how long, or never."""
    if account.role != AccountRole.PATIENT:
        return ""
    return (
        "<h2>Your band</h2><p>When flarewatch hears nothing from your band, it asks you first. "
        "If you say you took it off, your caregivers are not alerted, and you are reminded that "
        "it is still off (then after twice as long each time, never in quiet hours). If it stays "
        "off for long, your caregivers are told once, since they count on being alerted.</p>"
        f'<form method="post" action="{APP_PATH}/patients/{html.escape(view.id)}/band-reminder">'
        f'{hidden_token(form_token)}<label for="off-reminder">Remind me after</label>'
        f'<select id="off-reminder" name="after">'
        f"{_options(REMINDER_CHOICES, view.off_reminder_s)}</select>"
        '<label for="off-notice">Tell my caregivers after</label><select id="off-notice" '
        f'name="notice">{_options(NOTICE_CHOICES, view.off_notice_s)}</select>'
        '<button type="submit" class="act">Set the reminder</button></form>'
    )


def _options(choices: dict[int, str], chosen: float) -> str:
    return "".join(
        f'<option value="{value}"{" selected" if value == chosen else ""}>{words}</option>'
        for value, words in choices.items()
    )


def _research_part(view: PatientView, account: Account, form_token: str) -> str:
    """A patient's own research consent, to give or withdraw as easily (GDPR Art. 7(3))."""
    if account.role != AccountRole.PATIENT:
        return ""
    if view.research_consent:
        said = (
            "You share your episodes with researchers: pseudonymised (no name, no id, times "
            "moved by whole weeks), never your diary. You can stop at any time."
        )
        value, label = "no", "Stop sharing with researchers"
    else:
        said = (
            "You do not share your episodes with researchers. Shared, they would go out "
            "pseudonymised (no name, no id, times moved by whole weeks), never your diary, and "
            "help tell reactions from false alarms."
        )
        value, label = "yes", "Share my episodes with researchers"
    return (
        f'<h2>Your data</h2><p><a href="{APP_PATH}/patients/{html.escape(view.id)}/my-data.zip" '
        "download>Download a copy of everything flarewatch holds about you</a> (a ZIP: your "
        "record, episodes, alerts, messages, who looked at your record, diary, and every "
        "reading, which takes a while for months of them).</p>"
        f"<h2>Research</h2><p>{said}</p>"
        f'<form method="post" action="{APP_PATH}/patients/{html.escape(view.id)}/research">'
        f'{hidden_token(form_token)}<input type="hidden" name="consent" value="{value}">'
        f'<button type="submit" class="link">{label}</button></form>'
    )


def _span_links(view: PatientView, shown: ChartSpan) -> str:
    links = [
        f'<strong aria-current="page">{span.words}</strong>'
        if span == shown
        else f'<a href="{APP_PATH}/patients/{html.escape(view.id)}?span={span.name}#chart">'
        f"{span.words}</a>"
        for span in CHART_SPANS.values()
    ]
    return f'<nav class="spans" aria-label="Chart span">Show the last {" · ".join(links)}</nav>'


def _diary(view: PatientView, now_s: float, form_token: str) -> str:
    """The diary: a form to add what happened (now, on the patient's clock), then the entries."""
    when = _clock(view, now_s)
    local_now = dt.datetime.fromtimestamp(now_s, ZoneInfo(view.timezone)).strftime("%Y-%m-%dT%H:%M")
    base = f"{APP_PATH}/patients/{html.escape(view.id)}/diary"
    options = "".join(
        f'<option value="{kind}">{words}</option>' for kind, words in DIARY_WORDS.items()
    )
    form = (
        f'<form method="post" action="{base}">{hidden_token(form_token)}'
        f'<label for="diary-when">When ({html.escape(view.timezone)})</label>'
        f'<input id="diary-when" name="when" type="datetime-local" value="{local_now}" required>'
        '<label for="diary-kind">What</label>'
        f'<select id="diary-kind" name="kind">{options}</select>'
        f'<label for="diary-text">In a few words</label><textarea id="diary-text" name="text" '
        f'rows="2" maxlength="{DIARY_TEXT_MAX_CHARS}" required></textarea>'
        '<button type="submit">Add to the diary</button></form>'
    )
    items = "".join(
        f"<li>{when(entry.time_s)}: <strong>{DIARY_WORDS.get(entry.kind, 'A note')}</strong>: "
        f'{html.escape(entry.text)} <span class="note">({person_html(entry.written_by)})</span>'
        f"{small_form(f'{base}/{entry.id}/remove', form_token, 'Remove')}</li>"
        for entry in view.diary
    )
    entries = f"<ul>{items}</ul>" if items else "<p>Nothing noted yet.</p>"
    return (
        '<h2>Diary</h2><p class="note">Triggers, symptoms, doses: what the band cannot measure, '
        f"and what tells a reaction from a false alarm.</p>{form}{entries}"
    )


def _episode_table(view: PatientView, when: Clock, form_token: str) -> str:
    rows = []
    for episode in view.episodes:
        rows.append(
            "<tr>"
            f'<td><a href="{episode_path(view.id, episode.id)}">{when(episode.opened_s)}</a></td>'
            f"<td>{_what(episode.kind)} ({html.escape(episode.severity)})</td>"
            f"<td>{course_words(episode, when)}</td>"
            f"<td>{label_cell(view.id, episode, form_token)}</td>"
            "</tr>"
        )
    return (
        '<table><thead><tr><th scope="col">Began</th><th scope="col">What</th>'
        '<th scope="col">Course</th><th scope="col">Was it a reaction?</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def episode_path(patient_id: str, episode_id: int) -> str:
    """The address of an episode's page."""
    return f"{APP_PATH}/patients/{html.escape(patient_id)}/episodes/{episode_id}"


def course_words(episode: EpisodeRow, when: Clock) -> str:
    """Going on or how long it lasted, who acknowledged, the last heart rate."""
    parts = []
    if episode.state == EpisodeState.OPEN:
        parts.append("going on")
    elif episode.closed_s is not None:
        parts.append(f"over after {max(1, round((episode.closed_s - episode.opened_s) / 60))} min")
    if episode.acked_by:
        parts.append(f"{person_html(episode.acked_by)} acknowledged")
    if episode.heart_rate is not None:
        parts.append(f"last heart rate {heart_rate_words(episode.heart_rate)}")
    return "; ".join(parts)


def label_cell(
    patient_id: str, episode: EpisodeRow, form_token: str, *, back_to_episode: bool = False
) -> str:
    """The answer so far, and buttons for the others (back to the episode's page, if asked)."""
    said = (
        f"{LABEL_WORDS.get(episode.label, html.escape(episode.label))}, said by "
        f"{person_html(episode.labelled_by or 'someone')}. "
        if episode.label
        else ""
    )
    action = f"{episode_path(patient_id, episode.id)}/label"
    back = '<input type="hidden" name="back" value="episode">' if back_to_episode else ""
    buttons = "".join(
        f'<form method="post" action="{action}">{hidden_token(form_token)}{back}'
        f'<input type="hidden" name="label" value="{value}">'
        f'<button type="submit">{"Yes" if value == EpisodeLabel.REACTION else "No"}'
        f'<span class="note"> ({words})</span></button></form> '
        for value, words in LABEL_WORDS.items()
        if value != episode.label
    )
    return said + buttons


def research_page(
    account: Account, episodes: list[ResearchEpisode], form_token: str
) -> HTMLResponse:
    """Consenting patients' episodes, pseudonymised, with the CSV download."""
    subjects = len({episode.subject for episode in episodes})
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(e.subject)}</td><td>{_utc(e.onset_s)}</td>"
        f"<td>{_what(e.kind)} ({html.escape(e.severity)})</td>"
        f"<td>{'going on' if e.end_s is None else f'{(e.end_s - e.onset_s) / 60:.0f} min'}</td>"
        f"<td>{html.escape(LABEL_WORDS.get(e.label or '', 'not labelled'))}</td>"
        "</tr>"
        for e in episodes
    )
    table = (
        '<table><thead><tr><th scope="col">Subject</th><th scope="col">Onset (shifted, UTC)</th>'
        '<th scope="col">What</th><th scope="col">Length</th><th scope="col">Label</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
        if episodes
        else "<p>No consenting patient has an episode yet.</p>"
    )
    return page(
        "Research: episodes",
        account_bar(account, form_token)
        + f"<p>{_count(len(episodes), 'episode')} of {_count(subjects, 'consenting subject')}. "
        "Subjects are "
        "pseudonyms and every time is moved back by whole weeks, as in the research exports. "
        f'<a href="{APP_PATH}/research/episodes.csv" download>Download as CSV</a></p>' + table,
    )


def _as_of(now_s: float) -> str:
    """When the page was read: it does not reload itself.

    A reload moves a screen reader back to the top (WCAG 2.2.1); alerts come by message, with
    their own page that updates itself.
    """
    return f'<p class="note">As of {_utc(now_s)} UTC: reload the page for the latest.</p>'


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _utc(time_s: float) -> str:
    return dt.datetime.fromtimestamp(time_s, dt.UTC).strftime("%Y-%m-%d %H:%M")
