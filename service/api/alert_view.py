"""What a link page shows of one alert: read in one transaction, rendered as HTML pieces.

The acknowledgement page is what a caregiver opens at night from a push or an SMS. It says what
the message said, brought up to date, in the order they need it: the state in words (waiting,
acknowledged by whom, over), the button, the emergency plan, then who, what and since when on the
patient's clock, the last heart rate and who has been told when. The token holder learns nothing
the message did not tell them: contacts by name, never their channels. While the alert goes on,
the page loads itself again (:data:`~service.api.pages.REFRESH_S`), with a GET.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from fastapi.responses import HTMLResponse
from sqlalchemy import select

from models.alarm import Severity
from service.alerts.care_team import escalation_levels
from service.alerts.const import NAME_IN_TITLE_MAX_CHARS
from service.alerts.delivery_queue import TELLING
from service.alerts.errors import AlertingError
from service.alerts.lifecycle import Purpose
from service.alerts.manager import AlertManager
from service.alerts.render import (
    HEART_RATE_TIME_KEY,
    LOST_SIGNAL,
    SHORT_WHAT,
    WHAT_HAPPENED,
    emergency_plan_lines,
    heart_rate_words,
    last_heart_rate,
    on_patient_clock,
    one_line,
)
from service.alerts.tokens import verify_token
from service.api.pages import REFRESH_S, page
from service.api.web_session import APP_PATH
from service.db.models import (
    Alert,
    AlertState,
    Contact,
    Delivery,
    DeliveryState,
    Episode,
    Patient,
    Role,
)

OVER = (AlertState.RESOLVED, AlertState.CANCELLED)
"""Alerts with nothing left to acknowledge: an old link must not say that it stopped anything."""
_WAITING = (AlertState.CANCEL_WINDOW, AlertState.ACTIVE)
"""Alerts nobody has acknowledged: the acknowledgement page offers its button."""
_TOLD = (*TELLING, Purpose.PATIENT_CHECK)
"""Messages that tell someone of the alert (the wearer's check included) for "who has been told"."""
UPDATES_OFF = "off"
"""``?updates=off`` on an acknowledgement link: the page without its reloading
(see :func:`status_page`)."""
_ROLE_NOTE = {Role.EMERGENCY.value: " (emergency contact)", Role.PATIENT.value: " (the wearer)"}
"""Said after a name in "who has been told" (a caregiver is just named)."""


@dataclass(frozen=True, slots=True)
class _Told:
    """One person messages of the alert reached: when first and when last."""

    name: str
    role: str
    first_s: float
    last_s: float
    is_holder: bool


@dataclass(frozen=True, slots=True)
class AlertView:
    """What a link page shows of one alert, read in one transaction (the alert row included)."""

    alert: Alert
    patient_name: str
    timezone: str
    plan: list[str]
    heart_rate: float | None
    heart_rate_s: float | None
    """When it was measured (None: an episode from before this was kept)."""
    signal_lost: bool
    expired: bool
    told: list[_Told]
    holder: str | None
    """The name of the person the link was sent to."""
    now_s: float
    away: list[tuple[str, float]] = field(default_factory=list)
    """(name, until when) of the care team's members away now, not told of the alert."""

    def when(self, time_s: float) -> str:
        """``03:12 CET (4 min ago)`` on the patient's clock."""
        return on_patient_clock(time_s, self.now_s, self.timezone)

    @property
    def who(self) -> str:
        """The patient's whole name, escaped and isolated (a name may be in any script)."""
        return person_html(self.patient_name)

    @property
    def what(self) -> str:
        """What happened, in words (escaped)."""
        return html.escape(WHAT_HAPPENED.get(self.alert.kind, self.alert.kind.replace("_", " ")))

    @property
    def title(self) -> str:
        """The page's heading (not escaped): what the lock screen said, or who is on it.

        ``CRITICAL: Alex - possible anaphylaxis`` while nobody is on it, ``Acknowledged: Alex -
        possible anaphylaxis`` once someone is.
        """
        name = one_line(self.patient_name, NAME_IN_TITLE_MAX_CHARS)
        short = SHORT_WHAT.get(self.alert.kind, self.alert.kind.replace("_", " "))
        if self.alert.state == AlertState.ACKNOWLEDGED:
            return f"Acknowledged: {name} - {short}"
        return f"{self.alert.severity.upper()}: {name} - {short}"


def person_html(name: str) -> str:
    """A name typed by someone, as HTML: on one line, escaped, its direction kept to itself."""
    return f"<bdi>{html.escape(one_line(name))}</bdi>"


def load_alert_view(manager: AlertManager, token: str, alert_id: int) -> AlertView:
    """The alert, its patient, its episode's latest heart rate and who has been told."""
    try:
        contact_id: int | None = verify_token(manager.secret_key, token, manager.clock()).contact_id
    except AlertingError:  # expired since it was redeemed a moment ago: no "you", nothing else
        contact_id = None
    with manager.db.session() as session:
        alert = session.get_one(Alert, alert_id)
        patient = session.get_one(Patient, alert.patient_id)
        episode = session.get(Episode, alert.episode_id) if alert.episode_id else None
        summary = episode.summary if episode else {}
        vitals = summary.get("vitals") or {}
        holder = session.get(Contact, contact_id) if contact_id is not None else None
        sent = session.execute(
            select(Delivery.contact_id, Delivery.sent_s, Contact.name, Contact.role)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(
                Delivery.alert_id == alert.id,
                Delivery.state == DeliveryState.SENT,
                Delivery.purpose.in_(_TOLD),
            )
            .order_by(Delivery.sent_s, Delivery.id)
        ).all()
        told: dict[int, _Told] = {}
        for contact, sent_s, name, role in sent:
            at = alert.created_s if sent_s is None else sent_s  # a sent delivery has its time
            first = told.get(contact)
            told[contact] = _Told(
                name, role, first.first_s if first else at, at, contact == contact_id
            )
        away = [
            (c.name, c.away_until_s)
            for c in escalation_levels(session, alert.patient_id)
            if c.away_until_s is not None and c.id not in told
        ]
        return AlertView(
            alert=alert,
            patient_name=patient.display_name or patient.id,
            timezone=patient.timezone,
            plan=emergency_plan_lines(patient.emergency_plan),
            heart_rate=last_heart_rate(alert.kind, vitals),
            heart_rate_s=_time(vitals.get(HEART_RATE_TIME_KEY)),
            signal_lost=bool(episode and episode.signal_lost),
            expired=bool(summary.get("expired")),
            told=list(told.values()),
            holder=holder.name if holder is not None else None,
            now_s=manager.clock(),
            away=away,
        )


def _state(view: AlertView) -> str:
    """The state in words, first on the page: whether anyone is on it."""
    alert = view.alert
    if alert.state == AlertState.ACKNOWLEDGED:
        at = view.when(alert.acked_s or alert.created_s)
        if view.holder is not None and alert.acked_by == view.holder:
            said = f"You acknowledged at {at}"
        else:
            said = f"Acknowledged by {person_html(alert.acked_by or 'someone')} at {at}"
        return (
            f'<p class="state done">{said}; the others stop being alerted. Everyone told hears'
            " again if it gets worse.</p>"
        )
    if alert.state == AlertState.CANCELLED:
        at = view.when(alert.closed_s or alert.created_s)
        return (
            f'<p class="state over">Over: {view.who} cancelled it at {at} (they said they are'
            " OK).</p>"
        )
    if alert.state == AlertState.RESOLVED:
        at = view.when(alert.closed_s or alert.created_s)
        if view.expired:
            return (
                f'<p class="state over">Closed at {at} without calming down: the readings are'
                " still raised. Check on them.</p>"
            )
        acked = f" {person_html(alert.acked_by)} had acknowledged it." if alert.acked_by else ""
        return f'<p class="state over">Over: no longer detected since {at}.{acked}</p>'
    # short: with large text, the button must still be on the first screen (what happens
    # until someone acknowledges is said under it, see :func:`status_page`)
    return '<p class="state">Waiting for someone to acknowledge.</p>'


def _plan(view: AlertView) -> str:
    """The emergency plan, boxed: what to do, right under the button."""
    critical = view.alert.severity == Severity.CRITICAL
    heading = "Act now" if critical else "What to do"
    if view.alert.kind in LOST_SIGNAL:  # about the band: the plan for a reaction would alarm
        lines = [f"Check on {view.who} (call or go): the band cannot watch over them now."]
    else:
        lines = [html.escape(line) for line in view.plan] or [f"Check on {view.who}."]
    return (
        f'<section class="plan"><h2 class="critical">{heading}</h2>'
        + "".join(f"<p>{line}</p>" for line in lines)
        + "</section>"
    )


def _details(view: AlertView) -> str:
    """Who, what, since when, the last heart rate, and who has been told."""
    alert = view.alert
    parts = [
        "<h2>What happened</h2>",
        f"<p>{view.who}: {view.what} ({html.escape(alert.severity)}), began"
        f" {view.when(alert.since_s)}.</p>",
    ]
    if view.signal_lost:
        parts.append(
            "<p><strong>The band's signal was LOST during this episode: the reading below is"
            " old. Check on them in person.</strong></p>"
        )
    if view.heart_rate is not None:
        measured = (
            f"measured {view.when(view.heart_rate_s)}"
            if view.heart_rate_s is not None
            else "the latest reading saved with this episode"
        )
        parts.append(
            f"<p>Last heart rate: <strong>{heart_rate_words(view.heart_rate)}</strong>"
            f" ({measured}).</p>"
        )
    if alert.episode_id is not None:  # the app asks whoever opens it to sign in
        path = f"{APP_PATH}/patients/{html.escape(alert.patient_id)}/episodes/{alert.episode_id}"
        parts.append(
            f'<p><a href="{path}">The readings around it, minute by minute</a> (in the web app, '
            "signed in).</p>"
        )
    parts.append("<h2>Who has been told</h2>")
    if not view.told:
        parts.append("<p>Nobody yet.</p>")
    else:
        items = []
        for told in view.told:
            who = person_html(told.name) + _ROLE_NOTE.get(told.role, "")
            who += " (you)" if told.is_holder else ""
            said = "asked if they are OK" if told.role == Role.PATIENT else "told"
            latest = (
                f"; latest message {view.when(told.last_s)}" if told.last_s > told.first_s else ""
            )
            items.append(f"<li>{who}: {said} at {view.when(told.first_s)}{latest}</li>")
        parts.append("<ul>" + "".join(items) + "</ul>")
    if view.away:
        names = ", ".join(
            f"{person_html(name)} (until {view.when(until_s)})" for name, until_s in view.away
        )
        parts.append(f'<p class="note">Away, and told only if nobody else answers: {names}.</p>')
    return "".join(parts)


def status_page(view: AlertView, token: str, *, updating: bool = True) -> HTMLResponse:
    """The acknowledgement page of an alert that is going on: state, button, plan, details.

    ``updating``: the page loads itself again every :data:`~service.api.pages.REFRESH_S`
    seconds. That sends a screen reader back to the page's top and drops the keyboard's focus
    (WCAG 2.2.1), so a link right under the button, before what takes long to read, turns it
    off: the same page at ``?updates=off``, whose form posts there too.
    """
    alert = view.alert
    if alert.state in _WAITING:
        going_on = (
            "Until someone does, everyone told is alerted again, then the next person."
            if alert.severity == Severity.CRITICAL
            else "If nobody does, the next person is alerted."
        )
        button = (
            '<form method="post"><button type="submit" class="act">I\'m on it: acknowledge'
            '</button></form><p class="note">It stops the alarm for the others: they learn that'
            f" you are on it. {going_on}</p>"
        )
    else:
        button = ""
    escaped = html.escape(token)
    updates = (
        f'<p class="note">This page updates itself every {REFRESH_S} s. <a href="{escaped}'
        f'?updates={UPDATES_OFF}">Stop updating this page</a></p>'
        if updating
        else '<p class="note">This page does not update itself. '
        f'<a href="{escaped}">Update this page now</a></p>'
    )
    return page(
        view.title,
        f"{_state(view)}{button}{updates}{_plan(view)}{_details(view)}",
        # relative to /ack/{token}: this same page, behind any prefix, loaded with a GET
        refresh_url=token if updating else None,
        heading_class="critical" if alert.severity == Severity.CRITICAL else None,
    )


def over_page(view: AlertView) -> HTMLResponse:
    """The page of an acknowledgement link whose alert is over: no button, nothing done.

    A caregiver opening yesterday's link during today's emergency must not read "Acknowledged,
    repeats stop" and ignore the repeats of the alert that is going on.
    """
    return page(
        "Nothing to acknowledge",
        f"{_state(view)}<p>This alert is over; nothing was changed. If you were alerted again "
        f"since, use the link in the newest message.</p>{_details(view)}",
    )


def began_line(view: AlertView) -> str:
    """One line for the wearer's and the label pages: who, what, when it began."""
    return f"<p>{view.who}: {view.what}, began {view.when(view.alert.since_s)}.</p>"


def _time(value: object) -> float | None:
    """A stored time (epoch s), or None for anything else (a summary is JSON written long ago)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
