"""Errors of episodes and alerting.

::

    FlarewatchError
    └── AlertingError
        ├── TokenError               an acknowledgement link is malformed, forged or expired
        ├── AlertNotFoundError       no such alert (alert_id)
        ├── CancelNotAllowedError    "I'm OK" after the cancel window or for a critical alert
        ├── NothingToLabelError      a label link for an alert without an episode (a lost signal)
        └── UnknownPatientError      an admin command names a patient that does not exist
"""

from __future__ import annotations

from flarewatch.errors import FlarewatchError


class AlertingError(FlarewatchError):
    """Root of the episode and alerting errors."""


class TokenError(AlertingError):
    """An acknowledgement or cancel token cannot be used.

    ``reason`` is ``malformed``, ``bad_signature``, ``expired``, ``wrong_action``, ``revoked``
    (sent to someone taken off the care team since) or ``other_alert`` (issued for an alert whose
    id the database has since given to another, e.g. after a restore from a backup).
    """

    def __init__(self, reason: str) -> None:
        advice = (
            "the person it was sent to is no longer on the care team"
            if reason == "revoked"
            else "ask for a fresh link"
        )
        super().__init__(f"token rejected: {reason} ({advice})")
        self.reason = reason


class AlertNotFoundError(AlertingError):
    """The alert does not exist."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} does not exist")
        self.alert_id = alert_id


class CancelNotAllowedError(AlertingError):
    """The wearer's "I'm OK" cannot cancel this alert any more; caregivers were already told."""

    def __init__(self, alert_id: int, state: str, severity: str) -> None:
        super().__init__(
            f"alert {alert_id} ({severity}, {state}) can no longer be cancelled by the wearer: "
            "only warnings inside the cancel window can; tell your caregiver directly"
        )
        self.alert_id = alert_id


class UnknownPatientError(AlertingError):
    """No patient with this id is registered."""

    def __init__(self, patient_id: str) -> None:
        super().__init__(
            f"patient {patient_id!r} is not registered: add it with "
            f"`flarewatch admin patient add {patient_id}`"
        )
        self.patient_id = patient_id


class NothingToLabelError(AlertingError):
    """A label link of an alert that is about the band (a lost signal), not about the patient."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(
            f"alert {alert_id} was about the band, not a reaction: there is no episode to label"
        )
        self.alert_id = alert_id
