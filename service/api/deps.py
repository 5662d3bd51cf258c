"""Dependencies shared by the routers: the alert manager and sample store of the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.accounts.view_log import ViewLog
from service.alerts.manager import AlertManager
from service.stores.base import SampleStore


def get_alert_manager(request: Request) -> AlertManager:
    """The :class:`AlertManager` stored on the app by :func:`service.api.app.create_app`."""
    manager: AlertManager = request.app.state.alert_manager
    return manager


AlertManagerDep = Annotated[AlertManager, Depends(get_alert_manager)]


def get_sample_store(request: Request) -> SampleStore | None:
    """The sample store the app was built with, if any (the web app's vitals chart)."""
    store: SampleStore | None = request.app.state.sample_store
    return store


SampleStoreDep = Annotated[SampleStore | None, Depends(get_sample_store)]


def get_view_log(request: Request) -> ViewLog:
    """The app's :class:`~service.accounts.view_log.ViewLog` (who read whose record)."""
    view_log: ViewLog = request.app.state.view_log
    return view_log


ViewLogDep = Annotated[ViewLog, Depends(get_view_log)]
