"""The signed-in web app: ``/app`` for patients, caregivers and researchers.

GET pages read, POST forms act (sign in, sign out, label an episode); a page or form about a
patient the account may not see answers 404, as for a patient that does not exist
(:mod:`service.accounts.access`). Signed out, every page sends to the sign-in form.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flarewatch.errors import ConfigError
from service.accounts.access import care_team_name, visible_patient, visible_patient_ids
from service.accounts.patient_view import load_patient_view
from service.accounts.research_view import research_csv, research_episodes
from service.accounts.sign_in import REFUSED_TEXT, check_password, sign_in, sign_out
from service.accounts.vitals import recent_vitals
from service.alerts.errors import CancelNotAllowedError
from service.api.deps import AlertManagerDep, SampleStoreDep
from service.api.pages import message_page
from service.api.vitals_svg import vitals_chart
from service.api.web_pages import (
    account_page,
    home_page,
    login_page,
    patient_page,
    research_page,
)
from service.api.web_session import (
    APP_PATH,
    account_of,
    clear_session_cookie,
    form_allowed,
    form_token,
    read_form,
    same_origin,
    session_token,
    set_session_cookie,
)
from service.db.accounts import set_password
from service.db.models import AccountRole, Alert, Episode
from service.episodes.labels import parse_label, set_label

router = APIRouter(prefix=APP_PATH, tags=["app"])

_NOT_FOUND = "There is no such patient, or it is not shared with your account."
_FORM_REFUSED = "This form is out of date or came from another site: nothing was done. Reload it."


def _to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.get("", response_class=HTMLResponse)
def home(request: Request, manager: AlertManagerDep) -> Response:
    """The patients the account may see (a researcher's home is the research page)."""
    with manager.db.session() as session:
        account = account_of(request, session, manager)
        if account is None:
            return _to(f"{APP_PATH}/login")
        if account.role == AccountRole.RESEARCHER:
            return _to(f"{APP_PATH}/research")
        views = []
        for patient_id in visible_patient_ids(session, account):
            patient = visible_patient(session, account, patient_id)
            if patient is not None:
                views.append(load_patient_view(session, patient, history=1))
        return home_page(
            account, views, manager.clock(), form_token(manager, session_token(request))
        )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, manager: AlertManagerDep) -> Response:
    """The sign-in form (signed in already: home)."""
    with manager.db.session() as session:
        if account_of(request, session, manager) is not None:
            return _to(APP_PATH)
    return login_page()


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, manager: AlertManagerDep) -> Response:
    """Check the password: a session cookie and home, or the form again with one answer."""
    form = await read_form(request)
    username = form.get("username", "")[:64]
    if not same_origin(request):
        return login_page(refused=_FORM_REFUSED, status=403)
    with manager.db.session() as session:
        signed = sign_in(session, username, form.get("password", ""), manager.clock())
    if signed is None:
        return login_page(refused=REFUSED_TEXT, username=username, status=401)
    response = _to(APP_PATH)
    set_session_cookie(response, signed.token, manager)
    return response


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, manager: AlertManagerDep) -> Response:
    """End this browser's session."""
    form = await read_form(request)
    if not form_allowed(request, form, manager):
        return message_page("Not signed out", _FORM_REFUSED, 403)
    with manager.db.session() as session:
        sign_out(session, session_token(request), manager.clock())
    response = _to(f"{APP_PATH}/login")
    clear_session_cookie(response, manager)
    return response


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient(
    patient_id: str, request: Request, manager: AlertManagerDep, store: SampleStoreDep
) -> Response:
    """One patient's page, if the account may see them: its chart read after the database."""
    with manager.db.session() as session:
        account = account_of(request, session, manager)
        if account is None:
            return _to(f"{APP_PATH}/login")
        found = visible_patient(session, account, patient_id)
        if found is None:
            return message_page("Not found", _NOT_FOUND, 404)
        view = load_patient_view(session, found)
    now_s = manager.clock()
    chart = (
        vitals_chart(
            recent_vitals(store, patient_id, int(now_s * 1000)), view.episodes, view.timezone, now_s
        )
        if store is not None
        else ""
    )
    return patient_page(
        account, view, now_s, form_token(manager, session_token(request)), chart=chart
    )


@router.post("/patients/{patient_id}/episodes/{episode_id}/label", response_class=HTMLResponse)
async def label(
    patient_id: str, episode_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Say whether an episode was a real reaction (what the detectors learn from)."""
    form = await read_form(request)
    if not form_allowed(request, form, manager):
        return message_page("Not labelled", _FORM_REFUSED, 403)
    with manager.db.session() as session:
        account = account_of(request, session, manager)
        if account is None:
            return _to(f"{APP_PATH}/login")
        found = visible_patient(session, account, patient_id)
        episode = session.get(Episode, episode_id)
        if found is None or episode is None or episode.patient_id != patient_id:
            return message_page("Not found", _NOT_FOUND, 404)
        try:
            answer = parse_label(form.get("label", ""))
            by = care_team_name(session, account, patient_id)
            set_label(session, episode_id, answer, by, manager.clock(), via="web")
        except ConfigError as exc:
            return message_page("Not labelled", str(exc), 422)
    return _to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/alerts/{alert_id}/{action}", response_class=HTMLResponse)
async def act_on_alert(
    patient_id: str, alert_id: int, action: str, request: Request, manager: AlertManagerDep
) -> Response:
    """A caregiver acknowledges an alert (``ack``); the patient cancels their own (``cancel``)."""
    form = await read_form(request)
    if not form_allowed(request, form, manager):
        return message_page("Not done", _FORM_REFUSED, 403)
    with manager.db.session() as session:
        account = account_of(request, session, manager)
        if account is None:
            return _to(f"{APP_PATH}/login")
        found = visible_patient(session, account, patient_id)
        alert = session.get(Alert, alert_id)
        if found is None or alert is None or alert.patient_id != patient_id:
            return message_page("Not found", _NOT_FOUND, 404)
        allowed = {AccountRole.CAREGIVER: "ack", AccountRole.PATIENT: "cancel"}
        if allowed.get(AccountRole(account.role)) != action:
            return message_page("Not done", "Your account cannot do that here.", 403)
        by = care_team_name(session, account, patient_id)
    try:
        if action == "ack":
            manager.acknowledge(alert_id, by=by, via="web")
        else:
            manager.cancel(alert_id, via="web")
    except CancelNotAllowedError:
        return message_page(
            "Too late to cancel",
            "Your caregivers have already been told: call or message them to tell them you are "
            "OK.",
            409,
        )
    return _to(f"{APP_PATH}/patients/{patient_id}")


@router.get("/research", response_class=HTMLResponse)
def research(request: Request, manager: AlertManagerDep) -> Response:
    """Consenting patients' episodes, pseudonymised (researchers only)."""
    with manager.db.session() as session:
        account = account_of(request, session, manager)
        if account is None:
            return _to(f"{APP_PATH}/login")
        if account.role != AccountRole.RESEARCHER:
            return message_page("Not found", "This page is for researchers.", 404)
        episodes = research_episodes(session, manager.secret_key)
        return research_page(account, episodes, form_token(manager, session_token(request)))


@router.get("/research/episodes.csv")
def research_download(request: Request, manager: AlertManagerDep) -> Response:
    """The research page's episodes as CSV."""
    with manager.db.session() as session:
        account = account_of(request, session, manager)
        if account is None:
            return _to(f"{APP_PATH}/login")
        if account.role != AccountRole.RESEARCHER:
            return message_page("Not found", "This page is for researchers.", 404)
        text = research_csv(research_episodes(session, manager.secret_key))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="flarewatch-episodes.csv"'},
    )


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, manager: AlertManagerDep) -> Response:
    """The account's own page (its password)."""
    with manager.db.session() as session:
        found = account_of(request, session, manager)
        if found is None:
            return _to(f"{APP_PATH}/login")
        return account_page(found, form_token(manager, session_token(request)))


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, manager: AlertManagerDep) -> Response:
    """Set a new password: this browser stays signed in, every other one is signed out."""
    form = await read_form(request)
    if not form_allowed(request, form, manager):
        return message_page("Not changed", _FORM_REFUSED, 403)
    with manager.db.session() as session:
        found = account_of(request, session, manager)
        if found is None:
            return _to(f"{APP_PATH}/login")
        token = form_token(manager, session_token(request))
        if not check_password(session, found, form.get("current", ""), manager.clock()):
            said = (
                "That is not your password now: nothing was changed (wrong tries count as "
                "wrong sign-ins)."
            )
            return account_page(found, token, said=said, status=403)
        if form.get("new", "") != form.get("again"):
            said = "The two new passwords differ: nothing was changed."
            return account_page(found, token, said=said, status=422)
        try:
            set_password(session, found, form.get("new", ""), manager.clock())
        except ConfigError as exc:
            return account_page(found, token, said=f"Not changed: {exc}.", status=422)
        signed = sign_in(session, found.username, form["new"], manager.clock())
    response = _to(APP_PATH)
    if signed is not None:
        set_session_cookie(response, signed.token, manager)
    return response
