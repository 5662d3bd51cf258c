"""Where the evaluation injects episodes: random onsets at rest, after the wearer settled.

Both sources draw onsets only at rest (no steps and no sustained movement in the settling time
before), after the detectors had time to learn the wearer, so that an injected episode meets the
state the detectors would have on the untouched recording.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.const import (
    ACC_SD_ACTIVE_G,
    ACC_SD_TAU_S,
    EVAL_FITBIT_BLOCK_S,
    EVAL_MIN_EPISODE_SPACING_S,
    EVAL_ONSET_LEAD_S,
    EVAL_ONSET_TAIL_S,
    EVAL_STRESS_ONSET_WINDOW_S,
    GAP_RESET_S,
    REST_AFTER_ACTIVITY_S,
)


def rest_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows with no steps or movement in the settling time before them."""
    time_s = frame["time_s"].to_numpy(dtype="float64")
    active = np.zeros(len(frame), dtype=bool)
    if "steps" in frame:
        active |= frame["steps"].fillna(0).to_numpy() > 0
    if "acc_sd_g" in frame and frame["acc_sd_g"].notna().any():
        # the detector's smoothing (SignalTracker): exponential, time constant ACC_SD_TAU_S
        movement = (
            frame["acc_sd_g"]
            .ewm(
                halflife=pd.Timedelta(seconds=ACC_SD_TAU_S * np.log(2.0)),
                times=pd.to_datetime(frame["time_s"], unit="s"),
                ignore_na=True,
            )
            .mean()
        )
        active |= movement.fillna(0).to_numpy() > ACC_SD_ACTIVE_G
    active_times = time_s[active]
    if not len(active_times):
        return np.ones(len(frame), dtype=bool)
    idx = np.searchsorted(active_times, time_s, side="right") - 1
    last = np.where(idx >= 0, active_times[np.maximum(idx, 0)], -np.inf)
    return np.asarray(time_s - last >= REST_AFTER_ACTIVITY_S)


def _segments(time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end time of the wear segment (no gap >= GAP_RESET_S) of each row."""
    breaks = np.flatnonzero(np.diff(time_s) >= GAP_RESET_S) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks - 1, len(time_s) - 1]
    seg = np.searchsorted(starts, np.arange(len(time_s)), side="right") - 1
    return time_s[starts][seg], time_s[ends][seg]


def fitbit_onsets(frame: pd.DataFrame, rng: np.random.Generator) -> list[float]:
    """Random at-rest onsets, one per 8 h block where wear allows, at least 4 h apart."""
    has_hr = frame["hr_bpm"].notna().to_numpy()
    time_s = frame["time_s"].to_numpy(dtype="float64")
    seg_start, seg_end = _segments(time_s[has_hr])
    ok = (
        (time_s[has_hr] - seg_start >= EVAL_ONSET_LEAD_S)
        & (seg_end - time_s[has_hr] >= EVAL_ONSET_TAIL_S)
        & rest_mask(frame)[has_hr]
    )
    candidates = time_s[has_hr][ok]
    if not len(candidates):
        return []
    blocks = ((candidates - time_s[0]) // EVAL_FITBIT_BLOCK_S).astype(int)
    onsets: list[float] = []
    for block in np.unique(blocks):
        choices = candidates[blocks == block]
        onset = float(choices[rng.integers(len(choices))])
        if not onsets or onset - onsets[-1] >= EVAL_MIN_EPISODE_SPACING_S:
            onsets.append(onset)
    return onsets


def stress_onset(frame: pd.DataFrame, rng: np.random.Generator) -> float | None:
    """A random at-rest onset 20-42 min into a stress-predict session."""
    time_s = frame["time_s"].to_numpy(dtype="float64")
    rel = time_s - time_s[0]
    low, high = EVAL_STRESS_ONSET_WINDOW_S
    ok = (rel >= low) & (rel <= high) & rest_mask(frame) & frame["hr_bpm"].notna().to_numpy()
    choices = time_s[ok]
    return float(choices[rng.integers(len(choices))]) if len(choices) else None
