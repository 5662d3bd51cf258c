"""``flarewatch admin research export``: consenting patients' episodes and recordings for research.

See :mod:`service.research_export` for what goes in and how it is pseudonymised, and
docs/research.md for the folder it writes.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Final

from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from flarewatch.progress import percent_progress
from flarewatch.settings import load_settings, require_secret_key
from service.cli_tables import parse_time
from service.episode_labels_cli import CommandFactory
from service.research_export import (
    DEFAULT_AFTER_S,
    DEFAULT_BEFORE_S,
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
            plan, store, secret_key, args.out, windows, recorded, lambda: progress.advance(task)
        )
    print(
        f"{summary.episodes} episodes of {summary.subjects} consenting patients "
        f"({summary.samples} samples) written to {args.out}; {summary.reactions} real reactions "
        "in episodes.csv"
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


def add_research_commands(
    groups: argparse._SubParsersAction[argparse.ArgumentParser], command: CommandFactory
) -> None:
    """Add ``admin research export``."""
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
