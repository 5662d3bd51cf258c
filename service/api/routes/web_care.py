"""The patient's care settings in the web app: the emergency plan, the team's order, quiet hours.

The patient and each of their caregivers may change them (a page about a patient the account
may not see answers 404, :mod:`service.accounts.access`); every change is audited with their
name on the care team and ``via`` ``web``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from flarewatch.errors import ConfigError
from service.alerts.drill_schedule import schedule_drills
from service.alerts.drills import start_drill
from service.alerts.errors import AlertingError
from service.alerts.manager import AlertManager
from service.api.care_pages import plan_conflict_page
from service.api.deps import AlertManagerDep
from service.api.pages import message_page
from service.api.web_guards import (
    named_on_team,
    page_token,
    posted_form,
    redirect_to,
)
from service.api.web_session import APP_PATH
from service.db.care_teams import move_up, set_quiet_hours
from service.db.emergency_plan import PlanConflict, change_plan
from service.db.models import Patient

router = APIRouter(prefix=APP_PATH, tags=["app"])


@router.post("/patients/{patient_id}/plan", response_class=HTMLResponse)
async def change_emergency_plan(
    patient_id: str, request: Request, manager: AlertManagerDep
) -> Response:
    """The patient or a caregiver of theirs changes the emergency plan every alert tells first."""
    form = await posted_form(request, manager, "Not changed")
    with manager.db.session() as session:
        by = named_on_team(request, session, manager, patient_id)
        patient = session.get_one(Patient, patient_id)
        try:
            change_plan(
                session,
                patient,
                form.get("plan", ""),
                was=form.get("was", ""),
                by=by,
                now_s=manager.clock(),
                via="web",
            )
        except PlanConflict:
            yours, token = form.get("plan", ""), page_token(request, manager)
            return plan_conflict_page(patient_id, patient.emergency_plan, yours, token)
        except ConfigError as exc:
            return message_page("Not changed", f"The plan was not changed: {exc}.", 422)
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/team/{contact_id}/up", response_class=HTMLResponse)
async def move_caregiver_up(
    patient_id: str, contact_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Put a caregiver one place earlier in the order alerts reach the care team."""
    await posted_form(request, manager, "Not changed")
    with manager.db.session() as session:
        by = named_on_team(request, session, manager, patient_id)
        try:
            move_up(session, patient_id, contact_id, manager.clock(), by=by, via="web")
        except ConfigError as exc:
            return message_page("Not changed", f"The order was not changed: {exc}.", 422)
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/quiet-hours", response_class=HTMLResponse)
async def change_quiet_hours(
    patient_id: str, request: Request, manager: AlertManagerDep
) -> Response:
    """Set when warnings wait (critical alerts never do), on the patient's clock."""
    form = await posted_form(request, manager, "Not changed")
    quiet = f"{form.get('start', '').strip()[:8]}-{form.get('end', '').strip()[:8]}"
    return _set_quiet_hours(request, manager, patient_id, quiet)


@router.post("/patients/{patient_id}/quiet-hours/off", response_class=HTMLResponse)
async def no_quiet_hours(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """No quiet hours: warnings reach the care team at any time."""
    await posted_form(request, manager, "Not changed")
    return _set_quiet_hours(request, manager, patient_id, "")


def _set_quiet_hours(
    request: Request, manager: AlertManager, patient_id: str, quiet: str
) -> Response:
    with manager.db.session() as session:
        by = named_on_team(request, session, manager, patient_id)
        patient = session.get_one(Patient, patient_id)
        try:
            set_quiet_hours(session, patient, quiet, manager.clock(), by=by, via="web")
        except (ConfigError, AlertingError) as exc:  # a time that is none: AlertingError
            return message_page("Not changed", f"The quiet hours were not changed: {exc}.", 422)
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/drill", response_class=HTMLResponse)
async def drill(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """Start a drill: a practice alert to the whole care team (service.alerts.drills)."""
    await posted_form(request, manager, "Not started")
    with manager.db.session() as session:
        by = named_on_team(request, session, manager, patient_id)
    try:
        start_drill(manager, patient_id, by=by, via="web")
    except ConfigError as exc:
        return message_page("Not started", f"No drill was started: {exc}.", 409)
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/patients/{patient_id}/drill/schedule", response_class=HTMLResponse)
async def drill_schedule(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """Drills every so many days at a time on the patient's clock, or only when started."""
    form = await posted_form(request, manager, "Not changed")
    every, at = form.get("every", "").strip()[:8], form.get("at", "").strip()[:8]
    with manager.db.session() as session:
        by = named_on_team(request, session, manager, patient_id)
        patient = session.get_one(Patient, patient_id)
        try:
            days = int(every) if every else None
        except ValueError:
            return message_page("Not changed", "Choose how often drills come.", 422)
        try:
            schedule_drills(session, patient, days, at, manager.clock(), by=by, via="web")
        except ConfigError as exc:
            return message_page("Not changed", f"The drills were not changed: {exc}.", 422)
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")
