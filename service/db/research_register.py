"""The register of research exports: which exports held which patient, to recall them.

A research group keeps what it was handed. When a patient withdraws their consent to research
or is erased, the service must say which exports held them and under which subject, so that
each recipient can be asked to delete that subject (GDPR art. 17(2) and 19). Each export is
recorded as it is written (:func:`register_export`), before its folder takes its name: an
export that leaves the service is in the register, at worst one that failed at the last step
is too.

A patient's rows keep their id while they are a patient: withdrawing consent names their
exports by it (:func:`recall`). Erasing them blanks it (``forget``): the service must not keep
the id of someone erased, and the recall needs only the subject and the export. The subject is
the keyed pseudonym (:func:`service.pseudonyms.pseudonym`): whoever holds the service key could
match it to an id they already know, as they could the export itself; nothing stored names the
id any more.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts.audit import record
from service.db.care_teams import set_research_consent
from service.db.models import Patient, ResearchExport, ResearchExportSubject

RESEARCH_EXPORTED: Final = "research_exported"
"""Audit action of an export (no patient: ids and counts)."""
RESEARCH_EXPORT_INCLUDED: Final = "research_export_included"
"""Audit action on each included patient's trail: their copy shows whom their data went to."""
RESEARCH_RECALL: Final = "research_recall"
"""Audit action of a recall: the exports and the subject to delete, and why."""
RECALL_CONSENT_WITHDRAWN: Final = "consent_withdrawn"
RECALL_ERASED: Final = "erased"


@dataclass(frozen=True, slots=True)
class Inclusion:
    """One research export that held a patient, as a recall names it."""

    export_id: str
    created_s: float
    folder: str
    subject: str
    recalled_s: float | None
    """When a recall of it was asked before this one (None: never)."""


@dataclass(frozen=True, slots=True)
class RegisteredExport:
    """One row of ``admin research exports``."""

    export_id: str
    created_s: float
    since_s: float
    until_s: float
    options: dict[str, Any]
    folder: str
    subjects: int
    recalled: int
    episodes: int


def new_export_id(now_s: float) -> str:
    """A readable id that sorts by time (``20261127-051500-3f9c0a``): recipients quote it."""
    stamp = dt.datetime.fromtimestamp(now_s, dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def register_export(
    session: Session,
    export: ResearchExport,
    included: Mapping[str, str],
) -> None:
    """Record ``export`` and every patient in it (patient id -> subject), audited; no commit."""
    session.add(export)
    for patient_id, subject in sorted(included.items()):
        session.add(
            ResearchExportSubject(export_id=export.id, subject=subject, patient_id=patient_id)
        )
        record(
            session,
            export.created_s,
            RESEARCH_EXPORT_INCLUDED,
            patient_id=patient_id,
            export_id=export.id,
            subject=subject,
        )
    record(
        session,
        export.created_s,
        RESEARCH_EXPORTED,
        export_id=export.id,
        subjects=len(included),
        episodes=export.episodes,
        samples=export.samples,
    )
    session.flush()


def inclusions(session: Session, patient_id: str) -> list[Inclusion]:
    """Every registered export that held the patient, oldest first."""
    rows = session.execute(
        select(ResearchExportSubject, ResearchExport)
        .join(ResearchExport, ResearchExport.id == ResearchExportSubject.export_id)
        .where(ResearchExportSubject.patient_id == patient_id)
        .order_by(ResearchExport.created_s, ResearchExport.id)
    ).all()
    return [
        Inclusion(export.id, export.created_s, export.folder, row.subject, row.recalled_s)
        for row, export in rows
    ]


def recall(
    session: Session, patient_id: str, now_s: float, *, reason: str, forget: bool
) -> list[Inclusion]:
    """Mark the patient's exports recalled, audited; ``forget`` blanks their id (erasure).

    Returns the exports as they were before (``recalled_s`` says whether one was asked
    already). The audit event of an erasure names no patient: it outlives their trail.
    """
    found = inclusions(session, patient_id)
    if not found:
        return found
    for row in session.scalars(
        select(ResearchExportSubject).where(ResearchExportSubject.patient_id == patient_id)
    ):
        if row.recalled_s is None:
            row.recalled_s = now_s
        if forget:
            row.patient_id = None
    record(
        session,
        now_s,
        RESEARCH_RECALL,
        patient_id=None if forget else patient_id,
        reason=reason,
        exports=",".join(i.export_id for i in found),
        subjects=",".join(sorted({i.subject for i in found})),
    )
    session.flush()
    return found


def registered_exports(session: Session) -> list[RegisteredExport]:
    """Every registered export, oldest first, with how many subjects it held and recalled."""
    subjects = (
        select(
            ResearchExportSubject.export_id,
            func.count().label("subjects"),
            func.count(ResearchExportSubject.recalled_s).label("recalled"),
        )
        .group_by(ResearchExportSubject.export_id)
        .subquery()
    )
    rows = session.execute(
        select(ResearchExport, subjects.c.subjects, subjects.c.recalled)
        .outerjoin(subjects, subjects.c.export_id == ResearchExport.id)
        .order_by(ResearchExport.created_s, ResearchExport.id)
    ).all()
    return [
        RegisteredExport(
            export_id=export.id,
            created_s=export.created_s,
            since_s=export.since_s,
            until_s=export.until_s,
            options=dict(export.options),
            folder=export.folder,
            subjects=int(count or 0),
            recalled=int(recalled or 0),
            episodes=export.episodes,
        )
        for export, count, recalled in rows
    ]


def change_consent(
    session: Session, patient: Patient, consent: bool, now_s: float
) -> list[Inclusion]:
    """Give or withdraw the patient's research consent (audited).

    Withdrawn, the exports already handed over that held them are marked to be asked back
    (:func:`recall`, audited) and returned: their recipients are to delete them.
    """
    withdrawn = set_research_consent(session, patient, consent, now_s) and not consent
    if not withdrawn:
        return []
    return recall(session, patient.id, now_s, reason=RECALL_CONSENT_WITHDRAWN, forget=False)
