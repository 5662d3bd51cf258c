"""The signed-in person's own account: their password and their second factor.

Every change asks for the current password first (a browser left signed in must not be enough
to take the account over); wrong ones count as wrong sign-ins. Turning the second factor on or
changing the password signs every other browser out; this one stays signed in on a new session.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.accounts.away import (
    AWAY_CHOICES,
    away_state,
    set_account_away,
    set_account_away_schedule,
)
from service.accounts.channel_health import channel_states, channel_words
from service.accounts.help_link import HELP_PATH, make_help_link, remove_help_link
from service.accounts.own_channels import (
    own_channels,
    owner_words,
)
from service.accounts.password_reset import set_email
from service.accounts.second_factor import (
    confirm_enrolment,
    enrolling_secret,
    has_second_factor,
    provisioning_uri,
    recovery_codes_left,
    renew_recovery_codes,
    start_enrolment,
    turn_off,
)
from service.accounts.sign_in import (
    check_password,
    open_session,
    sign_out_others,
    signed_in_browsers,
    take_code,
)
from service.alerts.absence import away_length_s
from service.alerts.away_schedule import AwaySchedule
from service.alerts.channel_changes import (
    ChannelOffer,
)
from service.alerts.manager import AlertManager
from service.alerts.notifier import Notifier
from service.api.account_pages import (
    SECOND_FACTOR_PATH,
    account_page,
    enrolment_page,
    help_link_page,
    recovery_codes_page,
)
from service.api.channel_pages import (
    ChannelForms,
    ChannelLine,
    Route,
)
from service.api.deps import AlertManagerDep
from service.api.pages import message_page
from service.api.web_guards import (
    own_account,
    page_token,
    posted_form,
    redirect_to,
    signed_in_or_login,
)
from service.api.web_session import (
    APP_PATH,
    form_token,
    second_factor_required,
    session_token,
    set_session_cookie,
)
from service.db.accounts import set_password
from service.db.models import Account, AccountRole

router = APIRouter(prefix=APP_PATH, tags=["app"])

_WRONG_PASSWORD = (
    "That is not your password now: nothing was changed (wrong tries count as wrong sign-ins)."
)


def own_page(
    request: Request,
    session: Session,
    manager: AlertManager,
    account: Account,
    said: str | None = None,
    status: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    """The account page, saying ``said`` (why not) or ``done``, with the ``status`` given."""
    codes_left = recovery_codes_left(session, account) if has_second_factor(account) else None
    token = page_token(request, manager)
    required = second_factor_required(request, account)
    notifier: Notifier | None = request.app.state.notifier
    routes = (
        _alert_routes(session, account, notifier, manager.clock())
        if notifier is not None and account.role != AccountRole.RESEARCHER
        else None
    )
    offer: ChannelOffer | None = request.app.state.channel_offer
    return account_page(
        account,
        token,
        codes_left,
        required=required,
        alert_routes=routes,
        channel_forms=(
            ChannelForms(offer.kinds, account.email or "")
            if offer is not None and routes is not None
            else None
        ),
        mail=request.app.state.mail_url is not None,
        browsers=signed_in_browsers(session, account, manager.clock()),
        has_help_link=(
            account.help_link_hash is not None if account.role == AccountRole.PATIENT else None
        ),
        away=(
            away_state(account, manager.clock()) if account.role == AccountRole.CAREGIVER else None
        ),
        said=said,
        done=done,
        status=status,
    )


def _alert_routes(
    session: Session, account: Account, notifier: Notifier, now_s: float
) -> list[Route]:
    """Each patient's channels to the account, in its owner's words, and their last message."""
    owned = own_channels(session, account)
    states = channel_states(session, [own.contact_id for own in owned], now_s)
    return [
        Route(
            own.patient_name,
            own.contact_id,
            [
                ChannelLine(
                    channel_id,
                    owner_words(notifier, url),
                    channel_words(states.get(channel_id), now_s, own.timezone),
                )
                for url, channel_id in zip(own.urls, own.channel_ids, strict=True)
            ],
        )
        for own in owned
    ]


def _password_refused(
    request: Request, session: Session, manager: AlertManager, form: dict[str, str], field: str
) -> tuple[Account, HTMLResponse | None]:
    """The signed-in account, and unless ``form[field]`` is its password, its page saying no.

    The refusal (403) is returned, not raised, so that the wrong try is counted and kept.
    """
    account = own_account(request, session, manager)
    if check_password(session, account, form.get(field, ""), manager.clock()):
        return account, None
    return account, own_page(request, session, manager, account, _WRONG_PASSWORD, 403)


def _new_session(session: Session, account: Account, manager: AlertManager) -> Response:
    """Home, on a new session for this browser (every session of the account was ended)."""
    signed = open_session(session, account, manager.clock())
    response = redirect_to(APP_PATH)
    set_session_cookie(response, signed.token, manager)
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, manager: AlertManagerDep) -> Response:
    """The account's own page."""
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        return own_page(request, session, manager, found)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, manager: AlertManagerDep) -> Response:
    """Set a new password: this browser stays signed in, every other one is signed out."""
    form = await posted_form(request, manager, "Not changed")
    with manager.db.session() as session:
        found, refused = _password_refused(request, session, manager, form, "current")
        if refused is not None:
            return refused
        if form.get("new", "") != form.get("again"):
            said = "The two new passwords differ: nothing was changed."
            return own_page(request, session, manager, found, said, 422)
        try:
            set_password(session, found, form.get("new", ""), manager.clock())
        except ConfigError as exc:
            return own_page(request, session, manager, found, f"Not changed: {exc}.", 422)
        return _new_session(session, found, manager)


@router.post("/account/second-factor/start", response_class=HTMLResponse)
async def start_second_factor(request: Request, manager: AlertManagerDep) -> Response:
    """A new secret to enrol (after the password), shown on the enrolment page."""
    form = await posted_form(request, manager, "Not started")
    with manager.db.session() as session:
        found, refused = _password_refused(request, session, manager, form, "sf-password")
        if refused is not None:
            return refused
        if has_second_factor(found):
            return redirect_to(f"{APP_PATH}/account")
        start_enrolment(session, found)
    return redirect_to(SECOND_FACTOR_PATH)


@router.get("/account/second-factor", response_class=HTMLResponse)
def second_factor_enrolment(request: Request, manager: AlertManagerDep) -> Response:
    """The secret being enrolled, as a QR code and text (none under way: the account page)."""
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        secret = enrolling_secret(session, found)
        if secret is None:
            return redirect_to(f"{APP_PATH}/account")
        token = page_token(request, manager)
        return enrolment_page(found, token, secret, provisioning_uri(secret, found))


@router.post("/account/second-factor/confirm", response_class=HTMLResponse)
async def confirm_second_factor(request: Request, manager: AlertManagerDep) -> Response:
    """The first code from the new secret turns the factor on: its recovery codes, once."""
    form = await posted_form(request, manager, "Not turned on")
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        secret = enrolling_secret(session, found)
        if secret is None:
            return redirect_to(f"{APP_PATH}/account")
        codes = confirm_enrolment(session, found, form.get("code", "")[:64], manager.clock())
        if codes is None:
            said = (
                "That is not the code the app shows now: nothing was changed. Check that the "
                "phone's clock is right, and type the code shown now."
            )
            token = page_token(request, manager)
            uri = provisioning_uri(secret, found)
            return enrolment_page(found, token, secret, uri, said=said, status=422)
        signed = open_session(session, found, manager.clock())
        page = recovery_codes_page(found, form_token(manager, signed.token), codes)
        set_session_cookie(page, signed.token, manager)
        return page


@router.post("/account/second-factor/codes", response_class=HTMLResponse)
async def new_recovery_codes(request: Request, manager: AlertManagerDep) -> Response:
    """Replace the recovery codes (after the password): the new ones, once."""
    form = await posted_form(request, manager, "No new codes")
    with manager.db.session() as session:
        found, refused = _password_refused(request, session, manager, form, "codes-password")
        if refused is not None:
            return refused
        if not has_second_factor(found):
            return redirect_to(f"{APP_PATH}/account")
        codes = renew_recovery_codes(session, found, manager.clock())
        return recovery_codes_page(found, page_token(request, manager), codes)


@router.post("/account/second-factor/off", response_class=HTMLResponse)
async def second_factor_off(request: Request, manager: AlertManagerDep) -> Response:
    """Turn the factor off: the password and a current code (or a recovery code) first."""
    form = await posted_form(request, manager, "Not turned off")
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        if second_factor_required(request, found):
            said = f"Every {found.role} signs in in two steps on this service: it stays on."
            return own_page(request, session, manager, found, said, 403)
        found, refused = _password_refused(request, session, manager, form, "off-password")
        if refused is not None:
            return refused
        if not take_code(session, found, form.get("code", "")[:64], manager.clock()):
            said = "That code is not right: two-step sign-in is still on."
            return own_page(request, session, manager, found, said, 403)
        turn_off(session, found, manager.clock(), by_admin=False)
    return redirect_to(f"{APP_PATH}/account")


@router.post("/account/email", response_class=HTMLResponse)
async def change_email(request: Request, manager: AlertManagerDep) -> Response:
    """Set (or, empty, clear) the address links to set a new password go to."""
    form = await posted_form(request, manager, "Not changed")
    with manager.db.session() as session:
        found, refused = _password_refused(request, session, manager, form, "email-password")
        if refused is not None:
            return refused
        address = form.get("email", "").strip()
        try:
            set_email(session, found, address or None, manager.clock())
        except ConfigError as exc:
            return own_page(request, session, manager, found, f"Not changed: {exc}.", 422)
    return redirect_to(f"{APP_PATH}/account")


@router.post("/account/sign-out-others", response_class=HTMLResponse)
async def sign_out_elsewhere(request: Request, manager: AlertManagerDep) -> Response:
    """End every other session of the account (a lost phone); this browser stays signed in."""
    await posted_form(request, manager, "Not signed out")
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        ended = sign_out_others(session, found, session_token(request), manager.clock())
        done = f"Signed out of {ended} other browser{'' if ended == 1 else 's'}."
        return own_page(request, session, manager, found, done=done)


@router.post("/account/help-link", response_class=HTMLResponse)
async def new_help_link(request: Request, manager: AlertManagerDep) -> Response:
    """A patient's new help link (after the password), shown once; the old one stops working."""
    form = await posted_form(request, manager, "Not made")
    with manager.db.session() as session:
        found, refused = _password_refused(request, session, manager, form, "link-password")
        if refused is not None:
            return refused
        if found.role != AccountRole.PATIENT:
            return message_page("Not made", "Help links are for patients.", 404)
        token = make_help_link(session, found, manager.clock())
        link = f"{manager.public_base_url}{HELP_PATH}/{token}"
        return help_link_page(found, page_token(request, manager), link)


@router.post("/account/help-link/remove", response_class=HTMLResponse)
async def drop_help_link(request: Request, manager: AlertManagerDep) -> Response:
    """The patient's help link stops working."""
    await posted_form(request, manager, "Not removed")
    with manager.db.session() as session:
        found = own_account(request, session, manager)
        remove_help_link(session, found, manager.clock())
        return own_page(request, session, manager, found, done="Your help link is removed.")


@router.post("/account/away", response_class=HTMLResponse)
async def go_away(request: Request, manager: AlertManagerDep) -> Response:
    """A caregiver away for one of the offered lengths, on every care team they are on."""
    form = await posted_form(request, manager, "Not changed")
    choice = form.get("for", "")
    with manager.db.session() as session:
        found = signed_in_or_login(request, session, manager)
        if found.role != AccountRole.CAREGIVER:
            return message_page("Not changed", "Only caregivers can be away.", 404)
        if choice not in AWAY_CHOICES:
            said = "Choose how long you are away from the list."
            return own_page(request, session, manager, found, said, 422)
        now_s = manager.clock()
        if not set_account_away(session, found, now_s + away_length_s(choice), now_s):
            said = "You are on no care team: no alert reaches you anyway."
            return own_page(request, session, manager, found, said, 409)
    return redirect_to(f"{APP_PATH}/account")


@router.post("/account/away/schedule", response_class=HTMLResponse)
async def away_every_week(request: Request, manager: AlertManagerDep) -> Response:
    """A caregiver away every week on some days, from a time to a time (on every care team)."""
    form = await posted_form(request, manager, "Not changed")
    days = "".join(str(day) for day in range(1, 8) if form.get(f"day{day}") == "on")
    schedule = AwaySchedule(days, form.get("from", "").strip()[:8], form.get("to", "").strip()[:8])
    return _set_away_schedule(request, manager, schedule)


@router.post("/account/away/schedule/off", response_class=HTMLResponse)
async def no_weekly_absence(request: Request, manager: AlertManagerDep) -> Response:
    """No weekly absence any more (an absence going on now keeps its end)."""
    await posted_form(request, manager, "Not changed")
    return _set_away_schedule(request, manager, None)


def _set_away_schedule(
    request: Request, manager: AlertManager, schedule: AwaySchedule | None
) -> Response:
    with manager.db.session() as session:
        found = signed_in_or_login(request, session, manager)
        if found.role != AccountRole.CAREGIVER:
            return message_page("Not changed", "Only caregivers can be away.", 404)
        try:
            teams = set_account_away_schedule(session, found, schedule, manager.clock())
        except ConfigError as exc:
            return own_page(request, session, manager, found, f"Not changed: {exc}.", 422)
        if not teams:
            said = "You are on no care team: no alert reaches you anyway."
            return own_page(request, session, manager, found, said, 409)
    return redirect_to(f"{APP_PATH}/account")


@router.post("/account/back", response_class=HTMLResponse)
async def come_back(request: Request, manager: AlertManagerDep) -> Response:
    """A caregiver back before their absence ends: first in their place on each team again."""
    await posted_form(request, manager, "Not changed")
    with manager.db.session() as session:
        found = signed_in_or_login(request, session, manager)
        if found.role != AccountRole.CAREGIVER:
            return message_page("Not changed", "Only caregivers can be away.", 404)
        set_account_away(session, found, None, manager.clock())
    return redirect_to(f"{APP_PATH}/account")
