"""The patient's page parts about their care, and the page of a plan changed meanwhile.

The emergency plan and its editor, the care team in its order (who is away, "Move up") and quiet
hours.

Built like the other app pages (:mod:`service.api.web_pages`): no script, every value escaped.
"""

from __future__ import annotations

import html
from typing import Final

from fastapi.responses import HTMLResponse

from service.accounts.patient_view import PatientView
from service.accounts.response_times import Answering
from service.alerts.drill_schedule import DRILL_EVERY_CHOICES, every_words
from service.api.alert_view import person_html
from service.api.pages import Clock, page
from service.api.web_session import APP_PATH, hidden_token
from service.const import EMERGENCY_PLAN_MAX_CHARS, RESPONSE_DAYS
from service.db.emergency_plan import plan_digest

_ROLE_WORDS: Final = {"caregiver": "caregiver", "emergency": "emergency contact"}
SLOW_ANSWER_S: Final = 300.0
"""A median answer slower than this is flagged: the median time to cardiac arrest in fatal
drug-induced anaphylaxis is about 5 minutes."""


def plan_conflict_page(patient_id: str, plan: str, yours: str, form_token: str) -> HTMLResponse:
    """409: the plan changed since the form was loaded. The one in force, and theirs to save."""
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in plan.splitlines() if line)
    return page(
        "Not changed",
        '<p class="state" role="alert">Someone else changed the plan since you opened the page: '
        "yours was not saved.</p>"
        '<h2>The plan now</h2><section class="plan">'
        + (lines or "<p>None recorded.</p>")
        + "</section><h2>Yours</h2>"
        + _plan_editor(
            patient_id,
            plan,
            yours,
            form_token,
            "Yours, to save instead of the plan now, or to copy from",
            "Save mine instead",
        )
        + f'<p><a href="{APP_PATH}/patients/{html.escape(patient_id)}">'
        "Back, keeping the plan now</a></p>",
        409,
    )


def plan_changed_part(view: PatientView, when: Clock) -> str:
    """Who changed the emergency plan last, and when (nothing if unknown)."""
    if view.plan_changed is None:
        return ""
    by, time_s = view.plan_changed
    return f'<p class="note">Changed by {person_html(by)}, {when(time_s)}.</p>'


def plan_form(view: PatientView, form_token: str) -> str:
    """The plan to change, folded away: every alert tells it first, to whoever it reaches."""
    most = f"{EMERGENCY_PLAN_MAX_CHARS:,}"
    label = f"The plan: every alert starts with it (at most {most} characters)"
    form = _plan_editor(view.id, view.plan, view.plan, form_token, label, "Save the plan")
    return f"<details><summary>Change the plan</summary>{form}</details>"


def _plan_editor(
    patient_id: str, plan: str, text: str, form_token: str, label: str, button: str
) -> str:
    """A form changing ``plan`` (the one in force, named by its digest) to ``text`` as edited."""
    return (
        f'<form method="post" action="{APP_PATH}/patients/{html.escape(patient_id)}/plan">'
        f"{hidden_token(form_token)}"
        f'<input type="hidden" name="was" value="{plan_digest(plan)}">'
        f'<label for="plan-text">{label}</label>'
        f'<textarea id="plan-text" name="plan" rows="6" maxlength="{EMERGENCY_PLAN_MAX_CHARS}">'
        f"{html.escape(text)}</textarea>"
        f'<button type="submit" class="act">{button}</button></form>'
    )


def care_team_part(
    view: PatientView, when: Clock, form_token: str, *, own: bool = False, invites: bool = False
) -> str:
    """The care team in their order: who is away, whose last message failed, "Move up".

    ``own``: the patient's own page, where they take someone off; ``invites``: and invite
    someone (the service lets people add their own channels).
    """
    invite = invite_form(view.id, form_token) if invites else ""
    if not view.care_team:
        return (
            "<p>Nobody: alerts reach no one."
            + (" Invite someone below.</p>" if invite else " Tell the administrator.</p>")
            + invite
        )
    first = next(
        (m.contact_id for m in view.care_team if m.role == "caregiver" and m.reachable), None
    )
    items = "".join(
        f"<li>{person_html(member.name)} ({_ROLE_WORDS.get(member.role, member.role)})"
        + (
            f': <span class="away">away until {when(member.away_until_s)}</span>'
            if member.away_until_s is not None
            else ""
        )
        + (
            f" (away every week: {html.escape(member.away_every)})"
            if member.away_every is not None
            else ""
        )
        + (
            f'. <strong class="critical">Their last message did not arrive</strong>, '
            f"{when(member.failing_since_s)}: their channel may be broken. They can test it "
            "from their account page; the administrator can fix it."
            if member.failing_since_s is not None
            else ""
        )
        + (
            ". <strong>Invited: no channel yet</strong>, so no alert reaches them: they add one "
            "on their account page"
            if not member.reachable
            else ""
        )
        + (
            small_form(
                f"{_patient_path(view)}/team/{member.contact_id}/up",
                form_token,
                f"Move {person_html(member.name)} up",
            )
            if member.role == "caregiver" and member.reachable and member.contact_id != first
            else ""
        )
        + (
            small_form(
                f"{_patient_path(view)}/team/{member.contact_id}/remind",
                form_token,
                f"Remind {person_html(member.name)}",
            )
            if invites and not member.reachable
            else ""
        )
        + (
            small_form(
                f"{_patient_path(view)}/team/{member.contact_id}/remove",
                form_token,
                f"Take {person_html(member.name)} off",
            )
            if own
            else ""
        )
        + "</li>"
        for member in view.care_team
    )
    away = sum(member.away_until_s is not None for member in view.care_team)
    if away == len(view.care_team):
        note = (
            '<p class="state" role="status">Everyone on the care team is away: alerts still '
            "reach them, in this order.</p>"
        )
    elif away:
        note = (
            '<p class="note">Alerts reach them in this order. Whoever is away is passed over: '
            "they hear of an alert only once everyone else was told and nobody answered.</p>"
        )
    else:
        note = '<p class="note">Alerts reach them in this order.</p>'
    return f"<ol>{items}</ol>{note}{invite}"


def answering_part(view: PatientView) -> str:
    """How fast the care team took on alerts and drills in the last months, and who did."""
    answering = view.answering
    if answering is None:
        return ""
    if not answering.alerts.reached and not answering.drills.reached:
        return f"<p>No alert or drill reached the care team in the last {RESPONSE_DAYS} days.</p>"
    lines = [
        _answering_line(what, tally)
        for what, tally in (("Alerts", answering.alerts), ("Drills", answering.drills))
        if tally.reached
    ]
    slow = [
        tally.median_s
        for tally in (answering.alerts, answering.drills)
        if tally.median_s is not None and tally.median_s > SLOW_ANSWER_S
    ]
    if slow:
        lines.append(
            '<strong class="critical">That is slower than the 5 minutes a severe reaction may '
            "leave.</strong> Check the order, who is away when, and everyone&#8217;s channels; a "
            "drill shows whether it helped."
        )
    return f"<h3>Answering, last {RESPONSE_DAYS} days</h3>" + "".join(
        f"<p>{line}</p>" for line in lines
    )


def _answering_line(what: str, tally: Answering) -> str:
    said = f"{what}: {tally.reached} reached the care team, {tally.answered} taken on"
    if tally.median_s is not None and tally.slowest_s is not None:
        said += (
            f", after {_minutes_seconds(tally.median_s)} at the median (the slowest after "
            f"{_minutes_seconds(tally.slowest_s)}), by "
            + ", ".join(f"{person_html(name)} {count}" for name, count in tally.by.items())
        )
    missed = tally.reached - tally.answered
    if missed:
        said += f'; <strong class="critical">{missed} nobody took on</strong>'
    return said + "."


def quiet_hours_part(view: PatientView, form_token: str) -> str:
    """Quiet hours: when warnings wait (critical alerts never do); set them or turn them off."""
    start, _, end = (view.quiet_hours or "22:00-07:00").partition("-")
    now = (
        f"Quiet hours: {html.escape(view.quiet_hours.replace('-', ' to '))}, on the patient's "
        "clock. A warning raised then waits until they end; a critical alert never waits."
        if view.quiet_hours
        else "No quiet hours: warnings reach the care team at any time, as critical alerts do."
    )
    fields = (
        f'<label for="quiet-start">Quiet from</label><input id="quiet-start" name="start" '
        f'type="time" value="{html.escape(start)}" required>'
        f'<label for="quiet-end">until</label><input id="quiet-end" name="end" type="time" '
        f'value="{html.escape(end)}" required>'
    )
    path = f"{_patient_path(view)}/quiet-hours"
    return (
        f"<h3>Quiet hours</h3><p>{now}</p>"
        f'<form method="post" action="{path}">{hidden_token(form_token)}{fields}'
        '<button type="submit" class="act">Set the quiet hours</button></form>'
        + (small_form(f"{path}/off", form_token, "No quiet hours") if view.quiet_hours else "")
    )


def _patient_path(view: PatientView) -> str:
    return f"{APP_PATH}/patients/{html.escape(view.id)}"


def act_form(action: str, form_token: str, fields: str, button: str) -> str:
    """A form with its fields and one large button (its words and fields already escaped)."""
    return (
        f'<form method="post" action="{action}">{hidden_token(form_token)}{fields}'
        f'<button type="submit" class="act">{button}</button></form>'
    )


def invite_form(patient_id: str, form_token: str) -> str:
    """The patient's form to put someone on their team (``service.accounts.team_invites``)."""
    return (
        "<h3>Invite someone to your care team</h3>"
        '<p class="note">They get an e-mail to join (an account, if they have none) and then '
        "choose where your alerts reach them; until they do, none does.</p>"
        + act_form(
            f"{APP_PATH}/patients/{html.escape(patient_id)}/team/invite",
            form_token,
            '<label for="invite-name">Their name</label><input id="invite-name" name="name" '
            'autocomplete="off" maxlength="200" required>'
            '<label for="invite-email">Their e-mail address</label><input id="invite-email" '
            'name="email" type="email" autocomplete="off" required>',
            "Invite them",
        )
    )


def small_form(action: str, form_token: str, button: str) -> str:
    """A form that is only a small button, beside a line it acts on (its words escaped)."""
    return (
        f'<form method="post" action="{action}">{hidden_token(form_token)}'
        f'<button type="submit" class="link">{button}</button></form>'
    )


def drill_part(view: PatientView, when: Clock, form_token: str) -> str:
    """The last drill's result, and the button to start one."""
    drill = view.last_drill
    if drill is None:
        last = "No drill yet."
    elif drill.open:
        last = f"A drill is going on (begun {when(drill.started_s)})."
    elif drill.answered_by is not None and drill.answered_s is not None:
        after = _minutes_seconds(drill.answered_s - drill.started_s)
        last = (
            f"Last drill {when(drill.started_s)}: {person_html(drill.answered_by)} answered "
            f"after {after}."
        )
    else:
        last = (
            f'Last drill {when(drill.started_s)}: <strong class="critical">nobody answered'
            "</strong>. Check everyone's channels (each caregiver can test theirs from their "
            "account page)."
        )
    return (
        f"<h3>Drill</h3><p>{last}</p>"
        f'<form method="post" action="{_patient_path(view)}/drill">{hidden_token(form_token)}'
        '<button type="submit">Start a drill</button></form>'
        '<p class="note">A practice alert to the care team, going as a real one would (each '
        "person in turn, repeats, the same channels), with DRILL first in every message. The "
        "first I&#8217;m on it ends it; unanswered, it ends after 10 minutes.</p>"
        + _drill_schedule_part(view, when, form_token)
    )


def _drill_schedule_part(view: PatientView, when: Clock, form_token: str) -> str:
    """When drills come by themselves, and the form to set that."""
    schedule = view.drill_schedule
    if schedule is None:
        now = "Drills come only when someone starts one."
    else:
        upcoming = f" The next: {when(schedule.next_s)}." if schedule.next_s is not None else ""
        now = f"A drill comes {every_words(schedule.every_days)} at {schedule.at}.{upcoming}"
    chosen = schedule.every_days if schedule else None
    options = "".join(
        f'<option value="{days}"{" selected" if days == chosen else ""}>{words}</option>'
        for days, words in (("", "only when started"), *DRILL_EVERY_CHOICES.items())
    )
    at = html.escape(schedule.at if schedule else "18:00")
    return (
        f"<p>{now}</p>"
        f'<form method="post" action="{_patient_path(view)}/drill/schedule">'
        f"{hidden_token(form_token)}"
        f'<label for="drill-every">Drills</label><select id="drill-every" name="every">'
        f'{options}</select><label for="drill-at">at</label><input id="drill-at" name="at" '
        f'type="time" value="{at}" required>'
        '<button type="submit" class="act">Set the drills</button></form>'
        '<p class="note">On the patient&#8217;s clock. One due in quiet hours waits until they '
        "end, and one due while an alert is open waits an hour.</p>"
    )


def _minutes_seconds(seconds: float) -> str:
    minutes, rest = divmod(max(0, round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
