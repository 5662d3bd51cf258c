"""Signal states: why a patient's data may be missing, and which alert each loss raises.

Signal states are tracked per patient and never open an episode (see
:mod:`service.episodes.engine`); a signal lost while an episode is open makes it critical.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class SignalKind(StrEnum):
    """Why a patient's signal may be missing; each is tracked on its own."""

    NO_DATA = "no_data"
    NO_CONTACT = "no_contact"
    GATEWAY_OFFLINE = "gateway_offline"
    DEVICE_OFFLINE = "device_offline"
    BATTERY_LOW = "battery_low"


ALERT_KIND_OF_SIGNAL: Final[Mapping[SignalKind, str | None]] = {
    SignalKind.NO_DATA: "no_data",
    SignalKind.GATEWAY_OFFLINE: "no_data",
    SignalKind.DEVICE_OFFLINE: "no_data",
    SignalKind.NO_CONTACT: "no_contact",
    SignalKind.BATTERY_LOW: None,
}
"""The alert a lost signal raises; a silent gateway and a silent band are both "no data".
A low battery is recorded and published, but wakes nobody."""

SIGNAL_LOSS: Final = frozenset(
    {SignalKind.NO_DATA, SignalKind.NO_CONTACT, SignalKind.GATEWAY_OFFLINE}
)
"""Signals whose loss during an open episode makes it critical (nobody can see the patient)."""
