"""An episode's page in the web app: the readings around it, its course, and its label.

Linked from the time each episode began on the patient's page (:mod:`service.api.web_pages`).
"""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

from service.accounts.episode_view import AROUND_S, EpisodeView
from service.alerts.render import WHAT_HAPPENED, on_patient_clock
from service.api.pages import Clock, page
from service.api.web_pages import account_bar, course_words, label_cell
from service.api.web_session import APP_PATH
from service.const import DIARY_WORDS
from service.db.models import Account


def episode_page(
    account: Account, view: EpisodeView, now_s: float, form_token: str, chart: str
) -> HTMLResponse:
    """What was detected, the chart around it, what the service did, was it a reaction."""

    def when(time_s: float) -> str:
        return on_patient_clock(time_s, now_s, view.timezone)

    episode = view.episode
    what = WHAT_HAPPENED.get(episode.kind, episode.kind.replace("_", " "))
    began = f"Began {when(episode.opened_s)}"
    if view.first_sign_s is not None and view.first_sign_s < episode.opened_s:
        began += f" (first sign {when(view.first_sign_s)})"
    course = "".join(
        f"<li>{when(step.time_s)}: "
        + (f"<strong>{html.escape(step.what)}</strong>" if step.failed else html.escape(step.what))
        + "</li>"
        for step in view.course
    )
    minutes = round(AROUND_S / 60)
    parts = [
        account_bar(account, form_token),
        f"<h2>{html.escape(what[:1].upper() + what[1:])} ({html.escape(episode.severity)})</h2>",
        f"<p>{began}; {course_words(episode, when)}.</p>",
        f'<h2 id="chart">Heart and skin</h2><p class="note">From {minutes} min before it began '
        f"to {minutes} min after it ended, shaded while it lasted.</p>{chart}",
        f"<h2>What happened</h2><ol>{course}</ol>",
        _diary_part(view, when),
        "<h2>Was it a reaction?</h2>",
        f"<div>{label_cell(view.patient_id, episode, form_token, back_to_episode=True)}</div>",
        '<p class="note">Your answer teaches the detectors; the latest answer counts. Detected '
        f"by {html.escape(view.model_version)}; times on the patient's clock "
        f"({html.escape(view.timezone)}).</p>",
        f'<p><a href="{APP_PATH}/patients/{html.escape(view.patient_id)}">'
        f"Back to {html.escape(view.patient_name)}</a></p>",
    ]
    return page(f"{view.patient_name}: episode", "".join(parts))


def _diary_part(view: EpisodeView, when: Clock) -> str:
    """The diary around the episode, oldest first (a trigger, then the symptoms and doses)."""
    if not view.diary:
        return ""
    items = "".join(
        f"<li>{when(entry.time_s)}: {html.escape(DIARY_WORDS.get(entry.kind, entry.kind))}: "
        f'{html.escape(entry.text)} <span class="note">({html.escape(entry.written_by)})</span>'
        "</li>"
        for entry in sorted(view.diary, key=lambda entry: entry.time_s)
    )
    return f"<h2>Diary around it</h2><ul>{items}</ul>"
