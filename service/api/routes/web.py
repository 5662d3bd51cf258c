"""The signed-in web app: ``/app`` for patients, caregivers and researchers.

GET pages read, POST forms act (sign in, sign out, label an episode); a page or form about a
patient the account may not see answers 404, as for a patient that does not exist
(:mod:`service.accounts.access`). Signed out, every page sends to the sign-in form.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from flarewatch.errors import ConfigError
from service.accounts.access import care_team_name, visible_patient
from service.accounts.patient_view import load_patient_view, visible_views
from service.accounts.research_view import (
    note_research_read,
    research_csv,
    research_episodes,
)
from service.accounts.sign_in import (
    REFUSED_TEXT,
    SignedIn,
    check_password,
    sign_in,
    sign_out,
)
from service.accounts.throttle import SignInThrottle
from service.accounts.vitals import recent_vitals
from service.alerts.errors import CancelNotAllowedError
from service.alerts.manager import AlertManager
from service.api.deps import AlertManagerDep, SampleStoreDep, ViewLogDep
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
from service.db.diary import add_entry, parse_kind, remove_entry
from service.db.models import Account, AccountRole, Alert, DiaryEntry, Episode, Patient
from service.episodes.labels import parse_label, set_label

router = APIRouter(prefix=APP_PATH, tags=["app"])

_NOT_FOUND = "There is no such patient, or it is not shared with your account."
_FORM_REFUSED = "This form is out of date or came from another site: nothing was done. Reload it."
_RESEARCHERS_ONLY = "This page is for researchers."
_TOO_MANY = (
    "Too many refused sign-ins from your network: try again in {minutes} min. Nothing was checked."
)


class EarlyAnswer(Exception):
    """A route's answer found before its work: sign in first, not found, a refused form.

    Raised by the guards below and answered as it is (``create_app`` installs the handler);
    the transaction it leaves is rolled back, so a guard never half-does anything.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def answer_early(request: Request, exc: Exception) -> Response:
    """The exception handler of :class:`EarlyAnswer`."""
    assert isinstance(exc, EarlyAnswer)
    return exc.response


def _to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _signed_in(request: Request, session: Session, manager: AlertManager) -> Account:
    """The account signed in on this browser; else the browser goes to the sign-in form."""
    account = account_of(request, session, manager)
    if account is None:
        raise EarlyAnswer(_to(f"{APP_PATH}/login"))
    return account


def _shared(session: Session, account: Account, patient_id: str) -> None:
    """404 unless ``account`` sees the patient."""
    if visible_patient(session, account, patient_id) is None:
        raise EarlyAnswer(message_page("Not found", _NOT_FOUND, 404))


def _of_patient(row: Episode | Alert | DiaryEntry | None, patient_id: str) -> None:
    """404 unless ``row`` exists and is about ``patient_id`` (an id taken from another's page)."""
    if row is None or row.patient_id != patient_id:
        raise EarlyAnswer(message_page("Not found", _NOT_FOUND, 404))


def _acting_on(
    request: Request,
    session: Session,
    manager: AlertManager,
    patient_id: str,
    row: Episode | Alert | DiaryEntry | None,
) -> Account:
    """The signed-in account acting on ``row`` of a patient it sees (else the early answer)."""
    account = _signed_in(request, session, manager)
    _shared(session, account, patient_id)
    _of_patient(row, patient_id)
    return account


def _researcher(request: Request, session: Session, manager: AlertManager) -> Account:
    """The signed-in researcher (404 to any other role)."""
    account = _signed_in(request, session, manager)
    if account.role != AccountRole.RESEARCHER:
        raise EarlyAnswer(message_page("Not found", _RESEARCHERS_ONLY, 404))
    return account


async def _posted(request: Request, manager: AlertManager, title: str) -> dict[str, str]:
    """The posted form, if it is this session's from this site (else 403, nothing done)."""
    form = await read_form(request)
    if not form_allowed(request, form, manager):
        raise EarlyAnswer(message_page(title, _FORM_REFUSED, 403))
    return form


def _token(request: Request, manager: AlertManager) -> str:
    return form_token(manager, session_token(request))


@router.get("", response_class=HTMLResponse)
def home(request: Request, manager: AlertManagerDep, view_log: ViewLogDep) -> Response:
    """The patients the account may see (a researcher's home is the research page)."""
    with manager.db.session() as session:
        account = _signed_in(request, session, manager)
        if account.role == AccountRole.RESEARCHER:
            return _to(f"{APP_PATH}/research")
        views = visible_views(session, account)
        view_log.viewed(session, account, [v.id for v in views], manager.clock(), via="app")
        return home_page(account, views, manager.clock(), _token(request, manager))


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
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    address = request.client.host if request.client is not None else "(unknown)"
    wait_s = throttle.wait_s(address, manager.clock())
    if wait_s > 0:
        refused = login_page(refused=_TOO_MANY.format(minutes=math.ceil(wait_s / 60)), status=429)
        refused.headers["retry-after"] = str(math.ceil(wait_s))
        return refused

    def check() -> SignedIn | None:
        with manager.db.session() as session:
            return sign_in(session, username, form.get("password", ""), manager.clock())

    # a worker thread, a few at a time: the hash takes a core for ~50 ms, and this server's
    # event loop also answers the acknowledgement links
    async with request.app.state.sign_in_slots:
        signed = await run_in_threadpool(check)
    if signed is None:
        throttle.refused(address, manager.clock())
        return login_page(refused=REFUSED_TEXT, username=username, status=401)
    response = _to(APP_PATH)
    set_session_cookie(response, signed.token, manager)
    return response


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, manager: AlertManagerDep) -> Response:
    """End this browser's session."""
    await _posted(request, manager, "Not signed out")
    with manager.db.session() as session:
        sign_out(session, session_token(request), manager.clock())
    response = _to(f"{APP_PATH}/login")
    clear_session_cookie(response, manager)
    return response


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient(
    patient_id: str,
    request: Request,
    manager: AlertManagerDep,
    store: SampleStoreDep,
    view_log: ViewLogDep,
) -> Response:
    """One patient's page, if the account may see them: its chart read after the database."""
    with manager.db.session() as session:
        account = _signed_in(request, session, manager)
        _shared(session, account, patient_id)
        view = load_patient_view(session, session.get_one(Patient, patient_id))
        view_log.viewed(session, account, [patient_id], manager.clock(), via="app")
    now_s = manager.clock()
    chart = (
        vitals_chart(
            recent_vitals(store, patient_id, int(now_s * 1000)),
            view.episodes,
            view.timezone,
            now_s,
            view.diary,
        )
        if store is not None
        else ""
    )
    return patient_page(account, view, now_s, _token(request, manager), chart=chart)


@router.post("/patients/{patient_id}/episodes/{episode_id}/label", response_class=HTMLResponse)
async def label(
    patient_id: str, episode_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Say whether an episode was a real reaction (what the detectors learn from)."""
    form = await _posted(request, manager, "Not labelled")
    with manager.db.session() as session:
        account = _acting_on(
            request, session, manager, patient_id, session.get(Episode, episode_id)
        )
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
    await _posted(request, manager, "Not done")
    with manager.db.session() as session:
        account = _acting_on(request, session, manager, patient_id, session.get(Alert, alert_id))
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
            "Your caregivers have already been told: call or message them to tell them you are OK.",
            409,
        )
    return _to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/diary", response_class=HTMLResponse)
async def add_to_diary(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """Note what happened, at a time on the patient's clock."""
    form = await _posted(request, manager, "Not added")
    with manager.db.session() as session:
        account = _signed_in(request, session, manager)
        _shared(session, account, patient_id)
        patient = session.get_one(Patient, patient_id)
        try:
            time_s = _local_time(form.get("when", ""), patient.timezone)
            kind = parse_kind(form.get("kind", ""))
            by = care_team_name(session, account, patient_id)
            add_entry(
                session,
                patient_id,
                time_s,
                kind,
                form.get("text", ""),
                by,
                manager.clock(),
                via="web",
            )
        except ConfigError as exc:
            return message_page("Not added", f"Nothing was added: {exc}.", 422)
    return _to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/diary/{entry_id}/remove", response_class=HTMLResponse)
async def remove_from_diary(
    patient_id: str, entry_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Take an entry out of the diary (one written by mistake)."""
    await _posted(request, manager, "Not removed")
    with manager.db.session() as session:
        account = _acting_on(
            request, session, manager, patient_id, session.get(DiaryEntry, entry_id)
        )
        by = care_team_name(session, account, patient_id)
        remove_entry(session, patient_id, entry_id, by, manager.clock(), via="web")
    return _to(f"{APP_PATH}/patients/{patient_id}")


def _local_time(value: str, timezone: str) -> float:
    """A ``datetime-local`` field's value (``2026-11-28T17:05``) on the patient's clock, as UTC."""
    try:
        local = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"the time {value[:40]!r} is not a date and time") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(timezone))
    return local.timestamp()


@router.get("/research", response_class=HTMLResponse)
def research(request: Request, manager: AlertManagerDep) -> Response:
    """Consenting patients' episodes, pseudonymised (researchers only)."""
    with manager.db.session() as session:
        account = _researcher(request, session, manager)
        episodes = research_episodes(session, manager.secret_key)
        return research_page(account, episodes, _token(request, manager))


@router.get("/research/episodes.csv")
def research_download(request: Request, manager: AlertManagerDep) -> Response:
    """The research page's episodes as CSV."""
    with manager.db.session() as session:
        account = _researcher(request, session, manager)
        episodes = research_episodes(session, manager.secret_key)
        note_research_read(session, account, episodes, manager.clock(), via="app")
        text = research_csv(episodes)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="flarewatch-episodes.csv"'},
    )


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, manager: AlertManagerDep) -> Response:
    """The account's own page (its password)."""
    with manager.db.session() as session:
        return account_page(_signed_in(request, session, manager), _token(request, manager))


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, manager: AlertManagerDep) -> Response:
    """Set a new password: this browser stays signed in, every other one is signed out."""
    form = await _posted(request, manager, "Not changed")
    with manager.db.session() as session:
        found = _signed_in(request, session, manager)
        token = _token(request, manager)
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
