"""The confounders an evaluation breaks its figures down by: stress phase, night, exercise, steps.

Free-living context is labelled per row once per recording (:func:`fitbit_context`); rates within
a context divide by the time spent in it (:func:`context_exposure_days`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.const import ACTIVITY_SIGNAL_MEMORY_S, EVAL_NIGHT_HOURS
from models.datasets import Recording
from models.recording import worn_intervals_s


def fitbit_context(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The free-living context of every row: night or day, after exercise, steps counted."""
    times = frame["time_s"].to_numpy(dtype="float64")
    steps = frame["steps"].fillna(0).to_numpy() if "steps" in frame else np.zeros(len(frame))
    prefix = np.concatenate([[0.0], np.cumsum(steps)])
    upto = np.arange(1, len(times) + 1)

    def steps_within(seconds: float) -> np.ndarray:
        """Steps in (t - seconds, t] for every row t."""
        since = np.searchsorted(times, times - seconds, side="right")
        return np.asarray(prefix[upto] - prefix[since])

    hours = (times % 86_400 // 3600).astype(int)
    return {
        "time": np.where(np.isin(hours, list(EVAL_NIGHT_HOURS)), "night", "day"),
        "exercise": np.where(
            steps_within(30 * 60.0) >= 500, "after exercise", "no recent exercise"
        ),
        # a day without a single step: the band (or its export) stopped counting them
        "steps": np.where(steps_within(ACTIVITY_SIGNAL_MEMORY_S) > 0, "counted", "none for a day"),
    }


Context = dict[str, np.ndarray]
"""Labels of every row of one recording per context name (see :func:`fitbit_context`)."""


def confounders_at(
    recording: Recording, frame: pd.DataFrame, time_s: float, context: Context | None = None
) -> dict[str, str]:
    """Context of a moment: stress phase, or the free-living context of its row.

    ``context`` is ``fitbit_context(frame)`` when the caller has it (computed once per recording).
    """
    row = int(np.searchsorted(frame["time_s"].to_numpy(), time_s, side="right")) - 1
    row = max(row, 0)
    if recording.source == "stress_predict":
        phase = str(frame["phase"].iloc[row]) if "phase" in frame else ""
        return {"phase": phase or "unlabelled"}
    labels_by_name = fitbit_context(frame) if context is None else context
    return {name: str(labels[row]) for name, labels in labels_by_name.items()}


def context_exposure_days(frame: pd.DataFrame, context: Context | None = None) -> dict[str, float]:
    """Days of wear in each free-living context (``"time = night"`` ...), as Recording.days counts.

    A false-alarm rate within a context divides by the time spent in it, not by all the days.
    """
    dt = worn_intervals_s(frame["time_s"].to_numpy())
    out: dict[str, float] = {}
    for name, labels in (fitbit_context(frame) if context is None else context).items():
        for value in np.unique(labels):
            out[f"{name} = {value}"] = float(dt[labels == value].sum()) / 86_400.0
    return out
