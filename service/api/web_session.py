"""The web app's signed-in browser: its cookie, the account behind it, forms and their guard.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends
it) and ``Secure`` when the service is reached over HTTPS. Every form that changes something
carries a token derived from the session (:func:`form_token`) and, from a browser that says where
it posts from, must come from this origin: a page elsewhere cannot post as the signed-in person.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from typing import Final
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from service.accounts.const import SESSION_MAX_S
from service.accounts.second_factor import has_second_factor
from service.accounts.sign_in import signed_in_account
from service.alerts.manager import AlertManager
from service.db.models import Account

COOKIE: Final = "fw_session"
APP_PATH: Final = "/app"
FORM_TOKEN_FIELD: Final = "csrf"
_FORM_CONTEXT: Final = b"web-form:"
MAX_FORM_FIELDS: Final = 20
"""The app's largest form has five fields; more is not one of its forms."""


def client_address(request: Request) -> str:
    """The network address a request came from (the proxy's, unless it passes the client's)."""
    return request.client.host if request.client is not None else "(unknown)"


def session_token(request: Request) -> str | None:
    """The session token the browser sent, if any."""
    return request.cookies.get(COOKIE) or None


def account_of(request: Request, session: Session, manager: AlertManager) -> Account | None:
    """The account signed in on this browser, or None."""
    return signed_in_account(session, session_token(request), manager.clock())


def second_factor_required(request: Request, account: Account) -> bool:
    """Whether ``account``'s role must use two-step sign-in (``service.second_factor_roles``)."""
    roles: frozenset[str] = request.app.state.second_factor_roles
    return account.role in roles


def must_enrol(request: Request, account: Account) -> bool:
    """Whether ``account`` must turn on two-step sign-in and has not yet.

    Such an account sees only its own account page until it does.
    """
    return second_factor_required(request, account) and not has_second_factor(account)


def set_session_cookie(response: Response, token: str, manager: AlertManager) -> None:
    """Hand the browser its session (the lifetime bound is also checked by the server)."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_MAX_S),
        path="/",
        httponly=True,
        samesite="strict",
        secure=manager.public_base_url.startswith("https://"),
    )


def clear_session_cookie(response: Response, manager: AlertManager) -> None:
    """Make the browser forget its session."""
    response.delete_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=manager.public_base_url.startswith("https://"),
    )


def form_token(manager: AlertManager, token: str | None) -> str:
    """The value a form of this session carries: HMAC of the session token under the service key."""
    message = _FORM_CONTEXT + (token or "").encode()
    return hmac.new(manager.secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


async def read_form(request: Request) -> dict[str, str]:
    """A posted urlencoded form: the first value of each field (the body is bounded upstream).

    A body that is no such form (too many fields, not text) reads as an empty form: what it
    asked is then refused like a form with nothing filled in.
    """
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        fields = parse_qs(body, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return {}
    return {name: values[0] for name, values in fields.items()}


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this origin (true when the client does not say).

    Browsers say it in ``Sec-Fetch-Site``; under the pages' ``no-referrer`` policy their
    ``Origin`` is ``null``, so it is read only from those that do not send the first.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")


def form_allowed(request: Request, form: dict[str, str], manager: AlertManager) -> bool:
    """Whether a posted form comes from this app's page for this session."""
    expected = form_token(manager, session_token(request))
    return same_origin(request) and hmac.compare_digest(form.get(FORM_TOKEN_FIELD, ""), expected)


def hidden_token(form_token: str) -> str:
    """A form's hidden field carrying the session's form token (HTML)."""
    return f'<input type="hidden" name="{FORM_TOKEN_FIELD}" value="{html.escape(form_token)}">'
