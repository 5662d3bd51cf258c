"""Synthetic episodes, injected into real recordings with documented magnitudes and time courses.

No public wearable recording holds a real flush or anaphylaxis, so positives are made by changing
the real signals of a real person for the length of an episode (everything else stays real):

* **flush** — skin warms by 0.6-2.7 degC (niacin flush +0.6 degC mean; hot flash at the finger
  +2.7 +- 0.2 degC for ~31 min: GUIDE section 3), reaching its peak in 3-12 min, holding 5-20 min,
  fading over 10-30 min; heart rate rises with it by 8.4-14.8 % (the 95 % CI of the mean +11.6 %
  in food-challenge reactions, Ruiz-Garcia et al., JACI 2021).
* **anaphylaxis-like** — heart rate surges by 20-60 % (above the +11.6 % of reactions of all
  severities; tachycardia > 100 bpm from a resting 70 is +43 %) within 1-5 min (median time to
  arrest in fatal drug anaphylaxis is ~5 min), holds 10-40 min; half warm the skin by 0.3-1.5 degC;
  72 % of episodes in systemic mastocytosis include syncope (GUIDE section 3): where motion is
  recorded the wrist goes still 1-5 min after onset.

Every draw comes from a ``numpy.random.Generator`` seeded by the caller: same seed, same episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.alarm import AlarmKind
from models.const import (
    INJECT_FLUSH_DECAY_S,
    INJECT_FLUSH_HR_RISE_FRAC,
    INJECT_FLUSH_PLATEAU_S,
    INJECT_FLUSH_RISE_S,
    INJECT_FLUSH_TEMP_RISE_C,
    INJECT_STILL_ACC_SD_G,
    INJECT_SURGE_DECAY_S,
    INJECT_SURGE_HR_RISE_FRAC,
    INJECT_SURGE_PLATEAU_S,
    INJECT_SURGE_RISE_S,
    INJECT_SURGE_TEMP_RISE_C,
    INJECT_SURGE_WARMING_SHARE,
    INJECT_SYNCOPE_AFTER_S,
    INJECT_SYNCOPE_SHARE,
)


@dataclass(frozen=True, slots=True)
class Episode:
    """One injected episode: when, how strong, how it unfolds (raised-cosine rise and decay)."""

    kind: AlarmKind
    onset_s: float
    rise_s: float
    plateau_s: float
    decay_s: float
    hr_rise_frac: float
    temp_rise_c: float
    syncope_after_s: float | None

    @property
    def end_s(self) -> float:
        """When the injected change is over."""
        return self.onset_s + self.rise_s + self.plateau_s + self.decay_s

    def envelope(self, time_s: np.ndarray) -> np.ndarray:
        """Fraction (0..1) of the full effect at each time."""
        t = time_s - self.onset_s
        rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / self.rise_s, 0.0, 1.0))
        fall_t = np.clip((t - self.rise_s - self.plateau_s) / self.decay_s, 0.0, 1.0)
        fall = 0.5 + 0.5 * np.cos(np.pi * fall_t)
        return np.where(t < 0, 0.0, np.minimum(rise, fall))


def draw_episode(rng: np.random.Generator, kind: AlarmKind, onset_s: float) -> Episode:
    """Draw an episode of ``kind`` starting at ``onset_s`` from the documented ranges."""
    if kind is AlarmKind.FLUSH:
        return Episode(
            kind=kind,
            onset_s=onset_s,
            rise_s=float(rng.uniform(*INJECT_FLUSH_RISE_S)),
            plateau_s=float(rng.uniform(*INJECT_FLUSH_PLATEAU_S)),
            decay_s=float(rng.uniform(*INJECT_FLUSH_DECAY_S)),
            hr_rise_frac=float(rng.uniform(*INJECT_FLUSH_HR_RISE_FRAC)),
            temp_rise_c=float(rng.uniform(*INJECT_FLUSH_TEMP_RISE_C)),
            syncope_after_s=None,
        )
    if kind is AlarmKind.ANAPHYLAXIS:
        warming = rng.random() < INJECT_SURGE_WARMING_SHARE
        syncope = rng.random() < INJECT_SYNCOPE_SHARE
        return Episode(
            kind=kind,
            onset_s=onset_s,
            rise_s=float(rng.uniform(*INJECT_SURGE_RISE_S)),
            plateau_s=float(rng.uniform(*INJECT_SURGE_PLATEAU_S)),
            decay_s=float(rng.uniform(*INJECT_SURGE_DECAY_S)),
            hr_rise_frac=float(rng.uniform(*INJECT_SURGE_HR_RISE_FRAC)),
            temp_rise_c=float(rng.uniform(*INJECT_SURGE_TEMP_RISE_C)) if warming else 0.0,
            syncope_after_s=float(rng.uniform(*INJECT_SYNCOPE_AFTER_S)) if syncope else None,
        )
    raise ValueError(f"no injection model for {kind}")


def inject(frame: pd.DataFrame, episodes: list[Episode], rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``frame`` with the episodes' changes applied to the signals it has."""
    out = frame.copy()
    time_s = out["time_s"].to_numpy(dtype="float64")
    for episode in episodes:
        window = (time_s >= episode.onset_s) & (time_s < episode.end_s)
        if not window.any():
            continue
        env = episode.envelope(time_s[window])
        if "hr_bpm" in out:
            hr = out.loc[window, "hr_bpm"].to_numpy(dtype="float64")
            out.loc[window, "hr_bpm"] = np.minimum(hr * (1.0 + episode.hr_rise_frac * env), 250.0)
        if "skin_temp_c" in out and episode.temp_rise_c > 0:
            temp = out.loc[window, "skin_temp_c"].to_numpy(dtype="float64")
            out.loc[window, "skin_temp_c"] = temp + episode.temp_rise_c * env
        if episode.syncope_after_s is not None:
            _make_still(out, time_s, episode, rng)
    return out


def _make_still(
    out: pd.DataFrame, time_s: np.ndarray, episode: Episode, rng: np.random.Generator
) -> None:
    """After a syncope the wrist stops moving: no steps, accelerometer noise only."""
    assert episode.syncope_after_s is not None
    still = (time_s >= episode.onset_s + episode.syncope_after_s) & (time_s < episode.end_s)
    n = int(still.sum())
    if not n:
        return
    if "acc_sd_g" in out:
        had = out.loc[still, "acc_sd_g"].notna().to_numpy()
        noise = rng.uniform(*INJECT_STILL_ACC_SD_G, size=n)
        out.loc[still, "acc_sd_g"] = np.where(had, noise, np.nan)
    if "steps" in out:
        out.loc[still, "steps"] = np.where(out.loc[still, "steps"].notna(), 0.0, np.nan)
