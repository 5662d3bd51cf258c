"""``flarewatch admin episodes|alerts|audit``: list recent episodes, alerts and the audit trail.

Like every admin listing, these never print vital values.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.cli_text import print_table
from service.cli_tables import row_number, when
from service.db.care_teams import get_patient
from service.db.models import Alert, AuditEvent, Episode, EpisodeState
from service.episode_labels_cli import CommandFactory


def _print(session: Session, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Print the rows once the transaction has ended.

    Read in a pager (``| less``), the listing waits on the pipe; a transaction still open would
    hold the service's one-writer lock (service/db/session.py) and with it every alert.
    """
    session.commit()
    print_table(headers, rows)
    return 0


def _episodes(args: argparse.Namespace, session: Session) -> int:
    query = select(Episode).order_by(Episode.id.desc()).limit(args.limit)
    if args.patient:
        # every patient with episodes or alerts is registered (or auto-registered): an unknown
        # id is a typo, which must not pass for a patient with nothing left to review
        query = query.where(Episode.patient_id == get_patient(session, args.patient).id)
    if args.unlabelled:  # what a clinician should review
        query = query.where(Episode.state == EpisodeState.CLOSED, Episode.label.is_(None))
    rows = [
        (
            e.id,
            e.patient_id,
            e.kind,
            e.severity,
            e.state,
            when(e.opened_s),
            when(e.closed_s),
            "yes" if e.signal_lost else "",
            e.model_version,
            e.label or "-",
        )
        for e in session.scalars(query)
    ]
    headers = ["id", "patient", "kind", "severity", "state", "opened", "closed", "signal lost"]
    return _print(session, [*headers, "model", "label"], rows)


def _alerts(args: argparse.Namespace, session: Session) -> int:
    query = select(Alert).order_by(Alert.id.desc()).limit(args.limit)
    if args.patient:
        query = query.where(Alert.patient_id == get_patient(session, args.patient).id)
    rows = [
        (
            a.id,
            a.patient_id,
            a.kind,
            a.severity,
            a.state,
            a.level,
            a.episode_id or "-",
            when(a.created_s),
            a.acked_by or "-",
        )
        for a in session.scalars(query)
    ]
    return _print(
        session,
        ["id", "patient", "kind", "severity", "state", "level", "episode", "created", "acked by"],
        rows,
    )


def _audit(args: argparse.Namespace, session: Session) -> int:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(args.limit)
    if args.patient:
        # an erased patient's trail is the record of their erasure; an id never seen is a typo
        seen = select(AuditEvent.id).where(AuditEvent.patient_id == args.patient).limit(1)
        if session.scalar(seen) is None:
            get_patient(session, args.patient)
        query = query.where(AuditEvent.patient_id == args.patient)
    if args.alert:
        query = query.where(AuditEvent.alert_id == args.alert)
    events = list(session.scalars(query))[::-1]
    rows = [
        (when(e.time_s), e.patient_id or "-", e.alert_id or "-", e.action, json.dumps(e.detail))
        for e in events
    ]
    return _print(session, ["time", "patient", "alert", "action", "detail"], rows)


def add_history_commands(
    groups: argparse._SubParsersAction[argparse.ArgumentParser], command: CommandFactory
) -> None:
    """Add ``admin episodes``, ``admin alerts`` and ``admin audit`` to the admin group."""
    for name, handler, text in (
        ("episodes", _episodes, "list recent episodes"),
        ("alerts", _alerts, "list recent alerts"),
        ("audit", _audit, "show the audit trail"),
    ):
        parser = command(groups, name, handler, text)
        parser.add_argument("--patient")
        parser.add_argument("--limit", type=row_number, default=50)
        if name == "audit":
            parser.add_argument("--alert", type=row_number)
        if name == "episodes":
            parser.add_argument(
                "--unlabelled", action="store_true", help="only closed episodes not yet labelled"
            )
