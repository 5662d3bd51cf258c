"""One's own channels from the account page: the test message, adding one, taking one off.

A caregiver's channels for each patient, a patient's own for the messages about their band
(:mod:`service.accounts.own_channels`); what may be added is what the operator offers
(:class:`~service.alerts.channel_changes.ChannelOffer`). Sending takes seconds per channel (a
slow SMTP server, a timeout), so the test goes out after the database transaction, and one a
minute per account.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from flarewatch.errors import ConfigError
from service.accounts.own_channels import (
    own_channels,
    own_contacts,
    owner_words,
    record_checks,
    send_checks,
)
from service.accounts.team_notices import send_notice, team_notice
from service.accounts.throttle import WindowLimit
from service.alerts.channel_changes import (
    ChannelKind,
    ChannelOffer,
    add_channel,
    own_patient_contact,
    remove_channel,
)
from service.alerts.notifier import Notifier
from service.alerts.own_servers import own_part
from service.api.channel_pages import channel_added_page, checks_page
from service.api.deps import AlertManagerDep
from service.api.pages import message_page
from service.api.routes.web_account import own_page
from service.api.web_guards import (
    own_account,
    page_token,
    posted_form,
    redirect_to,
    signed_in_or_login,
)
from service.api.web_session import APP_PATH
from service.db.models import Account, AccountRole, Channel, Contact, Role

router = APIRouter(prefix=APP_PATH, tags=["app"])


@router.post("/account/test-message", response_class=HTMLResponse)
async def send_test_message(request: Request, manager: AlertManagerDep) -> Response:
    """A test message through each of one's channels (a caregiver's, a patient's own)."""
    await posted_form(request, manager, "Not sent")
    notifier: Notifier | None = request.app.state.notifier
    limit: WindowLimit = request.app.state.channel_checks
    with manager.db.session() as session:
        found = signed_in_or_login(request, session, manager)
        if found.role == AccountRole.RESEARCHER or notifier is None:
            return message_page("Not sent", "Test messages are for care teams' channels.", 404)
        channels = own_channels(session, found)
        if not any(own.urls for own in channels):
            return message_page("Not sent", "You have no channel to test yet.", 404)
        wait_s = limit.wait_s(str(found.id), manager.clock())
        if wait_s > 0:
            said = f"You sent one less than a minute ago: try again in {math.ceil(wait_s)} s."
            return own_page(request, session, manager, found, said, 429)
        limit.count(str(found.id), manager.clock())
        account_id = found.id
    # seconds per channel (a slow SMTP server, a timeout): outside the database transaction
    outcomes = await run_in_threadpool(send_checks, notifier, channels)
    with manager.db.session() as session:
        found = session.get_one(Account, account_id)
        record_checks(session, found, channels, outcomes, manager.clock())
        return checks_page(found, page_token(request, manager), outcomes)


@router.post("/account/channels", response_class=HTMLResponse)
async def add_own_channel(request: Request, manager: AlertManagerDep) -> Response:
    """Add a channel of a kind the service offers, for one care team or all of them."""
    form = await posted_form(request, manager, "Not added")
    notifier: Notifier | None = request.app.state.notifier
    offer: ChannelOffer | None = request.app.state.channel_offer
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        if offer is None or notifier is None or found.role == AccountRole.RESEARCHER:
            return message_page("Not added", "Channels are for care teams.", 404)
        try:
            kind = ChannelKind(form.get("kind", ""))
            url = offer.channel_url(kind, form.get("value", ""), notifier)
            with session.begin_nested():  # to all of them or none
                contacts = _chosen_contacts(session, found, form.get("for", "all"), manager.clock())
                joining = [c for c in contacts if not c.live_channels and c.role != Role.PATIENT]
                for contact in contacts:
                    add_channel(
                        session, contact, url, manager.clock(), by=found.username, via="web"
                    )
        except (ConfigError, ValueError) as exc:  # ValueError: not a kind
            return own_page(request, session, manager, found, f"Not added: {exc}.", 422)
        except LookupError:
            return message_page("Not added", "You are on no such care team.", 404)
        # their first channel: the patient learns that their alerts reach them now
        notices = [
            team_notice(session, c.patient, f"{c.name} joined your care team.") for c in joining
        ]
        topic = own_part(url)
        server = offer.servers.ntfy_server
        added = channel_added_page(
            found,
            page_token(request, manager),
            owner_words(notifier, url),
            sorted(c.patient.display_name or c.patient_id for c in contacts),
            (server, topic[1]) if kind is ChannelKind.NTFY and topic and server else None,
        )
    for notice in notices:  # after the commit
        await run_in_threadpool(send_notice, notifier, notice)
    return added


def _chosen_contacts(
    session: Session, account: Account, chosen: str, now_s: float
) -> list[Contact]:
    """The account's contacts the new channel is for ("all", or one contact id).

    A patient without a channel of their own gets their first contact here. Raises
    :class:`LookupError` for a contact that is not theirs.
    """
    contacts = own_contacts(session, account)
    if not contacts and account.role == AccountRole.PATIENT and account.patient_id:
        name = account.display_name or account.username
        return [own_patient_contact(session, account.patient_id, name, now_s)]
    if chosen != "all":
        contacts = [c for c in contacts if str(c.id) == chosen]
    if not contacts:
        raise LookupError(chosen)
    return contacts


@router.post("/account/channels/{channel_id}/remove", response_class=HTMLResponse)
async def remove_own_channel(
    channel_id: int, request: Request, manager: AlertManagerDep
) -> Response:
    """Take one of one's channels off; messages waiting for it go on to the next channel."""
    await posted_form(request, manager, "Not taken off")
    with manager.transaction() as txn:
        found = own_account(request, txn.session, manager)
        channel = txn.session.get(Channel, channel_id)
        mine = {c.id: c for c in own_contacts(txn.session, found)}
        if channel is None or channel.removed_s is not None or channel.contact_id not in mine:
            return message_page("Not taken off", "You have no such channel.", 404)
        try:
            remove_channel(txn, mine[channel.contact_id], channel, by=found.username, via="web")
        except ConfigError as exc:
            return own_page(request, txn.session, manager, found, f"Not taken off: {exc}.", 409)
    return redirect_to(f"{APP_PATH}/account")
