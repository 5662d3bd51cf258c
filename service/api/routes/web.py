"""The signed-in web app: ``/app`` for patients, caregivers and researchers.

GET pages read, POST forms act (sign in, sign out, label an episode); a page or form about a
patient the account may not see answers 404, as for a patient that does not exist
(:mod:`service.accounts.access`). Signed out, every page sends to the sign-in form.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from flarewatch.errors import ConfigError
from service.accounts.access import care_team_name
from service.accounts.episode_view import load_episode_view
from service.accounts.own_channels import own_channels
from service.accounts.patient_view import load_patient_view, visible_views
from service.accounts.research_view import (
    note_research_read,
    research_csv,
    research_episodes,
)
from service.accounts.vitals import chart_span, recent_vitals, vitals_between
from service.alerts.audit import record
from service.alerts.errors import CancelNotAllowedError
from service.alerts.help_requests import HELP, end_help, request_help
from service.alerts.off_reminders import NOTICE_CHOICES, REMINDER_CHOICES, set_off_reminder
from service.api.deps import AlertManagerDep, SampleStoreDep, ViewLogDep
from service.api.episode_page import episode_page
from service.api.pages import message_page
from service.api.routes.web_team import invites_open
from service.api.vitals_svg import vitals_chart
from service.api.web_guards import (
    acting_on,
    named_on_team,
    own_record,
    page_token,
    posted_form,
    redirect_to,
    researcher_only,
    shared_or_404,
    signed_in_or_login,
)
from service.api.web_pages import home_page, patient_page, research_page
from service.api.web_session import APP_PATH, must_enrol
from service.db.diary import add_entry, parse_kind, remove_entry
from service.db.models import AccountRole, Alert, DiaryEntry, Episode, Patient
from service.db.research_register import change_consent
from service.episodes.labels import parse_label, set_label
from service.patient_export import read_patient_records, zip_patient_export

router = APIRouter(prefix=APP_PATH, tags=["app"])


@router.get("", response_class=HTMLResponse)
def home(request: Request, manager: AlertManagerDep, view_log: ViewLogDep) -> Response:
    """The patients the account may see (a researcher's home is the research page)."""
    with manager.db.session() as session:
        account = signed_in_or_login(request, session, manager)
        if account.role == AccountRole.RESEARCHER:
            return redirect_to(f"{APP_PATH}/research")
        views = visible_views(session, account, manager.clock())
        view_log.viewed(session, account, [v.id for v in views], manager.clock(), via="app")
        unreached = [
            own.patient_name
            for own in own_channels(session, account)
            if not own.urls and account.role == AccountRole.CAREGIVER
        ]
        return home_page(
            account, views, manager.clock(), page_token(request, manager), unreached=unreached
        )


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient(
    patient_id: str,
    request: Request,
    manager: AlertManagerDep,
    store: SampleStoreDep,
    view_log: ViewLogDep,
    span: str | None = None,
) -> Response:
    """One patient's page, if the account may see them: its chart read after the database.

    ``span``: how far back the chart looks (``6h`` by default, ``24h``, ``7d``).
    """
    try:
        shown = chart_span(span)
    except ConfigError as exc:
        return message_page("No such chart", f"{exc}.", 422)
    with manager.db.session() as session:
        account = signed_in_or_login(request, session, manager)
        shared_or_404(session, account, patient_id)
        view = load_patient_view(session, session.get_one(Patient, patient_id), manager.clock())
        view_log.viewed(session, account, [patient_id], manager.clock(), via="app")
    now_s = manager.clock()
    chart = (
        vitals_chart(
            recent_vitals(store, patient_id, int(now_s * 1000), shown),
            view.episodes,
            view.timezone,
            now_s,
            view.diary,
        )
        if store is not None
        else ""
    )
    token = page_token(request, manager)
    invites = invites_open(request)
    return patient_page(account, view, now_s, token, chart=chart, span=shown, invites=invites)


@router.get("/patients/{patient_id}/episodes/{episode_id}", response_class=HTMLResponse)
def episode(
    patient_id: str,
    episode_id: int,
    request: Request,
    manager: AlertManagerDep,
    store: SampleStoreDep,
    view_log: ViewLogDep,
) -> Response:
    """One episode: the readings around it, what the service did, and its label."""
    with manager.db.session() as session:
        account = signed_in_or_login(request, session, manager)
        shared_or_404(session, account, patient_id)
        found = load_episode_view(
            session, session.get_one(Patient, patient_id), episode_id, manager.clock()
        )
        if found is None:
            return message_page("No such episode", "There is no such episode.", 404)
        view_log.viewed(session, account, [patient_id], manager.clock(), via="app")
    now_s = manager.clock()
    chart = ""
    if store is not None:
        series = vitals_between(
            store, patient_id, found.chart_start_s, found.chart_end_s, found.timezone
        )
        chart = vitals_chart(series, [found.episode], found.timezone, now_s, found.diary)
    return episode_page(account, found, now_s, page_token(request, manager), chart)


@router.post("/patients/{patient_id}/episodes/{episode_id}/label", response_class=HTMLResponse)
async def label(
    patient_id: str, episode_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Say whether an episode was a real reaction (what the detectors learn from)."""
    form = await posted_form(request, manager, "Not labelled")
    with manager.db.session() as session:
        account = acting_on(request, session, manager, patient_id, session.get(Episode, episode_id))
        try:
            answer = parse_label(form.get("label", ""))
            by = care_team_name(session, account, patient_id)
            set_label(session, episode_id, answer, by, manager.clock(), via="web")
        except ConfigError as exc:
            return message_page("Not labelled", str(exc), 422)
    back = f"/episodes/{episode_id}" if form.get("back") == "episode" else ""
    return redirect_to(f"{APP_PATH}/patients/{patient_id}{back}")


@router.post("/patients/{patient_id}/alerts/{alert_id}/{action}", response_class=HTMLResponse)
async def act_on_alert(
    patient_id: str, alert_id: int, action: str, request: Request, manager: AlertManagerDep
) -> Response:
    """A caregiver acknowledges an alert (``ack``); the patient cancels their own (``cancel``).

    Either ends a call for help (``end``): it is over, all clear to whoever was told.
    """
    await posted_form(request, manager, "Not done")
    with manager.db.session() as session:
        alert = session.get(Alert, alert_id)
        account = acting_on(request, session, manager, patient_id, alert)
        allowed = {AccountRole.CAREGIVER: ("ack", "end"), AccountRole.PATIENT: ("cancel", "end")}
        help_only = action == "end" and (alert is None or alert.kind != HELP)
        if action not in allowed.get(AccountRole(account.role), ()) or help_only:
            return message_page("Not done", "Your account cannot do that here.", 403)
        by = care_team_name(session, account, patient_id)
    try:
        if action == "ack":
            manager.acknowledge(alert_id, by=by, via="web")
        elif action == "end":
            end_help(manager, patient_id, alert_id, by=by, via="web")
        else:
            manager.cancel(alert_id, via="web")
    except CancelNotAllowedError:
        return message_page(
            "Too late to cancel",
            "Your caregivers have already been told: call or message them to tell them you are OK.",
            409,
        )
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/help", response_class=HTMLResponse)
async def ask_for_help(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """The patient's own "I need help now": a critical alert to their whole care team."""
    await posted_form(request, manager, "Not sent")
    with manager.db.session() as session:
        account = own_record(
            request, session, manager, patient_id, "Not sent", before_enrolment=True
        )
        by = care_team_name(session, account, patient_id)
        shown_after = not must_enrol(request, account)  # else their page is the account page
    request_help(manager, patient_id, by=by, via="web")
    if shown_after:
        return redirect_to(f"{APP_PATH}/patients/{patient_id}")
    return message_page(
        "Your caregivers are being alerted",
        "Your care team is being alerted now, with your emergency plan.",
        200,
    )


@router.get("/patients/{patient_id}/my-data.zip")
async def my_data(
    patient_id: str, request: Request, manager: AlertManagerDep, store: SampleStoreDep
) -> Response:
    """A patient's copy of everything the service holds about them (as `admin patient export`)."""
    with manager.db.session() as session:
        account = own_record(request, session, manager, patient_id, "Not here")
        if store is None:
            return message_page("Not here", "This service keeps no readings to copy.", 404)
        records = read_patient_records(session, patient_id)
        record(
            session,
            manager.clock(),
            "patient_data_downloaded",
            patient_id=patient_id,
            username=account.username,
            via="app",
        )
    # months of readings take a while to read and pack: outside the transaction, in a thread
    scratch = Path(tempfile.mkdtemp(prefix="flarewatch-download-"))
    zip_path = scratch / "flarewatch-data.zip"
    try:
        await run_in_threadpool(zip_patient_export, records, store, patient_id, zip_path)
    except Exception:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(
        zip_path,
        media_type="application/zip",
        filename="flarewatch-data.zip",
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )


@router.post("/patients/{patient_id}/research", response_class=HTMLResponse)
async def research_consent(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """The patient gives or withdraws their research consent themselves."""
    form = await posted_form(request, manager, "Not changed")
    with manager.db.session() as session:
        own_record(request, session, manager, patient_id, "Not changed")
        if form.get("consent") not in ("yes", "no"):
            return message_page("Not changed", "The answer is yes or no.", 422)
        patient = session.get_one(Patient, patient_id)
        recalled = change_consent(session, patient, form["consent"] == "yes", manager.clock())
    if recalled:
        return message_page(
            "You no longer share with researchers",
            f"Nothing more goes to researchers. {len(recalled)} research export(s) made before "
            "held your pseudonymised episodes: the administrator sees them, to ask their "
            "recipients to delete your part.",
            200,
        )
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/band-reminder", response_class=HTMLResponse)
async def band_reminder(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """The patient chooses when they are reminded of a band they took off (or never)."""
    form = await posted_form(request, manager, "Not changed")
    with manager.db.session() as session:
        account = own_record(request, session, manager, patient_id, "Not changed")
        delay_s = next((s for s in REMINDER_CHOICES if str(s) == form.get("after")), None)
        notice_s = next((s for s in NOTICE_CHOICES if str(s) == form.get("notice")), None)
        if delay_s is None or notice_s is None:
            return message_page("Not changed", "Choose from the lists.", 422)
        patient = session.get_one(Patient, patient_id)
        by = care_team_name(session, account, patient_id)
        set_off_reminder(session, patient, delay_s, notice_s, manager.clock(), by=by, via="web")
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/diary", response_class=HTMLResponse)
async def add_to_diary(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """Note what happened, at a time on the patient's clock."""
    form = await posted_form(request, manager, "Not added")
    with manager.db.session() as session:
        by = named_on_team(request, session, manager, patient_id)
        patient = session.get_one(Patient, patient_id)
        try:
            time_s = _local_time(form.get("when", ""), patient.timezone)
            kind = parse_kind(form.get("kind", ""))
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
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/diary/{entry_id}/remove", response_class=HTMLResponse)
async def remove_from_diary(
    patient_id: str, entry_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Take an entry out of the diary (one written by mistake)."""
    await posted_form(request, manager, "Not removed")
    with manager.db.session() as session:
        account = acting_on(
            request, session, manager, patient_id, session.get(DiaryEntry, entry_id)
        )
        by = care_team_name(session, account, patient_id)
        remove_entry(session, patient_id, entry_id, by, manager.clock(), via="web")
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


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
        account = researcher_only(request, session, manager)
        episodes = research_episodes(session, manager.secret_key)
        return research_page(account, episodes, page_token(request, manager))


@router.get("/research/episodes.csv")
def research_download(request: Request, manager: AlertManagerDep) -> Response:
    """The research page's episodes as CSV."""
    with manager.db.session() as session:
        account = researcher_only(request, session, manager)
        episodes = research_episodes(session, manager.secret_key)
        note_research_read(session, account, episodes, manager.clock(), via="app")
        text = research_csv(episodes)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="flarewatch-episodes.csv"'},
    )
