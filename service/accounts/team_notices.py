"""Telling a patient their care team changed, on the patient's own channels.

A caregiver who leaves from their account page takes away a place in the patient's alerts;
the patient should not learn it from an alert that reached nobody. Someone they invited who
adds their first channel now hears of the alerts: the patient learns their team is complete.
The notice names who left or joined and who the alerts reach now, in order (names only,
nothing about anyone's health), and goes through the patient's own channels once, after the
change is committed. Best effort: a channel that fails is logged without its URL, and the
patient's page shows the team as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.alarm import Severity
from service.alerts.care_team import escalation_levels, patient_contacts
from service.alerts.notifier import Message, Notifier
from service.db.channel_crypto import open_url
from service.db.models import Patient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TeamNotice:
    """What to send, and where: read inside the transaction, sent after it."""

    message: Message
    urls: Sequence[str]


def team_notice(session: Session, patient: Patient, change: str) -> TeamNotice:
    """The notice of ``change`` ("Ann left your care team."), read once it is made."""
    reached = [contact.name for contact in escalation_levels(session, patient.id)]
    now = (
        f"Alerts now reach {', then '.join(reached)}."
        if reached
        else "Alerts now reach NOBODY: invite someone on your page in flarewatch."
    )
    message = Message(
        "flarewatch: your care team changed",
        f"{change} {now}",
        Severity.WARNING if reached else Severity.CRITICAL,
    )
    urls = [
        open_url(session, channel)
        for contact in patient_contacts(session, patient.id)
        for channel in contact.live_channels
    ]
    return TeamNotice(message, urls)


def send_notice(notifier: Notifier, notice: TeamNotice) -> int:
    """Send the notice through every channel (blocking); how many took it."""
    sent = 0
    for url in notice.urls:
        try:
            result = notifier.send(url, notice.message)
        except Exception as exc:  # noqa: BLE001 - one broken channel must not hide the rest
            log.warning(
                "team notice not sent through %s: %s", notifier.redact(url), type(exc).__name__
            )
            continue
        if not result.ok:
            log.warning("team notice not sent through %s", notifier.redact(url))
        sent += result.ok
    return sent
