"""Dependencies shared by the routers (the alert manager the app was built with)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.alerts.manager import AlertManager


def get_alert_manager(request: Request) -> AlertManager:
    """The :class:`AlertManager` stored on the app by :func:`service.api.app.create_app`."""
    manager: AlertManager = request.app.state.alert_manager
    return manager


AlertManagerDep = Annotated[AlertManager, Depends(get_alert_manager)]
