"""Scripted mast-cell episodes and their ground truth.

Shapes and figures (GUIDE §3, with its sources):

- ``flush``: skin warms by 0.6-2.7 °C over minutes (niacin flush: mean +0.6 °C; hot flashes at
  the finger +2.7 ± 0.2 °C lasting ~31 min; nasal skin +0.8 °C within 20 min in food challenges,
  Clark, Allergy 2007) with heart rate up 8.4-14.8 % of the resting rate (food-challenge
  reactions: +11.6 %, 95 % CI 8.4-14.8, Ruiz-Garcia et al., JACI 2021). No sweating, so no
  motion change.
- ``anaphylaxis``: a rapid, sustained heart-rate surge (+30-60 bpm within 1-3 min), optional
  warming, then, in most systemic-mastocytosis anaphylaxis (72 % had syncope), sudden stillness.
  Median time to cardiac arrest in fatal anaphylaxis is ~5-30 min, so the surge lasts tens of
  minutes unless treated.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from collector.errors import SimulationError
from collector.simulation.const import (
    ANAPHYLAXIS_DECAY_S,
    ANAPHYLAXIS_HR_RISE_BPM,
    ANAPHYLAXIS_RISE_S,
    ANAPHYLAXIS_SKIN_RISE_C,
    ANAPHYLAXIS_SUSTAIN_S,
    ANAPHYLAXIS_WARMING_PROBABILITY,
    AT_REST_BEFORE_S,
    FLUSH_DECAY_S,
    FLUSH_HR_RISE_FRACTION,
    FLUSH_PLATEAU_S,
    FLUSH_RISE_S,
    FLUSH_SKIN_RISE_C,
    SYNCOPE_DELAY_S,
    SYNCOPE_DURATION_S,
    SYNCOPE_PROBABILITY,
)


class EpisodeKind(StrEnum):
    """Kinds of scripted episodes."""

    FLUSH = "flush"
    ANAPHYLAXIS = "anaphylaxis"


@dataclass(frozen=True, slots=True)
class EpisodeScript:
    """Ask for an episode of ``kind`` in ``patient_id`` starting at ``onset_ms``."""

    patient_id: str
    kind: EpisodeKind
    onset_ms: int
    syncope: bool | None = None
    """Anaphylaxis only: force (True) or suppress (False) syncope; ``None`` draws it (72 %)."""
    at_rest: bool = False
    """The patient sits quietly from AT_REST_BEFORE_S before the onset to the end (no walks):
    a demonstration the detectors can see, which look for a flush at rest only. Otherwise the
    day's plan goes on, and a flush during a walk is, by design, not raised."""


@dataclass(frozen=True, slots=True)
class EpisodeTruth:
    """What actually happened in a realised episode, for testing detectors and alerts.

    ``offset_ms`` is when the signals are back within 10 % of their rise.
    """

    patient_id: str
    device_id: str
    kind: EpisodeKind
    onset_ms: int
    peak_ms: int
    offset_ms: int
    hr_rise_bpm: float
    skin_rise_c: float
    syncope_onset_ms: int | None = None
    syncope_offset_ms: int | None = None


@dataclass(frozen=True, slots=True)
class EpisodeEffect:
    """Additive changes an episode makes to the signals, and where the patient lies still."""

    hr_bpm: npt.NDArray[np.float64]
    skin_c: npt.NDArray[np.float64]
    still: npt.NDArray[np.bool_]
    seated: npt.NDArray[np.bool_]
    """Where the patient sits quietly (``EpisodeScript.at_rest``): no walks, no pottering."""


def parse_episode(text: str, start_ms: int, patient_ids: list[str]) -> EpisodeScript:
    """Parse ``patient:kind:at_s`` (patient as id or 1-based number) relative to ``start_ms``."""
    parts = text.split(":")
    if len(parts) != 3:
        raise SimulationError(f"episode {text!r} must look like p1:flush:60 (patient:kind:at_s)")
    who, kind, at = parts
    patient = f"p{who}" if who.isdigit() else who
    if patient not in patient_ids:
        raise SimulationError(f"episode {text!r}: no patient {patient!r} (have {patient_ids[:5]}…)")
    try:
        kind_enum = EpisodeKind(kind)
        at_s = float(at)
    except ValueError as exc:
        raise SimulationError(
            f"episode {text!r}: kind must be one of {[k.value for k in EpisodeKind]} and at_s "
            "a number of seconds after the start"
        ) from exc
    if at_s < 0:
        raise SimulationError(f"episode {text!r}: at_s must not be negative")
    return EpisodeScript(patient, kind_enum, start_ms + round(at_s * 1000))


def _smoothstep(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x = np.clip(x, 0.0, 1.0)
    result: npt.NDArray[np.float64] = x * x * (3.0 - 2.0 * x)
    return result


def _pulse(
    t_s: npt.NDArray[np.float64], rise_s: float, hold_s: float, decay_s: float
) -> npt.NDArray[np.float64]:
    """0 before 0, smooth rise to 1 over ``rise_s``, hold, exponential decay (τ = decay_s/2.3)."""
    up = _smoothstep(t_s / rise_s)
    after = np.maximum(t_s - rise_s - hold_s, 0.0)
    level: npt.NDArray[np.float64] = np.where(t_s < 0, 0.0, up * np.exp(-after * 2.3 / decay_s))
    return level


@dataclass(frozen=True, slots=True)
class RealisedEpisode:
    """An episode with all its random parameters drawn; evaluates its effect at any times."""

    truth: EpisodeTruth
    rise_s: float
    hold_s: float
    decay_s: float
    seated_from_ms: int | None = None
    """From when the patient sits quietly until the offset (``EpisodeScript.at_rest``)."""

    def effect(self, times_ms: npt.NDArray[np.int64]) -> EpisodeEffect:
        """Additive heart-rate and skin changes at ``times_ms`` and the stillness mask."""
        truth = self.truth
        t_s = (times_ms - truth.onset_ms) / 1000.0
        level = _pulse(t_s, self.rise_s, self.hold_s, self.decay_s)
        still = np.zeros(times_ms.shape, dtype=bool)
        if truth.syncope_onset_ms is not None and truth.syncope_offset_ms is not None:
            still = (times_ms >= truth.syncope_onset_ms) & (times_ms < truth.syncope_offset_ms)
        seated = np.zeros(times_ms.shape, dtype=bool)
        if self.seated_from_ms is not None:
            seated = (times_ms >= self.seated_from_ms) & (times_ms < truth.offset_ms)
        return EpisodeEffect(level * truth.hr_rise_bpm, level * truth.skin_rise_c, still, seated)


def realise(
    script: EpisodeScript, device_id: str, resting_hr_bpm: float, rng: np.random.Generator
) -> RealisedEpisode:
    """Draw the random parameters of a scripted episode (amplitudes, timings, syncope)."""
    onset = script.onset_ms
    syncope_on = syncope_off = None
    if script.kind is EpisodeKind.FLUSH:
        skin = float(rng.uniform(*FLUSH_SKIN_RISE_C))
        hr = resting_hr_bpm * float(rng.uniform(*FLUSH_HR_RISE_FRACTION))
        rise = float(rng.uniform(*FLUSH_RISE_S))
        hold = float(rng.uniform(*FLUSH_PLATEAU_S))
        decay = float(FLUSH_DECAY_S)
    else:
        hr = float(rng.uniform(*ANAPHYLAXIS_HR_RISE_BPM))
        warming = rng.random() < ANAPHYLAXIS_WARMING_PROBABILITY
        skin = float(rng.uniform(*ANAPHYLAXIS_SKIN_RISE_C)) if warming else 0.0
        rise = float(rng.uniform(*ANAPHYLAXIS_RISE_S))
        hold = float(rng.uniform(*ANAPHYLAXIS_SUSTAIN_S))
        decay = float(ANAPHYLAXIS_DECAY_S)
        syncope = rng.random() < SYNCOPE_PROBABILITY
        if script.syncope is not None:
            syncope = script.syncope
        delay = float(rng.uniform(*SYNCOPE_DELAY_S))
        length = float(rng.uniform(*SYNCOPE_DURATION_S))
        if syncope:
            syncope_on = onset + round((rise + delay) * 1000)
            syncope_off = syncope_on + round(length * 1000)
    peak = onset + round(rise * 1000)
    # back within 10 % of the rise: exp(-x·2.3/decay) = 0.1 at x = decay
    offset = onset + round((rise + hold + decay) * 1000)
    truth = EpisodeTruth(
        patient_id=script.patient_id,
        device_id=device_id,
        kind=script.kind,
        onset_ms=onset,
        peak_ms=peak,
        offset_ms=offset,
        hr_rise_bpm=hr,
        skin_rise_c=skin,
        syncope_onset_ms=syncope_on,
        syncope_offset_ms=syncope_off,
    )
    seated_from = onset - AT_REST_BEFORE_S * 1000 if script.at_rest else None
    return RealisedEpisode(truth, rise, hold, decay, seated_from)
