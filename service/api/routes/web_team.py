"""Who is on a care team, changed from the app: a patient invites and takes off; a caregiver leaves.

Inviting and taking off is the patient's alone, from their page (caregivers 403, anyone else
404): it is their data the team sees. A caregiver leaves from their account page. Invitations
are open where the service mails and lets people add their own channels
(:func:`invites_open`). An invitation is mailed through the service's mail URL outside the
database transaction (a slow SMTP server must not hold the one-writer lock); if the mail fails
the page says so, without the link (it would tell a new account from an old one), and
**Remind** sends it again. Taking someone off or leaving asks once more first: it takes their
access and their place in the escalation at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from flarewatch.errors import ConfigError
from service.accounts.account_mail import (
    mail_url_to,
    password_link,
    team_added_message,
    team_invitation_message,
)
from service.accounts.own_channels import own_contacts
from service.accounts.team_invites import Invited, invite_to_team, remind
from service.accounts.team_notices import send_notice, team_notice
from service.alerts.care_team import reaches_only
from service.alerts.channel_changes import ChannelOffer
from service.alerts.manager import AlertManager
from service.alerts.notifier import Message, Notifier
from service.api.deps import AlertManagerDep
from service.api.pages import message_page
from service.api.team_pages import invited_page, leave_page, take_off_page
from service.api.web_guards import (
    EarlyAnswer,
    own_account,
    own_record,
    page_token,
    posted_form,
    redirect_to,
)
from service.api.web_session import APP_PATH
from service.db.care_teams import remove_contact
from service.db.models import AccountRole, Contact, Patient, Role

router = APIRouter(prefix=APP_PATH, tags=["app"])
_NO_INVITES = (
    "This service sends no e-mail or does not let people add their own alert channels, so "
    "someone invited could not join: the administrator puts people on your care team."
)


@router.post("/patients/{patient_id}/team/invite", response_class=HTMLResponse)
async def invite(patient_id: str, request: Request, manager: AlertManagerDep) -> Response:
    """Put someone on the patient's care team, without a channel, and tell them."""
    form = await posted_form(request, manager, "Not invited")
    with manager.db.session() as session:
        account = own_record(request, session, manager, patient_id, "Not invited")
        if not invites_open(request):
            return message_page("Not invited", _NO_INVITES, 404)
        try:
            invited = invite_to_team(
                session,
                patient_id,
                account,
                form.get("name", "")[:400],
                form.get("email", "")[:300],
                manager.clock(),
            )
        except ConfigError as exc:
            return message_page("Not invited", f"Nobody was invited: {exc}.", 422)
        telling = _telling(session, manager, patient_id, invited, again=False)
    return await _tell(request, manager, telling)


@router.post("/patients/{patient_id}/team/{contact_id}/remind", response_class=HTMLResponse)
async def remind_member(
    patient_id: str, contact_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Tell someone invited who has no channel yet again: a new link, or how to add one."""
    await posted_form(request, manager, "Not sent")
    with manager.db.session() as session:
        account = own_record(request, session, manager, patient_id, "Not sent")
        if not invites_open(request):
            return message_page("Not sent", _NO_INVITES, 404)
        contact = _member_or_404(session, patient_id, contact_id, "Not sent")
        try:
            invited = remind(session, contact, account, manager.clock())
        except ConfigError as exc:
            return message_page("Not sent", f"Nothing was sent: {exc}.", 422)
        telling = _telling(session, manager, patient_id, invited, again=True)
    return await _tell(request, manager, telling)


def _member_or_404(session: Session, patient_id: str, contact_id: int, title: str) -> Contact:
    """Someone on the patient's care team (the patient's own channels are not), else 404."""
    contact = session.get(Contact, contact_id)
    if (
        contact is None
        or contact.patient_id != patient_id
        or contact.removed_s is not None
        or contact.role == Role.PATIENT
    ):
        raise EarlyAnswer(message_page(title, "There is nobody like that on your team.", 404))
    return contact


def invites_open(request: Request) -> bool:
    """Whether patients may invite: the service mails, and the invited can add a channel."""
    offer: ChannelOffer | None = request.app.state.channel_offer
    return (
        offer is not None
        and bool(offer.kinds)
        and request.app.state.mail_url is not None
        and request.app.state.notifier is not None
    )


@dataclass(frozen=True, slots=True)
class _Telling:
    """What the person put on the team is mailed, and what the patient's page then says."""

    patient_id: str
    member: str
    address: str | None
    message: Message
    again: bool
    """A reminder of someone on the team already."""


def _telling(
    session: Session, manager: AlertManager, patient_id: str, invited: Invited, again: bool
) -> _Telling:
    patient = session.get_one(Patient, patient_id)
    name = patient.display_name or patient.id
    if invited.token is not None:
        link = password_link(manager.public_base_url, invited.token)
        message = team_invitation_message(invited.account, link, name)
    else:
        account_page = f"{manager.public_base_url}{APP_PATH}/account"
        message = team_added_message(invited.account, name, account_page)
    return _Telling(patient_id, invited.contact.name, invited.account.email, message, again)


async def _tell(request: Request, manager: AlertManager, telling: _Telling) -> Response:
    """Mail it (outside the database transaction: SMTP may be slow), then say what was done."""
    notifier: Notifier = request.app.state.notifier
    mail_url: str = request.app.state.mail_url
    mailed = telling.address is not None and (
        await run_in_threadpool(
            _mail, notifier, mail_url_to(mail_url, telling.address), telling.message
        )
    )
    with manager.db.session() as session:
        account = own_record(request, session, manager, telling.patient_id, "Not sent")
        token = page_token(request, manager)
        return invited_page(
            account, token, telling.patient_id, telling.member, mailed=mailed, again=telling.again
        )


def _mail(notifier: Notifier, url: str, message: Message) -> bool:
    try:
        return notifier.send(url, message).ok
    except Exception:  # noqa: BLE001 - the invitation stands; Remind sends it again
        return False


@router.post("/patients/{patient_id}/team/{contact_id}/remove", response_class=HTMLResponse)
async def take_off(
    patient_id: str, contact_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Take a member off the patient's care team, once the patient confirmed it."""
    form = await posted_form(request, manager, "Not taken off")
    with manager.db.session() as session:
        account = own_record(request, session, manager, patient_id, "Not taken off")
        contact = _member_or_404(session, patient_id, contact_id, "Not taken off")
        if form.get("confirm") != "yes":
            alone = reaches_only(session, contact)
            token = page_token(request, manager)
            return take_off_page(account, token, patient_id, contact, alone)
        remove_contact(session, contact_id, manager.clock(), by=account.username, via="web")
    return redirect_to(f"{APP_PATH}/patients/{patient_id}")


@router.post("/account/teams/{contact_id}/leave", response_class=HTMLResponse)
async def leave_team(contact_id: int, request: Request, manager: AlertManagerDep) -> Response:
    """A caregiver leaves a patient's care team, once they confirmed it."""
    form = await posted_form(request, manager, "Not left")
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        mine = {c.id: c for c in own_contacts(session, found)}
        contact = mine.get(contact_id)
        if contact is None or found.role != AccountRole.CAREGIVER:
            return message_page("Not left", "You are on no such care team.", 404)
        if form.get("confirm") != "yes":
            patient = contact.patient.display_name or contact.patient_id
            alone = reaches_only(session, contact)
            return leave_page(found, page_token(request, manager), contact, patient, alone)
        remove_contact(session, contact_id, manager.clock(), by=found.username, via="web")
        notice = team_notice(session, contact.patient, f"{contact.name} left your care team.")
    notifier: Notifier | None = request.app.state.notifier
    if notifier is not None:  # after the commit: the patient hears of the team as it is
        await run_in_threadpool(send_notice, notifier, notice)
    return redirect_to(f"{APP_PATH}/account")
