"""The web app's JSON API: what the signed-in account may see, for scripts and other front ends.

The same session cookie and the same rules as the pages (:mod:`service.accounts.access`): 401
without a session, 404 for a patient not shared with the account, as for one that does not
exist. Read-only: labelling goes through the pages' forms, which carry their session's token.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.accounts.access import visible_patient, visible_patient_ids
from service.accounts.episode_view import EpisodeView, load_episode_view
from service.accounts.patient_view import PatientView, load_patient_view, visible_views
from service.accounts.research_view import (
    ResearchEpisode,
    note_research_read,
    research_episodes,
)
from service.accounts.vitals import DEFAULT_SPAN, chart_span, recent_vitals
from service.alerts.manager import AlertManager
from service.api.deps import AlertManagerDep, SampleStoreDep, ViewLogDep
from service.api.web_session import account_of, must_enrol
from service.db.models import Account, AccountRole

router = APIRouter(tags=["app"])

_SIGNED_OUT = (
    "sign in first: POST /app/login (username, password, and code with two-step sign-in), then "
    "send the session cookie"
)

_ENROL_FIRST = "your account must turn on two-step sign-in first: /app/account in the web app"


class AccountPublic(BaseModel):
    """The signed-in account: who, which role, whom it sees (no password, no session)."""

    username: str
    display_name: str
    role: str
    patients: list[str]


def _signed_in(request: Request, manager: AlertManager, session: Session) -> Account:
    """The session's account, or 401 (403 while it must still turn on two-step sign-in)."""
    account = account_of(request, session, manager)
    if account is None:
        raise HTTPException(401, _SIGNED_OUT)
    if must_enrol(request, account):
        raise HTTPException(403, _ENROL_FIRST)
    return account


@router.get("/me")
def me(request: Request, manager: AlertManagerDep) -> AccountPublic:
    """Who is signed in on this session."""
    with manager.db.session() as session:
        account = _signed_in(request, manager, session)
        return AccountPublic(
            username=account.username,
            display_name=account.display_name,
            role=account.role,
            patients=visible_patient_ids(session, account),
        )


@router.get("/patients")
def patients(request: Request, manager: AlertManagerDep, view_log: ViewLogDep) -> list[PatientView]:
    """Every patient the account sees, with what is going on and their latest episode."""
    with manager.db.session() as session:
        account = _signed_in(request, manager, session)
        views = visible_views(session, account, manager.clock())
        view_log.viewed(session, account, [v.id for v in views], manager.clock(), via="api")
        return views


@router.get("/patients/{patient_id}")
def patient(
    patient_id: str, request: Request, manager: AlertManagerDep, view_log: ViewLogDep
) -> PatientView:
    """One patient the account sees, with their recent episodes."""
    with manager.db.session() as session:
        account = _signed_in(request, manager, session)
        found = visible_patient(session, account, patient_id)
        if found is None:
            raise HTTPException(404, "no such patient, or not shared with this account")
        view_log.viewed(session, account, [patient_id], manager.clock(), via="api")
        return load_patient_view(session, found, manager.clock())


@router.get("/patients/{patient_id}/episodes/{episode_id}")
def episode(
    patient_id: str,
    episode_id: int,
    request: Request,
    manager: AlertManagerDep,
    view_log: ViewLogDep,
) -> EpisodeView:
    """One episode of the patient: its course (who was told, who answered), the diary around it.

    Its readings: ``vitals``, or the chart of the episode's page.
    """
    with manager.db.session() as session:
        account = _signed_in(request, manager, session)
        found = visible_patient(session, account, patient_id)
        if found is None:
            raise HTTPException(404, "no such patient, or not shared with this account")
        view = load_episode_view(session, found, episode_id, manager.clock())
        if view is None:
            raise HTTPException(404, "no such episode of this patient")
        view_log.viewed(session, account, [patient_id], manager.clock(), via="api")
        return view


class VitalsPublic(BaseModel):
    """A patient's vitals over a span, as the page's chart draws them (epoch seconds, UTC)."""

    span: str
    start_s: float
    end_s: float
    step_s: float
    """Each point is the mean of the readings in the ``step_s`` from its time."""
    heart_rate_bpm: list[tuple[float, float]]
    skin_temperature_c: list[tuple[float, float]]


@router.get("/patients/{patient_id}/vitals")
def vitals(
    patient_id: str,
    request: Request,
    manager: AlertManagerDep,
    store: SampleStoreDep,
    view_log: ViewLogDep,
    span: str = DEFAULT_SPAN.name,
) -> VitalsPublic:
    """The patient's heart rate and skin temperature over ``span`` (``6h``, ``24h``, ``7d``)."""
    try:
        shown = chart_span(span)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    with manager.db.session() as session:
        account = _signed_in(request, manager, session)
        if visible_patient(session, account, patient_id) is None:
            raise HTTPException(404, "no such patient, or not shared with this account")
        view_log.viewed(session, account, [patient_id], manager.clock(), via="api")
    if store is None:
        raise HTTPException(503, "this service keeps no sample store to read vitals from")
    series = recent_vitals(store, patient_id, int(manager.clock() * 1000), shown)
    if series.unavailable:
        raise HTTPException(503, "the sample store did not answer: try again shortly")
    return VitalsPublic(
        span=shown.name,
        start_s=series.start_ms / 1000,
        end_s=series.end_ms / 1000,
        step_s=shown.step_ms / 1000,
        heart_rate_bpm=[(t / 1000, v) for t, v in series.heart_rate],
        skin_temperature_c=[(t / 1000, v) for t, v in series.skin_temp],
    )


@router.get("/research/episodes")
def research(request: Request, manager: AlertManagerDep) -> list[ResearchEpisode]:
    """Consenting patients' episodes, pseudonymised (researchers only)."""
    with manager.db.session() as session:
        account = _signed_in(request, manager, session)
        if account.role != AccountRole.RESEARCHER:
            raise HTTPException(404, "for researchers only")
        episodes = research_episodes(session, manager.secret_key)
        note_research_read(session, account, episodes, manager.clock(), via="api")
        return episodes
