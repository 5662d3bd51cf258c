"""The pages behind the links in messages: GET shows the alert, POST acts.

A GET never changes anything: mail scanners and chat apps fetch links to build previews, and
such a fetch must not acknowledge an alert nobody has read.

The acknowledgement page (what a caregiver opens at night) is built by
:mod:`service.api.alert_view`.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from flarewatch.errors import FlarewatchError
from service.alerts.errors import AlertingError, CancelNotAllowedError
from service.alerts.help_requests import request_help
from service.alerts.manager import AlertManager
from service.alerts.render import LOST_SIGNAL
from service.alerts.tokens import TokenAction
from service.api.alert_view import (
    OVER,
    UPDATES_OFF,
    AlertView,
    began_line,
    load_alert_view,
    over_page,
    status_page,
)
from service.api.deps import AlertManagerDep
from service.api.pages import message_page, page
from service.api.status import status_of
from service.db.models import AlertState, Patient
from service.episodes.labels import label_by_link, parse_label

router = APIRouter(tags=["links"])


def _confirm(
    manager: AlertManager, token: str, action: TokenAction, *, updating: bool = True
) -> HTMLResponse:
    try:
        view = load_alert_view(manager, token, manager.inspect(token, action).id)
    except AlertingError as exc:
        return message_page("Link not usable", str(exc), status_of(exc))
    alert = view.alert
    if action is TokenAction.ACK and alert.state in OVER:
        return over_page(view)
    if action is TokenAction.ACK:
        return status_page(view, token, updating=updating)
    if alert.state != AlertState.CANCEL_WINDOW:  # no button that can only be refused
        return _not_cancellable(view, 200)
    if alert.kind in LOST_SIGNAL:
        title, label = "Check your band", "I took it off on purpose: don't alert my caregivers"
        ask = "Put it back on, or check that the gateway is plugged in."
    else:
        title, label = "Are you OK?", "I'm OK: cancel the alarm"
        ask = "If you are fine, cancel before your caregivers are told."
    # not OK: the wearer need not wait out the window (a call for help: help_requests)
    need_help = (
        ""
        if alert.kind in LOST_SIGNAL
        else f'<form method="post" action="{html.escape(token)}/help"><button type="submit" '
        'class="act">I\'m not OK: alert my caregivers now</button></form>'
    )
    return page(
        title,
        # the button before what the band shows: on the first screen, also with large text
        f'<p>{ask}</p><form method="post"><button type="submit" class="act calm">'
        f"{html.escape(label)}</button></form>{need_help}{began_line(view)}",
    )


def _act(
    manager: AlertManager, token: str, action: TokenAction, *, updating: bool = True
) -> HTMLResponse:
    try:
        view = load_alert_view(manager, token, manager.redeem(token, action, via="link").id)
    except CancelNotAllowedError as exc:  # a second tap, or too late: say which, plainly
        return _not_cancellable(load_alert_view(manager, token, exc.alert_id), 409)
    except AlertingError as exc:
        return message_page("Not done", str(exc), status_of(exc))
    alert = view.alert
    if action is TokenAction.CANCEL:
        return _cancelled(view, already=False)
    return over_page(view) if alert.state in OVER else status_page(view, token, updating=updating)


def _cancelled(view: AlertView, *, already: bool) -> HTMLResponse:
    """The wearer's alarm is cancelled: by this tap, or by an earlier one (a double tap)."""
    at = view.when(view.alert.closed_s or view.alert.created_s)
    before = began_line(view) + (f"<p>You had already cancelled it at {at}.</p>" if already else "")
    if view.alert.kind in LOST_SIGNAL:
        return page(
            "Noted",
            f"{before}<p>Your caregivers will not be alerted. Nothing is watched until"
            " the band is back on; put it on again soon.</p>",
        )
    return page("Cancelled", f"{before}<p>Nobody will be alerted. Take care.</p>")


def _not_cancellable(view: AlertView, status: int) -> HTMLResponse:
    """The wearer's link when "I'm OK" can no longer cancel: in their words, with no button.

    Cancelled already answers 200 whatever the status asked (a double tap did what it should).
    """
    alert = view.alert
    if alert.state == AlertState.CANCELLED:
        return _cancelled(view, already=True)
    if alert.state in OVER:
        return page("Nothing to cancel", f"{began_line(view)}<p>This alarm is over.</p>", status)
    return page(
        "Too late to cancel",
        f"{began_line(view)}<p>Your caregivers have already been told: call or message them"
        " to tell them you are OK.</p>",
        status,
    )


_Updates = Annotated[
    str | None, Query(description=f'"{UPDATES_OFF}": the page does not reload itself')
]
"""``?updates=off`` on an acknowledgement link (see :func:`~service.api.alert_view.status_page`)."""


@router.get("/ack/{token}", response_class=HTMLResponse)
def ack_page(token: str, manager: AlertManagerDep, updates: _Updates = None) -> HTMLResponse:
    """Show the alert as it stands and, while nobody is on it, the button to acknowledge it."""
    return _confirm(manager, token, TokenAction.ACK, updating=updates != UPDATES_OFF)


@router.post("/ack/{token}", response_class=HTMLResponse)
def ack_submit(token: str, manager: AlertManagerDep, updates: _Updates = None) -> HTMLResponse:
    """Acknowledge the alert, then show it as it stands."""
    return _act(manager, token, TokenAction.ACK, updating=updates != UPDATES_OFF)


@router.get("/im-ok/{token}", response_class=HTMLResponse)
def im_ok_page(token: str, manager: AlertManagerDep) -> HTMLResponse:
    """Show the wearer's pending alarm and a button to cancel it (once too late: why not)."""
    return _confirm(manager, token, TokenAction.CANCEL)


@router.post("/im-ok/{token}", response_class=HTMLResponse)
def im_ok_submit(token: str, manager: AlertManagerDep) -> HTMLResponse:
    """Cancel the alarm (warnings inside the cancel window only)."""
    return _act(manager, token, TokenAction.CANCEL)


@router.get("/label/{token}", response_class=HTMLResponse)
def label_page(token: str, manager: AlertManagerDep) -> HTMLResponse:
    """Ask whether the alert's episode was a real reaction: two buttons, nothing changed yet."""
    try:
        alert = manager.inspect(token, TokenAction.LABEL)
        manager.episode_to_label(token)
        view = load_alert_view(manager, token, alert.id)
    except AlertingError as exc:
        return message_page("Link not usable", str(exc), status_of(exc))
    # relative to /label/{token}: the form posts to /label/{token}/{answer}, behind any prefix
    forms = "".join(
        f'<form method="post" action="{html.escape(token)}/{answer}">'
        f'<button type="submit">{html.escape(text)}</button></form><p></p>'
        for answer, text in _ANSWERS.items()
    )
    # the answers first: on the first screen, also with large text (what happened below them)
    return page(
        "Was it a real reaction?",
        f"{forms}{began_line(view)}<p>Your answer is kept with the episode. Real reactions and "
        "false alarms are what the detectors can learn from; you can change it later.</p>",
    )


@router.post("/label/{token}/{answer}", response_class=HTMLResponse)
def label_submit(token: str, answer: str, manager: AlertManagerDep) -> HTMLResponse:
    """Keep the answer as the episode's label (the latest answer wins)."""
    try:
        done = label_by_link(manager, token, parse_label(answer), via="link")
    except AlertingError as exc:
        return message_page("Not done", str(exc), status_of(exc))
    except FlarewatchError as exc:  # an answer other than the two offered
        return message_page("Not done", str(exc), 400)
    said = "a real reaction" if done.label == "reaction" else "a false alarm"
    return page("Thank you", f"<p>Episode {done.episode_id} is kept as {said}.</p>")


_ANSWERS = {"reaction": "Yes, a real reaction", "false-alarm": "No, a false alarm"}
"""The two answers a label page offers (path segment: button text)."""


@router.post("/im-ok/{token}/help", response_class=HTMLResponse)
def not_ok_submit(token: str, manager: AlertManagerDep) -> HTMLResponse:
    """The wearer is not OK: their care team is alerted now, as by I need help now."""
    try:
        alert = manager.inspect(token, TokenAction.CANCEL)
    except AlertingError as exc:
        return message_page("Not sent", str(exc), status_of(exc))
    with manager.db.session() as session:
        patient = session.get_one(Patient, alert.patient_id)
        by = patient.display_name or patient.id
    request_help(manager, alert.patient_id, by=by, via="link")
    return page(
        "Your caregivers are being alerted",
        '<p class="state" role="status">Your care team is being alerted now, with your '
        "emergency plan. It does not call an ambulance: call your emergency number if you "
        "can.</p>",
    )
