"""The real recordings shipped in ``data/recordings`` (README, licences and citations there).

* stress-predict (Iqbal et al., Sensors 2022, MIT): 35 sessions of ~55 min, Empatica E4, 1 Hz
  heart rate, skin temperature and movement, with the study phases (stress, hyperventilation...).
* Fitbit free-living (Mishra et al., Nat. Biomed. Eng. 2020, via AnomalyDetect, MIT): 8 people,
  weeks each, heart rate every 5-15 s and steps per minute, no skin temperature.

Subjects are split in two fixed halves: ``tuning`` (thresholds and the confirmer were fitted on
it) and ``holdout`` (the numbers reported in docs/evaluation.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from flarewatch.payloads import Sample
from models.const import SENSOR_COLUMNS
from models.errors import RecordingError
from models.recording import clean_recording, iter_samples, worn_intervals_s

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "recordings"
"""Default location of the recordings (the repository's data folder)."""

FITBIT_STEPS_PERIOD_S = 60.0
"""Fitbit steps are per minute, stamped at the minute's start; the count is known at its end."""

Split = Literal["tuning", "holdout", "all"]


@dataclass(frozen=True, slots=True)
class Recording:
    """One subject's real recording in the replay-CSV columns (plus ``phase`` for stress).

    ``own`` recordings are a user's files read by :mod:`models.own_recordings`.

    ``hidden`` names columns the detectors do not get, as from a band without those sensors;
    where episodes go and how they are injected still use the whole recording, so a run with
    hidden sensors meets the same episodes as one without.
    """

    source: Literal["stress_predict", "fitbit", "own"]
    subject: str
    frame: pd.DataFrame
    hidden: frozenset[str] = frozenset()

    def samples(self, frame: pd.DataFrame) -> Iterator[Sample]:
        """What the detectors get from ``frame`` (this recording, possibly injected)."""
        return iter_samples(frame, without=self.hidden)

    def without(self, sensors: Iterable[str]) -> Recording:
        """The recording as a band lacking ``sensors`` (keys of SENSOR_COLUMNS) would see it."""
        hidden = {column for sensor in sensors for column in SENSOR_COLUMNS[sensor]}
        return dataclasses.replace(self, hidden=self.hidden | hidden)

    @property
    def days(self) -> float:
        """Length covered by data, counting only gaps under 1 h (time actually worn)."""
        return float(worn_intervals_s(self.frame["time_s"].to_numpy()).sum()) / 86_400.0


def in_split(index: int, split: Split) -> bool:
    """Alternate subjects (in name order) between the tuning and the held-out halves."""
    if split == "all":
        return True
    return (index % 2 == 1) == (split == "holdout")


def load_stress_predict(
    data_dir: Path = DATA_DIR, split: Split = "all", limit: int | None = None
) -> list[Recording]:
    """The stress-predict sessions of ``split`` (each keeps its ``phase`` column)."""
    paths = sorted((data_dir / "stress_predict").glob("S*.csv.gz"))
    if not paths:
        raise RecordingError(data_dir / "stress_predict", "no S*.csv.gz session files")
    out: list[Recording] = []
    for path in _chosen(paths, split, limit):
        raw = pd.read_csv(path, dtype={"phase": "string"})
        frame, _ = clean_recording(raw, path)
        phases = raw[["time_s", "phase"]].drop_duplicates("time_s")
        frame = frame.merge(phases, on="time_s", how="left")
        frame["phase"] = frame["phase"].fillna("").astype(str)
        out.append(Recording("stress_predict", path.name.split(".")[0], frame))
    return out


def load_fitbit(
    data_dir: Path = DATA_DIR,
    split: Split = "all",
    limit: int | None = None,
    max_days: float | None = None,
) -> list[Recording]:
    """Fitbit users of ``split``: heart rate merged with steps stamped when they are known."""
    paths = sorted((data_dir / "fitbit_covid").glob("*_hr.csv.gz"))
    if not paths:
        raise RecordingError(data_dir / "fitbit_covid", "no *_hr.csv.gz files")
    out: list[Recording] = []
    for hr_path in _chosen(paths, split, limit):
        user = hr_path.name.removesuffix("_hr.csv.gz")
        hr = pd.read_csv(hr_path)
        steps = pd.read_csv(hr_path.with_name(f"{user}_steps.csv.gz"))
        steps = steps[steps["steps"] > 0].copy()
        steps["time_s"] = steps["time_s"] + FITBIT_STEPS_PERIOD_S
        merged = pd.concat([hr, steps], ignore_index=True).sort_values("time_s", kind="stable")
        merged = merged.groupby("time_s", as_index=False).first()
        if max_days is not None:
            merged = merged[merged["time_s"] < merged["time_s"].iloc[0] + max_days * 86_400.0]
        frame, _ = clean_recording(merged, hr_path)
        out.append(Recording("fitbit", user, frame))
    return out


def _chosen(paths: list[Path], split: Split, limit: int | None) -> list[Path]:
    """The files of ``split``, the first ``limit`` of them (0 means none, None all)."""
    chosen = [path for i, path in enumerate(paths) if in_split(i, split)]
    return chosen if limit is None else chosen[: max(limit, 0)]
