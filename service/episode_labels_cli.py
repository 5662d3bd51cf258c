"""``flarewatch admin episode …``: label episodes as real reactions or false alarms, export them.

The labels are what the detectors' learned confirmer needs to learn from real episodes (see
:mod:`service.episodes.labels` and docs/alerts.md, "Labelling episodes").
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy.orm import Session

from flarewatch.output_files import replacing
from flarewatch.settings import load_settings, require_secret_key
from models.alarm import AlarmKind
from service.cli_tables import parse_time, row_number, when
from service.episodes.labels import (
    EPISODE_KINDS,
    add_missed_reaction,
    export_labels,
    parse_label,
    set_label,
)

Handler: TypeAlias = Callable[[argparse.Namespace, Session], int]
CommandFactory: TypeAlias = Callable[[Any, str, Handler, str], argparse.ArgumentParser]
"""``admin_cli``'s helper that adds a subcommand running ``handler`` in one database session."""

DEFAULT_LABELLER = "admin"
"""Who labelled, when ``--by`` is not given and the login name cannot be found."""


def _labeller() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return DEFAULT_LABELLER


def _label(args: argparse.Namespace, session: Session) -> int:
    label = parse_label(args.label)
    by = args.by if args.by is not None else _labeller()
    first_sign_s = parse_time(args.first_sign, "--first-sign") if args.first_sign else None
    episode = set_label(session, args.episode_id, label, by, time.time(), first_sign_s=first_sign_s)
    began = (
        f"; first sign {when(episode.first_sign_s)}, {episode.opened_s - episode.first_sign_s:.0f}"
        " s before the alarm"
        if first_sign_s is not None and episode.first_sign_s is not None
        else ""
    )
    print(
        f"episode {episode.id} ({episode.patient_id}, {episode.kind}, {episode.state}) "
        f"labelled {label} by {by}{began}"
    )
    return 0


def _add(args: argparse.Namespace, session: Session) -> int:
    by = args.by if args.by is not None else _labeller()
    now_s = time.time()
    episode = add_missed_reaction(
        session,
        args.patient_id,
        AlarmKind(args.kind),
        parse_time(args.onset, "--onset"),
        parse_time(args.end, "--end") if args.end else None,
        by,
        now_s,
    )
    print(
        f"episode {episode.id} added: {episode.patient_id}, {episode.kind}, a real reaction the "
        f"detectors missed, {when(episode.opened_s)} to {when(episode.closed_s)}, by {by}"
    )
    return 0


def _export(args: argparse.Namespace, session: Session) -> int:
    settings = load_settings(getattr(args, "config", None))
    # the subjects are keyed by it: under the built-in (public) key, anyone can hash guessed
    # patient ids to them, and they match no export made under the service's own key
    require_secret_key(settings.service)
    export = export_labels(session, settings.service.secret_key.get_secret_value(), args.patient)
    # writing (and its fsync) takes as long as the disk wants: an open transaction would hold
    # the service's one-writer lock (service/db/session.py), and with it every alert, meanwhile
    session.commit()
    with replacing(args.out, "--out") as out:  # owner-only: health data
        for record in export.records:
            out.write(json.dumps(record, sort_keys=True) + "\n")
    skipped = (
        f"; {export.skipped_episodes} labelled episodes without an onset alarm skipped"
        if export.skipped_episodes
        else ""
    )
    print(
        f"{len(export.records)} onset alarms of {export.episodes} labelled episodes "
        f"written to {args.out}{skipped}"
    )
    return 0


def add_episode_commands(
    groups: argparse._SubParsersAction[argparse.ArgumentParser], command: CommandFactory
) -> None:
    """Add ``admin episode label`` and ``admin episode export-labels`` to the admin group."""
    episode = groups.add_parser(
        "episode", help="label episodes, add missed reactions; export the labels for training"
    )
    cmds = episode.add_subparsers(dest="episode_command", metavar="ACTION", required=True)
    parser = command(
        cmds, "label", _label, "mark an episode a real reaction or a false alarm (latest wins)"
    )
    parser.add_argument("episode_id", type=row_number)
    parser.add_argument("--as", dest="label", required=True, choices=["reaction", "false-alarm"])
    parser.add_argument("--by", help="who reviewed it (default: your login name)")
    parser.add_argument(
        "--first-sign",
        help="a real reaction's first sign, if before the alarm: ISO 8601 (UTC unless it says)",
    )
    parser = command(cmds, "add", _add, "record a real reaction the detectors raised no alarm for")
    parser.add_argument("patient_id")
    parser.add_argument("--kind", required=True, choices=[str(k) for k in EPISODE_KINDS])
    parser.add_argument(
        "--onset", required=True, help="its first sign: ISO 8601 (UTC unless it says)"
    )
    parser.add_argument(
        "--end",
        help="when it was over: ISO 8601 (UTC unless it says; default: 30 min after the onset, "
        "or now if sooner)",
    )
    parser.add_argument("--by", help="who recorded it (default: your login name)")
    parser = command(
        cmds,
        "export-labels",
        _export,
        "write the onset alarms of labelled episodes as JSON lines (health data: handle as such)",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file to write")
    parser.add_argument("--patient", help="only this patient's episodes")
