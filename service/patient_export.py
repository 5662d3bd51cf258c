"""A copy of everything the service holds about one patient, for the patient (right of access).

The counterpart of the erasure (:mod:`service.db.erasure`): what a patient may ask to see, or to
take to another service, in plain files anyone can open. Nothing is pseudonymised (it is their
own data) but nobody else's secrets or ids go out: the care team's channel URLs hold their tokens
and passwords, so only how many channels each contact has is written, and a band moved to them
from another patient says so without naming them.

The folder (``admin patient export ID --out DIR``, or as a ZIP from the patient's own page in the
web app, :func:`zip_patient_export`):

* ``patient.json``: the patient, their alerting policy, care team (and which of its members
  sign in to see them), devices and their own web app account;
* ``episodes.csv``, ``alerts.csv``, ``messages.csv``, ``audit.csv``, ``diary.csv``: their
  history and their diary, times in UTC (ISO 8601);
* ``samples.csv.gz``: every stored sample, all devices in time order, in the replay format of
  ``flarewatch detect`` (epoch seconds).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.output_files import building_folder, owner_only_file
from flarewatch.payloads import Sample
from models.recording_writer import write_recording
from service.db.care_teams import get_patient
from service.db.diary import entries_of
from service.db.erasure import OTHER_PATIENT, PATIENT_MENTIONS
from service.db.models import (
    Account,
    AccountContact,
    Alert,
    AuditEvent,
    Contact,
    Delivery,
    Device,
    Episode,
    Patient,
)
from service.stores.base import SampleStore
from service.stores.reading import READ_SPAN_MS, stored_batches

EPISODE_COLUMNS: Final = (
    *("id", "kind", "severity", "state", "opened", "closed", "first_sign"),
    *("label", "labelled_by", "model_version"),
)
ALERT_COLUMNS: Final = (
    *("id", "episode", "kind", "severity", "state", "created", "acknowledged"),
    *("acknowledged_by", "closed"),
)
MESSAGE_COLUMNS: Final = ("alert", "to", "purpose", "state", "created", "sent", "attempts")
AUDIT_COLUMNS: Final = ("time", "action", "alert", "detail")
DIARY_COLUMNS: Final = ("time", "kind", "text", "written_by", "written")


@dataclass(frozen=True, slots=True)
class PatientRecords:
    """The patient's rows, read in one short transaction (the samples come later)."""

    profile: dict[str, Any]
    episodes: list[list[str]]
    alerts: list[list[str]]
    messages: list[list[str]]
    audit: list[list[str]]
    diary: list[list[str]]


@dataclass(frozen=True, slots=True)
class PatientExport:
    """What :func:`write_patient_export` wrote."""

    records: PatientRecords
    samples: int


def read_patient_records(session: Session, patient_id: str) -> PatientRecords:
    """Everything the service database holds about the patient (unknown ids: a ConfigError)."""
    patient = get_patient(session, patient_id)
    contacts = session.scalars(
        select(Contact).where(Contact.patient_id == patient_id).order_by(Contact.id)
    ).all()
    names = {c.id: c.name for c in contacts}
    devices = session.scalars(select(Device).where(Device.patient_id == patient_id)).all()
    accounts = session.scalars(
        select(Account).where(Account.patient_id == patient_id).order_by(Account.id)
    ).all()
    with_access = set(
        session.scalars(
            select(AccountContact.contact_id).where(
                AccountContact.contact_id.in_([c.id for c in contacts])
            )
        )
    )
    episodes = session.scalars(
        select(Episode).where(Episode.patient_id == patient_id).order_by(Episode.opened_s)
    ).all()
    alerts = session.scalars(
        select(Alert).where(Alert.patient_id == patient_id).order_by(Alert.id)
    ).all()
    messages = session.scalars(
        select(Delivery)
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(Alert.patient_id == patient_id)
        .order_by(Delivery.id)
    ).all()
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.patient_id == patient_id).order_by(AuditEvent.id)
    ).all()
    return PatientRecords(
        profile=_profile(patient, contacts, devices, accounts, with_access),
        episodes=[
            [
                str(e.id),
                e.kind,
                e.severity,
                e.state,
                _iso(e.opened_s),
                _iso(e.closed_s),
                _iso(e.first_sign_s),
                e.label or "",
                e.labelled_by or "",
                e.model_version,
            ]
            for e in episodes
        ],
        alerts=[
            [
                str(a.id),
                str(a.episode_id or ""),
                a.kind,
                a.severity,
                a.state,
                _iso(a.created_s),
                _iso(a.acked_s),
                a.acked_by or "",
                _iso(a.closed_s),
            ]
            for a in alerts
        ],
        messages=[
            [
                str(m.alert_id),
                names.get(m.contact_id, ""),
                m.purpose,
                m.state,
                _iso(m.created_s),
                _iso(m.sent_s),
                str(m.attempts),
            ]
            for m in messages
        ],
        audit=[[_iso(e.time_s), e.action, str(e.alert_id or ""), _detail(e)] for e in audit],
        diary=[
            [_iso(d.time_s), d.kind, d.text, d.written_by, _iso(d.written_s)]
            for d in reversed(entries_of(session, patient_id))
        ],
    )


def write_patient_export(
    records: PatientRecords,
    store: SampleStore,
    patient_id: str,
    out: Path,
    on_spans: Callable[[int], None] | None = None,
    on_span: Callable[[], None] | None = None,
) -> PatientExport:
    """Write the folder ``out`` (new, or empty) whole or not at all; returns what went in.

    For a progress bar: ``on_spans`` is told once how many hour-long reads the samples take,
    ``on_span`` is called after each.
    """
    with building_folder(out, "--out") as folder:
        with owner_only_file(folder / "patient.json").open("w", encoding="utf-8") as file:
            json.dump(records.profile, file, indent=2, ensure_ascii=False)
            file.write("\n")
        tables: Sequence[tuple[str, Sequence[str], list[list[str]]]] = (
            ("episodes.csv", EPISODE_COLUMNS, records.episodes),
            ("alerts.csv", ALERT_COLUMNS, records.alerts),
            ("messages.csv", MESSAGE_COLUMNS, records.messages),
            ("audit.csv", AUDIT_COLUMNS, records.audit),
            ("diary.csv", DIARY_COLUMNS, records.diary),
        )
        for name, columns, rows in tables:
            with owner_only_file(folder / name).open("w", encoding="utf-8", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(columns)
                writer.writerows(rows)
        span = store.time_span_ms(patient_id)
        if on_spans is not None:
            on_spans(0 if span is None else -(-(span[1] + 1 - span[0]) // READ_SPAN_MS))
        batches = (
            stored_batches(store, patient_id, span[0], span[1] + 1, on_span) if span else iter(())
        )
        written = write_recording(folder / "samples.csv.gz", _samples(batches))
    return PatientExport(records, 0 if written is None else written.samples)


def _samples(batches: Iterator[list[Sample]]) -> Iterator[Sample]:
    for batch in batches:
        yield from batch


def _profile(
    patient: Patient,
    contacts: Sequence[Contact],
    devices: Sequence[Device],
    accounts: Sequence[Account],
    with_access: set[int],
) -> dict[str, Any]:
    """``patient.json``: the patient, policy, care team (who can sign in to see them), bands."""
    return {
        "id": patient.id,
        "name": patient.display_name,
        "timezone": patient.timezone,
        "registered": _iso(patient.created_s),
        "emergency_plan": patient.emergency_plan,
        "alerting": {
            "cancel_window_s": patient.cancel_window_s,
            "signal_window_s": patient.signal_window_s,
            "off_reminder_s": patient.off_reminder_s,
            "off_notice_s": patient.off_notice_s,
            "acknowledgement_timeout_s": patient.ack_timeout_s,
            "repeat_interval_s": patient.repeat_interval_s,
            "quiet_hours": (
                f"{patient.quiet_start}-{patient.quiet_end}" if patient.quiet_start else None
            ),
            "detection_profile": patient.detection_profile,
        },
        "research_consent": _iso(patient.research_consent_s) or None,
        "care_team": [
            {
                "name": c.name,
                "role": c.role,
                "position": c.position,
                "channels": len(c.live_channels),
                "removed": _iso(c.removed_s) or None,
                "away_until": _iso(c.away_until_s) or None,
                "sees_the_record_in_the_web_app": c.id in with_access,
            }
            for c in contacts
        ],
        "devices": [
            {
                "id": d.id,
                "label": d.label,
                "link": d.link_state,
                "link_reason": d.link_reason,
                "link_since": _iso(d.link_since_s) or None,
                "last_reported": _iso(d.reported_s) or None,
                "battery_percent": d.battery_percent,
                "skin_contact": d.contact_detected,
            }
            for d in devices
        ],
        "web_app_accounts": [
            {
                "username": a.username,
                "created": _iso(a.created_s),
                "last_sign_in": _iso(a.last_login_s) or None,
                "disabled": _iso(a.disabled_s) or None,
            }
            for a in accounts
        ],
    }


def _detail(event: AuditEvent) -> str:
    """An audit event's detail as JSON, without another patient's id (a band moved from them)."""
    detail = dict(event.detail)
    key = PATIENT_MENTIONS.get(event.action)
    if key is not None and key in detail:
        detail[key] = OTHER_PATIENT
    return json.dumps(detail, sort_keys=True)


def _iso(time_s: float | None) -> str:
    if time_s is None:
        return ""
    return dt.datetime.fromtimestamp(time_s, dt.UTC).isoformat(timespec="seconds")


def zip_patient_export(
    records: PatientRecords, store: SampleStore, patient_id: str, zip_path: Path
) -> PatientExport:
    """The export's folder as one ZIP file at ``zip_path`` (a download from the web app)."""
    with tempfile.TemporaryDirectory(prefix="flarewatch-my-data-") as scratch:
        folder = Path(scratch) / "flarewatch-data"
        export = write_patient_export(records, store, patient_id, folder)
        with zipfile.ZipFile(owner_only_file(zip_path), "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(folder.iterdir()):
                archive.write(member, f"flarewatch-data/{member.name}")
    return export
