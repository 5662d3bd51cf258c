"""Caregiver alerts: lifecycle, escalation scheduler, notifiers, messages and acknowledgement."""

from service.alerts.apprise_notifier import AppriseNotifier
from service.alerts.events import AlertEvent, AlertListener
from service.alerts.manager import AlertManager
from service.alerts.notifier import Message, Notifier, SendResult
from service.alerts.scheduler import EscalationScheduler
from service.alerts.tokens import TokenAction

__all__ = [
    "AlertEvent",
    "AlertListener",
    "AlertManager",
    "AppriseNotifier",
    "EscalationScheduler",
    "Message",
    "Notifier",
    "SendResult",
    "TokenAction",
]
