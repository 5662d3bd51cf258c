"""Signal states: why a patient's data may be missing, and which alert each loss raises.

Signal states are tracked per patient and never open an episode (see
:mod:`service.episodes.engine`); a signal lost while an episode is open makes it critical.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Final

from sqlalchemy import select

from service.db.models import Device, SignalState
from service.db.session import Database


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
A low battery raises none: the wearer is told to charge the band
(:mod:`service.alerts.battery_notices`), nobody else."""

SIGNAL_LOSS: Final = frozenset(
    {SignalKind.NO_DATA, SignalKind.NO_CONTACT, SignalKind.GATEWAY_OFFLINE}
)
"""Signals whose loss during an open episode makes it critical (nobody can see the patient)."""


def active_signals(db: Database) -> set[tuple[str, SignalKind]]:
    """Signals currently lost, per patient (to resume after a restart)."""
    with db.session() as session:
        rows = session.execute(
            select(SignalState.patient_id, SignalState.signal).where(SignalState.active.is_(True))
        ).all()
    return {(patient_id, SignalKind(signal)) for patient_id, signal in rows}


def devices_of_patients(db: Database, patient_ids: Iterable[str]) -> dict[str, list[str]]:
    """The devices registered to each of these patients (those with none are left out)."""
    wanted = list(patient_ids)
    if not wanted:
        return {}
    found: dict[str, list[str]] = {}
    with db.session() as session:
        rows = session.execute(
            select(Device.patient_id, Device.id).where(Device.patient_id.in_(wanted))
        ).all()
    for patient_id, device_id in rows:
        found.setdefault(patient_id, []).append(device_id)
    return found


def patients_of_devices(db: Database, device_ids: Sequence[str]) -> set[str]:
    """Registered owners of these devices (a gateway's Last Will lists only device ids)."""
    if not device_ids:
        return set()
    with db.session() as session:
        return set(
            session.scalars(select(Device.patient_id).where(Device.id.in_(list(device_ids)))).all()
        )
