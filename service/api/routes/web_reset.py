"""Setting a new password from a link sent by e-mail (:mod:`service.accounts.password_reset`).

Served only when the service has a mail URL (``service.mail_url``). The request form answers
the same whatever exists, and is limited per network address
(:data:`~service.accounts.const.RESET_REQUESTS_MAX` in
:data:`~service.accounts.const.RESET_REQUESTS_WINDOW_S`); the mails go out after the answer's
transaction, in a worker thread (an SMTP server takes seconds). Like the sign-in forms these
carry no form token (no session): a post from another site is refused by its origin.
"""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from flarewatch.errors import ConfigError
from service.accounts.account_mail import mail_url_to, password_link, reset_message
from service.accounts.password_reset import (
    finish_reset,
    is_invitation,
    reset_account,
    start_resets,
)
from service.accounts.throttle import WindowLimit
from service.alerts.notifier import Message, Notifier
from service.api.account_pages import (
    new_password_page,
    reset_asked_page,
    reset_gone_page,
    reset_request_page,
)
from service.api.deps import AlertManagerDep
from service.api.pages import message_page
from service.api.web_guards import FORM_REFUSED_TEXT, redirect_to
from service.api.web_session import APP_PATH, client_address, read_form, same_origin

log = logging.getLogger(__name__)

router = APIRouter(prefix=APP_PATH, tags=["app"])

_NO_MAIL = "This service sends no e-mail: ask its administrator to set a new password."


def _mailer(request: Request) -> tuple[Notifier, str] | None:
    notifier: Notifier | None = request.app.state.notifier
    mail_url: str | None = request.app.state.mail_url
    return None if notifier is None or mail_url is None else (notifier, mail_url)


@router.get("/reset", response_class=HTMLResponse)
def reset_form(request: Request) -> Response:
    """Ask for a link (or, without mail, who to ask)."""
    if _mailer(request) is None:
        return message_page("Set a new password", _NO_MAIL, 404)
    return reset_request_page()


@router.post("/reset", response_class=HTMLResponse)
async def ask_for_reset(request: Request, manager: AlertManagerDep) -> Response:
    """Mail a link to each account named, and answer the same whatever exists."""
    mailer = _mailer(request)
    if mailer is None:
        return message_page("Set a new password", _NO_MAIL, 404)
    form = await read_form(request)
    if not same_origin(request):
        return reset_request_page(said=FORM_REFUSED_TEXT, status=403)
    limit: WindowLimit = request.app.state.reset_requests
    wait_s = limit.wait_s(client_address(request), manager.clock())
    if wait_s > 0:
        said = f"Too many requests from your network: try again in {math.ceil(wait_s / 60)} min."
        return reset_request_page(said=said, status=429)
    limit.count(client_address(request), manager.clock())
    with manager.db.session() as session:
        links = start_resets(session, form.get("named", ""), manager.clock())
        mails = [
            (
                mail_url_to(mailer[1], account.email or ""),
                reset_message(account, password_link(manager.public_base_url, token)),
            )
            for account, token in links
        ]
    await run_in_threadpool(_send, mailer[0], mails)
    return reset_asked_page()


def _send(notifier: Notifier, mails: list[tuple[str, Message]]) -> None:
    """Send each mail; a failure is logged without the address or the link (secrets)."""
    for url, message in mails:
        result = notifier.send(url, message)
        if not result.ok:
            log.warning("a mail to set a new password was not sent: %s", result.reason)


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_link(token: str, request: Request, manager: AlertManagerDep) -> Response:
    """The form of a working link, for the account it names."""
    with manager.db.session() as session:
        account = reset_account(session, token[:100], manager.clock())
        if account is None:
            return reset_gone_page()
        welcome = is_invitation(session, token[:100])
        return new_password_page(account, str(request.url.path), welcome=welcome)


@router.post("/reset/{token}", response_class=HTMLResponse)
async def set_new_password(token: str, request: Request, manager: AlertManagerDep) -> Response:
    """Set the password (twice the same, the usual rules); then the sign-in form."""
    form = await read_form(request)
    path = str(request.url.path)
    with manager.db.session() as session:
        account = reset_account(session, token[:100], manager.clock())
        if account is None:
            return reset_gone_page()
        welcome = is_invitation(session, token[:100])
        if not same_origin(request):
            return new_password_page(
                account, path, welcome=welcome, said=FORM_REFUSED_TEXT, status=403
            )
        if form.get("new", "") != form.get("again"):
            said = "The two passwords differ: nothing was changed."
            return new_password_page(account, path, welcome=welcome, said=said, status=422)
        try:
            finish_reset(session, token[:100], form.get("new", ""), manager.clock())
        except ConfigError as exc:
            said = f"Not set: {exc}."
            return new_password_page(account, path, welcome=welcome, said=said, status=422)
    return redirect_to(f"{APP_PATH}/login?done=reset")
