"""The FastAPI application: one router per resource, errors mapped to HTTP statuses."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from service.accounts.const import (
    RESET_REQUESTS_MAX,
    RESET_REQUESTS_WINDOW_S,
    SIGN_IN_HASHES_AT_ONCE,
)
from service.accounts.own_channels import TEST_EVERY_S
from service.accounts.throttle import WindowLimit
from service.accounts.view_log import ViewLog
from service.alerts.channel_changes import ChannelOffer
from service.alerts.errors import AlertingError, TokenError
from service.alerts.manager import AlertManager
from service.alerts.notifier import Notifier
from service.api.middleware import GuardMiddleware
from service.api.routes import (
    acks,
    episodes,
    help_link,
    links,
    me,
    web,
    web_account,
    web_care,
    web_channels,
    web_reset,
    web_sign_in,
    web_team,
)
from service.api.status import STATUS, status_of
from service.api.web_guards import EarlyAnswer, answer_early
from service.health import Health, HealthBoard
from service.stores.base import SampleStore


def create_app(
    manager: AlertManager,
    store: SampleStore | None = None,
    *,
    second_factor_roles: Collection[str] = (),
    notifier: Notifier | None = None,
    mail_url: str | None = None,
    channel_offer: ChannelOffer | None = None,
    health: HealthBoard | None = None,
) -> FastAPI:
    """Build the app around an :class:`AlertManager` (nothing is built at import time).

    ``store``: the sample store the web app's patient pages chart the recent vitals from (no
    chart without one). ``second_factor_roles``: the account roles that must turn on two-step
    sign-in before they see anything (``service.second_factor_roles``). ``notifier``: what
    sends a caregiver's test message from their account page (none: no such button), and with
    ``mail_url`` (``service.mail_url``) the links to set a new password. ``channel_offer``:
    the channels people may add themselves on their account page (none: only the
    administrator adds; needs ``notifier``, which must resolve the offer's servers, e.g.
    ``AppriseNotifier(offer.servers)``). ``health``: the
    service's checks, reported at ``/readyz`` (none: nothing to report, always ready).

    No interactive documentation page: Swagger UI runs scripts from a CDN, which the pages'
    Content-Security-Policy forbids on an origin whose URLs carry acknowledgement tokens. The
    OpenAPI description stays at ``/api/openapi.json``.
    """
    app = FastAPI(
        title="flarewatch",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.alert_manager = manager
    app.state.sample_store = store
    app.state.second_factor_roles = frozenset(second_factor_roles)
    app.state.sign_in_throttle = WindowLimit()
    app.state.notifier = notifier
    app.state.mail_url = mail_url if notifier is not None else None
    app.state.channel_offer = channel_offer if notifier is not None else None
    app.state.reset_requests = WindowLimit(RESET_REQUESTS_MAX, RESET_REQUESTS_WINDOW_S)
    app.state.channel_checks = WindowLimit(max_failures=1, window_s=TEST_EVERY_S)
    app.state.view_log = ViewLog()
    app.state.sign_in_slots = asyncio.Semaphore(SIGN_IN_HASHES_AT_ONCE)
    app.include_router(links.router)
    app.include_router(help_link.router)
    app.include_router(web_sign_in.router)
    app.include_router(web.router)
    app.include_router(web_account.router)
    app.include_router(web_channels.router)
    app.include_router(web_care.router)
    app.include_router(web_team.router)
    app.include_router(web_reset.router)
    app.include_router(acks.router, prefix="/api/v1")
    app.include_router(episodes.router, prefix="/api/v1")
    app.include_router(me.router, prefix="/api/v1")
    app.add_middleware(GuardMiddleware)

    async def alerting_error(request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc) if isinstance(exc, AlertingError) else 500
        reason = exc.reason if isinstance(exc, TokenError) else None
        return JSONResponse({"detail": str(exc), "reason": reason}, status_code=status)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's default answer quotes the input back: a token, or megabytes of it
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        detail = [{key: error.get(key) for key in ("type", "loc", "msg")} for error in errors]
        return JSONResponse({"detail": detail, "reason": "invalid"}, status_code=422)

    for kind in STATUS:
        app.add_exception_handler(kind, alerting_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(EarlyAnswer, answer_early)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness probe: the process answers (see ``/readyz`` for whether it does its job)."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: every part alerting needs, by name; 503 while one fails."""
        found = health.check() if health is not None else Health(())
        body = {
            "status": "ok" if found.ok else "degraded",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in found.checks},
        }
        return JSONResponse(body, status_code=200 if found.ok else 503)

    return app
