"""``flarewatch admin research export|exports``: research exports, and the register of them.

See :mod:`service.research_export` for what goes in and how it is pseudonymised, and
docs/research.md for the folder it writes. Every export is registered
(:mod:`service.db.research_register`): ``exports`` lists them, and withdrawing a patient's
consent or erasing them prints the exports to recall (:func:`print_recall`).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from flarewatch.cli_text import print_table
from flarewatch.errors import ConfigError
from flarewatch.progress import percent_progress
from flarewatch.settings import load_settings, require_secret_key
from service.cli_tables import parse_time, when
from service.db.models import ResearchExport
from service.db.research_register import (
    Inclusion,
    new_export_id,
    register_export,
    registered_exports,
)
from service.episode_labels_cli import CommandFactory
from service.research_export import (
    DEFAULT_AFTER_S,
    DEFAULT_BEFORE_S,
    ExportSummary,
    plan_export,
    write_export,
)
from service.stores.factory import opened_store
from service.stores.reading import READ_SPAN_MS

MAX_WINDOW_MIN: Final = 24 * 60.0
"""Longest recording asked for before or after an episode: a day."""


def _minutes(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0 <= value <= MAX_WINDOW_MIN):
        raise argparse.ArgumentTypeError(f"give minutes from 0 to {MAX_WINDOW_MIN:g}")
    return value


def _export(args: argparse.Namespace, session: Session) -> int:
    settings = load_settings(getattr(args, "config", None))
    # subjects and time shifts are keyed by it: under the public demo key anyone could undo both
    require_secret_key(settings.service)
    secret_key = settings.service.secret_key.get_secret_value()
    since_s = parse_time(args.since, "--since") if args.since else 0.0
    until_s = parse_time(args.until, "--until")
    if since_s >= until_s:
        raise ConfigError("--since must be before --until")
    plan = plan_export(session, since_s, until_s)
    # reading the samples takes a while: an open transaction would hold up every alert meanwhile
    session.commit()
    export_id = new_export_id(time.time())
    options = (
        {"whole": True}
        if args.whole
        else {"before_min": args.before_min, "after_min": args.after_min, "whole": False}
    )

    def register(summary: ExportSummary) -> None:
        """Record the export before its folder takes its name (none leaves unrecorded)."""
        export = ResearchExport(
            id=export_id,
            created_s=time.time(),
            since_s=since_s,
            until_s=until_s,
            options=options,
            folder=str(args.out.absolute()),
            episodes=summary.episodes,
            samples=summary.samples,
        )
        # a transaction of its own (the command's ended above), committed before the rename
        try:
            with Session(session.get_bind()) as own, own.begin():
                register_export(own, export, summary.included)
        except SQLAlchemyError as exc:
            raise ConfigError(
                "the export could not be registered in the service database "
                f"({exc.__class__.__name__}), so it was not kept: nothing was written to "
                f"{args.out}. Run it again"
            ) from exc

    with opened_store(settings) as store, percent_progress() as progress:
        if args.whole:
            windows, recorded = plan.whole(store), "each patient's whole recording"
        else:
            windows = plan.windows(args.before_min * 60.0, args.after_min * 60.0)
            recorded = (
                f"from {args.before_min:g} min before each episode to {args.after_min:g} "
                "min after its end"
            )
        spans = sum(
            math.ceil((end - start) * 1000 / READ_SPAN_MS)
            for patient_windows in windows.values()
            for start, end in patient_windows
        )
        task = progress.add_task("reading the recordings", total=spans)
        summary = write_export(
            plan,
            store,
            secret_key,
            args.out,
            windows,
            recorded,
            export_id,
            register,
            lambda: progress.advance(task),
        )
    print(
        f"{summary.episodes} episodes of {summary.subjects} consenting patients "
        f"({summary.samples} samples) written to {args.out}; {summary.reactions} real reactions "
        f"in episodes.csv; registered as export {export_id}"
    )
    left_out = [
        (plan.without_consent, "episodes of patients without research consent left out"),
        (plan.still_open, "episodes still open left out"),
        (summary.without_samples, "reactions without stored samples at their onset left out"),
        (summary.merged, "reactions merged into the one just before"),
    ]
    for count, what in left_out:
        if count:
            print(f"{count} {what}")
    print("health data, pseudonymised: share it only under the study's data agreement")
    return 0


def _exports(args: argparse.Namespace, session: Session) -> int:
    rows = [
        (
            e.export_id,
            when(e.created_s),
            f"{when(e.since_s) if e.since_s > 0 else 'start'} to {when(e.until_s)}",
            f"{e.subjects}" + (f" ({e.recalled} recalled)" if e.recalled else ""),
            e.episodes,
            "whole" if e.options.get("whole") else "windows",
            e.folder,
        )
        for e in registered_exports(session)
    ]
    print_table(("export", "time", "period", "subjects", "episodes", "recordings", "folder"), rows)
    return 0


def print_recall(patient_id: str, why: str, found: Sequence[Inclusion]) -> None:
    """Say which research exports held the patient and what to ask each recipient to delete.

    Printed by the command that withdraws the consent or erases the patient: the service does
    not know the recipients, the operator does (the study's data agreement).
    """
    if not found:
        return
    subjects = ", ".join(sorted({i.subject for i in found}))
    print(
        f"{why}: patient {patient_id} was in {len(found)} research export(s) already handed "
        f"over. Ask each recipient to delete subject {subjects} from it (docs/research.md):"
    )
    for inclusion in found:
        asked = (
            f" (recall asked before, {when(inclusion.recalled_s)})"
            if inclusion.recalled_s is not None
            else ""
        )
        print(
            f"  export {inclusion.export_id} of {when(inclusion.created_s)}, subject "
            f"{inclusion.subject}, written to {inclusion.folder}{asked}"
        )


def add_research_commands(
    groups: argparse._SubParsersAction[argparse.ArgumentParser], command: CommandFactory
) -> None:
    """Add ``admin research export`` and ``admin research exports``."""
    research = groups.add_parser("research", help="exports for research (consenting patients)")
    cmds = research.add_subparsers(dest="research_command", metavar="ACTION", required=True)
    parser = command(
        cmds,
        "export",
        _export,
        "write consenting patients' episodes and the recordings around them, pseudonymised",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to create")
    parser.add_argument(
        "--since", help="episodes opened from: ISO 8601, UTC unless it says (default: all)"
    )
    parser.add_argument(
        "--until", help="episodes opened before: ISO 8601, UTC unless it says (default: now)"
    )
    parser.add_argument(
        "--before-min",
        type=_minutes,
        default=DEFAULT_BEFORE_S / 60,
        help=f"recording before each episode (default {DEFAULT_BEFORE_S / 60:g} min)",
    )
    parser.add_argument(
        "--after-min",
        type=_minutes,
        default=DEFAULT_AFTER_S / 60,
        help=f"recording after each episode's end (default {DEFAULT_AFTER_S / 60:g} min)",
    )
    parser.add_argument(
        "--whole",
        action="store_true",
        help="each consenting patient's whole recording in the period, not only around episodes "
        "(what false alarms per day need; large)",
    )
    command(cmds, "exports", _exports, "list the research exports written, for recalls")
