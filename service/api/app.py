"""The FastAPI application: one router per resource, errors mapped to HTTP statuses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.alerts.errors import (
    AlertNotFoundError,
    CancelNotAllowedError,
    NothingToLabelError,
    TokenError,
)
from service.alerts.manager import AlertManager
from service.api.routes import acks, episodes, links

_STATUS = {
    TokenError: 403,
    AlertNotFoundError: 404,
    CancelNotAllowedError: 409,
    NothingToLabelError: 409,
}


def create_app(manager: AlertManager) -> FastAPI:
    """Build the app around an :class:`AlertManager` (nothing is built at import time)."""
    app = FastAPI(title="flarewatch", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.alert_manager = manager
    app.include_router(links.router)
    app.include_router(acks.router, prefix="/api/v1")
    app.include_router(episodes.router, prefix="/api/v1")

    async def alerting_error(request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _STATUS.items() if isinstance(exc, kind))
        reason = exc.reason if isinstance(exc, TokenError) else None
        return JSONResponse({"detail": str(exc), "reason": reason}, status_code=status)

    for kind in _STATUS:
        app.add_exception_handler(kind, alerting_error)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok"}

    return app
