"""Signing in and out of the web app: the password, then the code of a second factor if any.

Every refusal is the same one answer (:data:`~service.accounts.sign_in.REFUSED_TEXT`), and each
counts towards the per-account lockout and the per-address throttle
(:class:`~service.accounts.throttle.WindowLimit`). The sign-in forms carry no form token (no
session yet): a post from another site is refused from its ``Sec-Fetch-Site`` or ``Origin``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from service.accounts.sign_in import (
    REFUSED_CODE_TEXT,
    REFUSED_TEXT,
    SignedIn,
    awaiting_code,
    finish_sign_in,
    sign_in,
    sign_out,
)
from service.accounts.throttle import WindowLimit
from service.alerts.manager import AlertManager
from service.api.account_pages import code_page
from service.api.deps import AlertManagerDep
from service.api.web_guards import FORM_REFUSED_TEXT, posted_form, redirect_to
from service.api.web_pages import login_page
from service.api.web_session import (
    APP_PATH,
    account_of,
    clear_session_cookie,
    client_address,
    read_form,
    same_origin,
    session_token,
    set_session_cookie,
)

router = APIRouter(prefix=APP_PATH, tags=["app"])

_TOO_MANY = (
    "Too many refused sign-ins from your network: try again in {minutes} min. Nothing was checked."
)


def _throttled(
    request: Request, manager: AlertManager, form_page: Callable[..., HTMLResponse]
) -> Response | None:
    """``form_page`` saying to wait, if this address was refused too often lately; else None."""
    throttle: WindowLimit = request.app.state.sign_in_throttle
    wait_s = throttle.wait_s(client_address(request), manager.clock())
    if wait_s <= 0:
        return None
    response = form_page(refused=_TOO_MANY.format(minutes=math.ceil(wait_s / 60)), status=429)
    response.headers["retry-after"] = str(math.ceil(wait_s))
    return response


def _count_refusal(request: Request, manager: AlertManager) -> None:
    throttle: WindowLimit = request.app.state.sign_in_throttle
    throttle.count(client_address(request), manager.clock())


def _signed(signed: SignedIn, manager: AlertManager) -> Response:
    """Where a browser goes with its new session: home, or the code's form."""
    response = redirect_to(f"{APP_PATH}/login/code" if signed.second_factor_due else APP_PATH)
    set_session_cookie(response, signed.token, manager)
    return response


def _can_reset(request: Request) -> bool:
    return request.app.state.mail_url is not None


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, manager: AlertManagerDep, done: str | None = None) -> Response:
    """The sign-in form (signed in already: home); ``?done=reset`` after a new password."""
    with manager.db.session() as session:
        if account_of(request, session, manager) is not None:
            return redirect_to(APP_PATH)
    note = "Your new password is set: sign in with it." if done == "reset" else None
    return login_page(can_reset=_can_reset(request), note=note)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, manager: AlertManagerDep) -> Response:
    """Check the password: a session cookie and home (or the code's form), or one answer.

    A script may send ``code`` with the password to sign an account with a second factor in
    at once.
    """
    form = await read_form(request)
    username = form.get("username", "")[:64]
    if not same_origin(request):
        return login_page(refused=FORM_REFUSED_TEXT, status=403, can_reset=_can_reset(request))
    too_many = _throttled(request, manager, login_page)
    if too_many is not None:
        return too_many

    def check() -> SignedIn | None:
        with manager.db.session() as session:
            return sign_in(
                session, username, form.get("password", ""), manager.clock(), form.get("code", "")
            )

    # a worker thread, a few at a time: the hash takes a core for ~50 ms, and this server's
    # event loop also answers the acknowledgement links
    async with request.app.state.sign_in_slots:
        signed = await run_in_threadpool(check)
    if signed is None:
        _count_refusal(request, manager)
        return login_page(
            refused=REFUSED_TEXT, username=username, status=401, can_reset=_can_reset(request)
        )
    return _signed(signed, manager)


@router.get("/login/code", response_class=HTMLResponse)
def code_form(request: Request, manager: AlertManagerDep) -> Response:
    """The second step's form, for a browser that gave the right password within minutes."""
    with manager.db.session() as session:
        if awaiting_code(session, session_token(request), manager.clock()) is None:
            return redirect_to(f"{APP_PATH}/login")
    return code_page()


@router.post("/login/code", response_class=HTMLResponse)
async def code(request: Request, manager: AlertManagerDep) -> Response:
    """Take the code (or a recovery code): a complete session and home, or one answer."""
    form = await read_form(request)
    if not same_origin(request):
        return code_page(refused=FORM_REFUSED_TEXT, status=403)
    too_many = _throttled(request, manager, code_page)
    if too_many is not None:
        return too_many
    with manager.db.session() as session:
        token = session_token(request)
        if awaiting_code(session, token, manager.clock()) is None:
            return redirect_to(f"{APP_PATH}/login")
        signed = finish_sign_in(session, token, form.get("code", "")[:64], manager.clock())
    if signed is None:
        _count_refusal(request, manager)
        return code_page(refused=REFUSED_CODE_TEXT, status=401)
    return _signed(signed, manager)


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, manager: AlertManagerDep) -> Response:
    """End this browser's session."""
    await posted_form(request, manager, "Not signed out")
    with manager.db.session() as session:
        sign_out(session, session_token(request), manager.clock())
    response = redirect_to(f"{APP_PATH}/login")
    clear_session_cookie(response, manager)
    return response
