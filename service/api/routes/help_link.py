"""The page behind a patient's help link (:mod:`service.accounts.help_link`): one button.

GET shows the button and how the call for help stands (a link preview fetches it: it changes
nothing); POST raises the call for help, or ends it. No session and no form token: the token
in the address is the key, and a post from another site is refused by its origin. While a
call is open the page reloads itself, so the patient sees when someone is on it.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from service.accounts.help_link import HELP_PATH, help_link_account
from service.alerts.help_requests import end_help, open_help, request_help
from service.alerts.manager import AlertManager
from service.alerts.render import on_patient_clock
from service.api.alert_view import UPDATES_OFF, person_html
from service.api.deps import AlertManagerDep
from service.api.pages import REFRESH_S, message_page, page
from service.api.web_session import read_form, same_origin
from service.db.models import AlertState, Patient

router = APIRouter(prefix=HELP_PATH, tags=["links"])

_GONE = (
    "This help link does not work (any more): a newer one replaced it, or it was removed. Make "
    "a new one on your account page, or call your caregivers."
)


def _help_page(
    manager: AlertManager, token: str, said: str | None = None, *, updating: bool = True
) -> HTMLResponse:
    """The button, and how the call for help stands (reloading itself while one is open).

    ``updating``: whether the page reloads itself while a call is open; a screen reader user
    turns it off (a reload moves them back to the top: WCAG 2.2.1), as on the link pages.
    """
    with manager.db.session() as session:
        account = help_link_account(session, token[:100])
        if account is None or account.patient_id is None:
            return message_page("Link not usable", _GONE, 404)
        patient = session.get_one(Patient, account.patient_id)
        alert = open_help(session, patient.id)
        now_s = manager.clock()
        path = f"{HELP_PATH}/{html.escape(token[:100])}"
        button = (
            f'<form method="post" action="{path}"><button type="submit" class="act">'
            f"{'Alert them again' if alert else 'I need help now'}</button></form>"
        )
        if alert is None:
            state = (
                "<p>One tap alerts your care team at once, with your emergency plan. It does "
                "not call an ambulance: call your emergency number if you can.</p>"
            )
            end = ""
        else:
            since = on_patient_clock(alert.since_s, now_s, patient.timezone)
            taken = (
                f"{person_html(alert.acked_by)} is on it."
                if alert.state == AlertState.ACKNOWLEDGED and alert.acked_by
                else "Your care team is being alerted; nobody has answered yet."
            )
            state = (
                f'<p class="state" role="status">You asked for help at {html.escape(since)}. '
                f"{taken}</p>"
            )
            end = (
                f'<form method="post" action="{path}/end"><button type="submit" '
                'class="act calm">It\'s over: all clear</button></form>'
                + (
                    f'<p class="note">This page updates itself every {REFRESH_S} s. <a href="'
                    f'{path}?updates={UPDATES_OFF}">Stop updating this page</a></p>'
                    if updating
                    else f'<p class="note">This page does not update itself. <a href="{path}">'
                    "Update this page now</a></p>"
                )
            )
        title = f"Help for {patient.display_name or patient.id}"
        going_on = alert is not None
    note = f'<p class="state done" role="status">{html.escape(said)}</p>' if said else ""
    return page(
        title,
        f"{note}{state}{button}{end}",
        refresh_url=f"{HELP_PATH}/{token[:100]}" if going_on and updating else None,
    )


@router.get("/{token}", response_class=HTMLResponse)
def help_link_page(token: str, manager: AlertManagerDep, updates: str = "") -> HTMLResponse:
    """The button (a GET changes nothing); ``?updates=off``: no reloading."""
    return _help_page(manager, token, updating=updates != UPDATES_OFF)


async def _link_holder(
    request: Request, manager: AlertManager, token: str
) -> tuple[str, str] | HTMLResponse:
    """The patient (id, name) whose link this is, for a post from this site; else the refusal."""
    await read_form(request)
    if not same_origin(request):
        return message_page("Not done", "This came from another site: nothing was done.", 403)
    with manager.db.session() as session:
        account = help_link_account(session, token[:100])
        if account is None or account.patient_id is None:
            return message_page("Link not usable", _GONE, 404)
        return account.patient_id, account.display_name or account.username


@router.post("/{token}", response_class=HTMLResponse)
async def help_by_link(token: str, request: Request, manager: AlertManagerDep) -> HTMLResponse:
    """Alert the patient's care team now (again at most once a minute)."""
    holder = await _link_holder(request, manager, token)
    if isinstance(holder, HTMLResponse):
        return holder
    request_help(manager, holder[0], by=holder[1], via="help_link")
    return _help_page(manager, token, "Your care team is being alerted now.")


@router.post("/{token}/end", response_class=HTMLResponse)
async def help_over_by_link(token: str, request: Request, manager: AlertManagerDep) -> HTMLResponse:
    """The call for help is over: all clear to whoever was told."""
    holder = await _link_holder(request, manager, token)
    if isinstance(holder, HTMLResponse):
        return holder
    patient_id, by = holder
    with manager.db.session() as session:
        alert = open_help(session, patient_id)
        alert_id = alert.id if alert is not None else None
    if alert_id is not None:
        end_help(manager, patient_id, alert_id, by=by, via="help_link")
    return _help_page(manager, token, "Over: whoever was told hears all clear.")
