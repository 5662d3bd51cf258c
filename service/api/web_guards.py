"""Guards of the web app's routes: signed in, allowed to see the patient, a form of this page.

Each returns what the route needs or raises :class:`EarlyAnswer` with the answer to give instead
(the sign-in form, 404, 403), so a route reads as its work alone.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from service.accounts.access import care_team_name, visible_patient
from service.alerts.manager import AlertManager
from service.api.pages import message_page
from service.api.web_session import (
    APP_PATH,
    account_of,
    form_allowed,
    form_token,
    must_enrol,
    read_form,
    session_token,
)
from service.db.models import Account, AccountRole, Alert, DiaryEntry, Episode

NOT_FOUND_TEXT = "There is no such patient, or it is not shared with your account."
FORM_REFUSED_TEXT = (
    "This form is out of date or came from another site: nothing was done. Reload it."
)
_RESEARCHERS_ONLY = "This page is for researchers."


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


def redirect_to(path: str) -> RedirectResponse:
    """See other: the browser loads ``path`` with a GET."""
    return RedirectResponse(path, status_code=303)


def signed_in_or_login(request: Request, session: Session, manager: AlertManager) -> Account:
    """The account signed in on this browser; else the browser goes to the sign-in form.

    An account that must turn on two-step sign-in first goes to its account page instead.
    """
    account = own_account(request, session, manager)
    if must_enrol(request, account):
        raise EarlyAnswer(redirect_to(f"{APP_PATH}/account"))
    return account


def own_account(request: Request, session: Session, manager: AlertManager) -> Account:
    """The account signed in on this browser, for its own page (else the sign-in form)."""
    account = account_of(request, session, manager)
    if account is None:
        raise EarlyAnswer(redirect_to(f"{APP_PATH}/login"))
    return account


def shared_or_404(session: Session, account: Account, patient_id: str) -> None:
    """404 unless ``account`` sees the patient."""
    if visible_patient(session, account, patient_id) is None:
        raise EarlyAnswer(message_page("Not found", NOT_FOUND_TEXT, 404))


def named_on_team(
    request: Request, session: Session, manager: AlertManager, patient_id: str
) -> str:
    """The signed-in account's name on a patient's care team (the patient's own name for them).

    The early answer (sign in first, 404) if it does not see the patient.
    """
    account = signed_in_or_login(request, session, manager)
    shared_or_404(session, account, patient_id)
    return care_team_name(session, account, patient_id)


def of_patient_or_404(row: Episode | Alert | DiaryEntry | None, patient_id: str) -> None:
    """404 unless ``row`` exists and is about ``patient_id`` (an id taken from another's page)."""
    if row is None or row.patient_id != patient_id:
        raise EarlyAnswer(message_page("Not found", NOT_FOUND_TEXT, 404))


def acting_on(
    request: Request,
    session: Session,
    manager: AlertManager,
    patient_id: str,
    row: Episode | Alert | DiaryEntry | None,
) -> Account:
    """The signed-in account acting on ``row`` of a patient it sees (else the early answer)."""
    account = signed_in_or_login(request, session, manager)
    shared_or_404(session, account, patient_id)
    of_patient_or_404(row, patient_id)
    return account


def own_record(
    request: Request,
    session: Session,
    manager: AlertManager,
    patient_id: str,
    title: str,
    *,
    before_enrolment: bool = False,
) -> Account:
    """The signed-in patient acting on their own record (404 unseen, 403 to any other role).

    ``before_enrolment``: also a patient who must still turn on two-step sign-in (a call for
    help is never held back by a policy on signing in).
    """
    account = (
        own_account(request, session, manager)
        if before_enrolment
        else signed_in_or_login(request, session, manager)
    )
    shared_or_404(session, account, patient_id)
    if account.role != AccountRole.PATIENT:
        said = "Only the patient does this, on their own page."
        raise EarlyAnswer(message_page(title, said, 403))
    return account


def researcher_only(request: Request, session: Session, manager: AlertManager) -> Account:
    """The signed-in researcher (404 to any other role)."""
    account = signed_in_or_login(request, session, manager)
    if account.role != AccountRole.RESEARCHER:
        raise EarlyAnswer(message_page("Not found", _RESEARCHERS_ONLY, 404))
    return account


async def posted_form(request: Request, manager: AlertManager, title: str) -> dict[str, str]:
    """The posted form, if it is this session's from this site (else 403, nothing done)."""
    form = await read_form(request)
    if not form_allowed(request, form, manager):
        raise EarlyAnswer(message_page(title, FORM_REFUSED_TEXT, 403))
    return form


def page_token(request: Request, manager: AlertManager) -> str:
    """The form token of this browser's session, for the page's forms."""
    return form_token(manager, session_token(request))
