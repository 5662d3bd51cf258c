"""``flarewatch admin patient profiles ID``: what each detection profile would have raised.

A care team picks a patient's detection profile (docs/alerts.md) knowing only the figures of the
evaluation over many people. This command replays the patient's own stored samples (InfluxDB or
SQLite, as the service is configured) through the service's detectors under every profile, and
scores each on the episodes the care team labelled: the alarms a profile would have raised per
day of wear, the reactions it would have caught and how much sooner or later, and the false
alarms it would have raised again (:mod:`models.profile_comparison`). Only counts are printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Final

from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from flarewatch.output_files import check_writable, writing
from flarewatch.progress import percent_progress
from flarewatch.settings import load_settings
from models.profiles import DetectionProfile
from service.cli_tables import parse_time
from service.db.care_teams import get_patient
from service.episode_labels_cli import CommandFactory
from service.episodes.labels import reviewed_episodes
from service.stores.factory import STORE_SETTINGS_HINT, describe_store, opened_store
from service.stores.reading import READ_SPAN_MS, stored_batches

DEFAULT_DAYS: Final = 30.0
"""A month: what the personal profile's calibration remembers (CALIBRATION_MEMORY_S)."""
MAX_DAYS: Final = 366.0


def _profiles(args: argparse.Namespace, session: Session) -> int:
    from models.artifacts import default_bank
    from models.profile_comparison import compare_profiles, comparison_json, write_comparison

    if not 0 < args.days <= MAX_DAYS:
        raise ConfigError(f"--days must be more than 0 and at most {MAX_DAYS:g}")
    patient = get_patient(session, args.patient_id)
    until_s = parse_time(args.until)
    since_s = until_s - args.days * 86_400.0
    episodes = reviewed_episodes(session, patient.id, since_s, until_s)
    current = DetectionProfile(patient.detection_profile)
    # The replay takes minutes for a month. Every transaction holds the service's one-writer
    # lock (service/db/session.py) until it ends: kept open, it would hold up every alert.
    session.commit()
    if args.plot is not None:
        check_writable(args.plot, "--plot")  # before the replay, not after it
    start_ms, end_ms = int(since_s * 1000), int(until_s * 1000)
    settings = load_settings(getattr(args, "config", None))
    with opened_store(settings) as store, percent_progress() as progress:
        spans = -(-(end_ms - start_ms) // READ_SPAN_MS)
        task = progress.add_task("replaying under every profile", total=spans)
        comparison = compare_profiles(
            default_bank(confirmer_path=settings.service.confirmer_path),
            stored_batches(
                store,
                patient.id,
                start_ms,
                end_ms,
                on_span=lambda: progress.advance(task),
            ),
        )
    if comparison.samples == 0:
        print(
            f"no stored samples of patient {patient.id} in the {args.days:g} days to "
            f"{dt.datetime.fromtimestamp(until_s, dt.UTC):%Y-%m-%d %H:%MZ} in "
            f"{describe_store(settings)}. {STORE_SETTINGS_HINT}",
            file=sys.stderr,
        )
        return 1
    if args.plot is not None:
        from models.report import plot_profile_comparison

        with writing("--plot", args.plot):
            plot_profile_comparison(comparison, episodes, args.plot)
    if args.json:
        print(json.dumps(comparison_json(comparison, episodes), indent=2))
    else:
        write_comparison(comparison, episodes, sys.stdout, current=current)
    return 0


def add_profile_review_command(
    patient_cmds: argparse._SubParsersAction[argparse.ArgumentParser], command: CommandFactory
) -> None:
    """Add ``admin patient profiles``."""
    parser = command(
        patient_cmds,
        "profiles",
        _profiles,
        "what each detection profile would have raised on this patient's stored samples",
    )
    parser.add_argument("patient_id")
    parser.add_argument(
        "--days", type=float, default=DEFAULT_DAYS, help="how far back to replay (default 30)"
    )
    parser.add_argument(
        "--until", help="end of the replay, ISO 8601 (default: now; UTC if no zone)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--plot", type=Path, help="also draw each profile's alarms over time to this PNG"
    )
