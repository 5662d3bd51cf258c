"""Does a replay of a patient's first weeks predict their alarms in the weeks after it.

``flarewatch admin patient profiles`` shows a care team what each detection profile would have
raised on the patient's own history. This measures how far that history can be trusted: every
Fitbit wearer of ``data/recordings`` (all eight, untouched) is replayed under every profile
exactly as that command does, and the alarms per day of wear over the first ``--weeks`` are set
against those of the rest of the recording. Printed: one row per wearer, then per profile the
rank correlation (Spearman) and the largest ratio between the two rates over the wearers.

Usage: .venv/bin/python scripts/profile_history.py [--weeks 2]
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import track

from models.artifacts import default_bank
from models.const import EVAL_CHUNK_S
from models.datasets import load_fitbit
from models.profile_comparison import compare_profiles
from models.profiles import DetectionProfile
from models.recording import worn_intervals_s
from models.replay import chunk_by_time


def wearer_rates(weeks: float) -> pd.DataFrame:
    """Per wearer and profile: alarms per worn day before and after the first ``weeks``."""
    rows: list[dict[str, Any]] = []
    for recording in track(load_fitbit(split="all"), description="replaying the wearers"):
        time_s = recording.frame["time_s"].to_numpy()
        worn = worn_intervals_s(time_s)
        cut = time_s[0] + weeks * 7 * 86_400.0
        days = {
            "first": worn[time_s < cut].sum() / 86_400.0,
            "later": worn[time_s >= cut].sum() / 86_400.0,
        }
        if min(days.values()) < 1.0:
            print(f"{recording.subject}: under a day of wear before or after the cut; skipped")
            continue
        comparison = compare_profiles(
            default_bank(), chunk_by_time(recording.samples(recording.frame), EVAL_CHUNK_S)
        )
        for profile, run in comparison.runs.items():
            first = sum(1 for a in run.onsets if a.time_s < cut)
            rows.append(
                {
                    "wearer": recording.subject,
                    "profile": profile.value,
                    "first_days": round(days["first"], 1),
                    "later_days": round(days["later"], 1),
                    "first_per_day": first / days["first"],
                    "later_per_day": (len(run.onsets) - first) / days["later"],
                }
            )
    return pd.DataFrame(rows)


def agreement(rates: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per profile: Spearman correlation of the two rates and their largest ratio (+0.05/day)."""
    out: dict[str, dict[str, float]] = {}
    for profile in DetectionProfile:
        part = rates[rates["profile"] == profile.value]
        first, later = part["first_per_day"], part["later_per_day"]
        ratio = np.maximum((first + 0.05) / (later + 0.05), (later + 0.05) / (first + 0.05))
        out[profile.value] = {
            "spearman": round(float(first.rank().corr(later.rank())), 2),
            "largest_ratio": round(float(ratio.max()), 1),
        }
    return out


def main() -> None:
    """Print the table and the agreement per profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=float, default=2.0, help="history replayed first")
    args = parser.parse_args()
    rates = wearer_rates(args.weeks)
    table = rates.pivot(
        index="wearer", columns="profile", values=["first_per_day", "later_per_day"]
    )
    print(table.round(2).to_string())
    figures = agreement(rates)
    for profile, values in figures.items():
        print(f"{profile}: Spearman {values['spearman']}, largest ratio {values['largest_ratio']}")
    print(json.dumps({"weeks": args.weeks, "wearers": rates["wearer"].nunique(), **figures}))


if __name__ == "__main__":
    main()
