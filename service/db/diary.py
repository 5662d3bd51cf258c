"""A patient's diary in the service database: what the patient or their care team noted.

Triggers met, symptoms felt, doses taken: what a wearable cannot measure and what tells a
reaction from a false alarm when the episode is reviewed. The audit trail records who added or
removed an entry of which kind, never its text.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.alerts.audit import record
from service.const import DIARY_FUTURE_SLACK_S, DIARY_PAST_MAX_S, DIARY_TEXT_MAX_CHARS
from service.db.care_teams import fits_column, get_patient
from service.db.models import DiaryEntry, DiaryKind


def parse_kind(value: str) -> DiaryKind:
    """The diary kind named ``value``; :class:`ConfigError` listing the kinds otherwise."""
    try:
        return DiaryKind(value.strip().lower())
    except ValueError:
        kinds = ", ".join(kind.value for kind in DiaryKind)
        raise ConfigError(f"unknown diary kind {value!r}: choose {kinds}") from None


def add_entry(
    session: Session,
    patient_id: str,
    time_s: float,
    kind: DiaryKind,
    text: str,
    by: str,
    now_s: float,
    *,
    via: str,
) -> DiaryEntry:
    """Write one diary entry for ``patient_id``; :class:`ConfigError` saying what is wrong."""
    get_patient(session, patient_id)
    text = text.strip()
    if not text:
        raise ConfigError("say what happened: the entry has no text")
    if len(text) > DIARY_TEXT_MAX_CHARS:
        raise ConfigError(f"the text is too long: at most {DIARY_TEXT_MAX_CHARS} characters")
    if time_s > now_s + DIARY_FUTURE_SLACK_S:
        raise ConfigError("the time is in the future: a diary notes what has happened")
    if time_s < now_s - DIARY_PAST_MAX_S:
        raise ConfigError("the time is more than a year ago")
    fits_column(by, DiaryEntry.written_by, "the writer's name")
    entry = DiaryEntry(
        patient_id=patient_id,
        time_s=time_s,
        kind=kind.value,
        text=text,
        written_by=by,
        written_s=now_s,
    )
    session.add(entry)
    session.flush()
    record(
        session,
        now_s,
        "diary_added",
        patient_id=patient_id,
        entry_id=entry.id,
        kind=kind.value,
        by=by,
        via=via,
    )
    return entry


def remove_entry(
    session: Session, patient_id: str, entry_id: int, by: str, now_s: float, *, via: str
) -> None:
    """Delete one of ``patient_id``'s diary entries (a mistake); :class:`ConfigError` if none."""
    entry = session.get(DiaryEntry, entry_id)
    if entry is None or entry.patient_id != patient_id:
        raise ConfigError(f"no diary entry {entry_id} of this patient")
    session.delete(entry)
    record(
        session,
        now_s,
        "diary_removed",
        patient_id=patient_id,
        entry_id=entry_id,
        kind=entry.kind,
        by=by,
        via=via,
    )
    session.flush()


def entries_of(
    session: Session,
    patient_id: str,
    *,
    limit: int | None = None,
    between: tuple[float, float] | None = None,
) -> Sequence[DiaryEntry]:
    """The patient's diary, newest first (``limit`` entries at most; ``between`` two times)."""
    query = (
        select(DiaryEntry)
        .where(DiaryEntry.patient_id == patient_id)
        .order_by(DiaryEntry.time_s.desc(), DiaryEntry.id.desc())
    )
    if between is not None:
        query = query.where(DiaryEntry.time_s >= between[0], DiaryEntry.time_s <= between[1])
    return session.scalars(query.limit(limit) if limit is not None else query).all()
