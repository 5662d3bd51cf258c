"""JSON endpoints to acknowledge an alert or cancel it as the wearer ("I'm OK")."""

from __future__ import annotations

from fastapi import APIRouter

from service.alerts.tokens import TokenAction
from service.api.deps import AlertManagerDep
from service.api.schemas import AlertPublic, TokenIn

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.post("/ack")
def acknowledge(body: TokenIn, manager: AlertManagerDep) -> AlertPublic:
    """Acknowledge the alert the token was issued for: repeats and escalation stop."""
    return AlertPublic.of(manager.redeem(body.token, TokenAction.ACK, via="api"))


@router.post("/im-ok")
def im_ok(body: TokenIn, manager: AlertManagerDep) -> AlertPublic:
    """The wearer cancels a warning inside its cancel window (409 once caregivers were told)."""
    return AlertPublic.of(manager.redeem(body.token, TokenAction.CANCEL, via="api"))
