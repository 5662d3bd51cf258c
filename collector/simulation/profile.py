"""Who a simulated patient is: the physiological constants their samples are generated from.

Ranges, with their sources (see also docs/collector.md, "Calibration"):

- Resting heart rate: 58-85 bpm. Fitbit wearers (fitbit_covid: Mishra et al., Nat Biomed Eng
  2020, MIT) have a daytime resting rate (no step for 10 min, 10:00-20:00) of 63-87 bpm; the E4
  baseline phase of stress-predict (Iqbal et al., Sensors 2022, MIT) has medians 67-89 bpm in all
  but two subjects (lab stress).
- Day-night difference of the resting rate (circadian rhythm plus the drop asleep): 3-12 bpm,
  median ~8 (fitbit_covid, 10:00-20:00 vs 01:00-05:00); here 2 x 1-3.5 bpm circadian swing plus
  3-8 bpm asleep.
- Walking: heart rate 95-116 bpm in minutes with >= 80 steps (fitbit_covid), ~25-40 bpm above
  rest, i.e. 40-70 bpm per unit of activity intensity at brisk walking (0.6).
- Reported heart-rate noise at 1 Hz: 0.2-0.7 bpm (the E4 reports a smoothed rate: second-to-
  second SD 0.12-1.3 bpm, median 0.33, in the baseline phase).
- Wrist skin temperature by day 29.5-33.5 °C (E4 after warm-up: quartiles 30.0-32.9 °C), rising
  ~1-1.5 °C at night and ~0.6 °C in the 10 min before sleep onset (GUIDE §3, confounders;
  Kräuchi et al., distal vasodilation precedes sleep onset).
- Optical heart-rate error is ~30 % larger during activity (GUIDE §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.errors import SimulationError
from flarewatch.topics import is_valid_id


@dataclass(frozen=True, slots=True)
class PatientProfile:
    """Constants of one simulated patient and their wearable; all units are in the names."""

    patient_id: str
    device_id: str
    index: int
    """Position in the cohort; with the cohort seed it selects the patient's random streams."""
    resting_hr_bpm: float = 65.0
    circadian_hr_amplitude_bpm: float = 2.5
    sleep_hr_drop_bpm: float = 5.5
    activity_hr_rise_bpm: float = 55.0
    hr_noise_bpm: float = 0.45
    sleep_onset_h: float = 23.0
    """Local clock hour of the usual sleep onset (may exceed 24 for after midnight)."""
    sleep_duration_h: float = 7.5
    tz_offset_h: float = 0.0
    """Local time = UTC + this offset; sleep and circadian rhythm follow local time."""
    skin_day_c: float = 31.8
    skin_night_rise_c: float = 1.2
    ambient_c: float = 23.0
    activity_bouts_per_day: float = 4.0
    battery_start_percent: float = 95.0
    battery_drain_percent_per_h: float = 0.7
    """~5.5 days from full to empty, typical of a fitness band measuring continuously."""

    def __post_init__(self) -> None:
        """Refuse ids that could not be used on the wire and nonsensical values."""
        for what, value in (("patient", self.patient_id), ("device", self.device_id)):
            if not is_valid_id(value):
                raise SimulationError(f"{what} id {value!r} is not a valid contract id")
        if not 30 <= self.resting_hr_bpm <= 120:
            raise SimulationError(f"resting_hr_bpm {self.resting_hr_bpm} outside 30-120")
        if not 1 <= self.sleep_duration_h <= 14:
            raise SimulationError(f"sleep_duration_h {self.sleep_duration_h} outside 1-14")


def patient_id_for(index: int) -> str:
    """Id of the cohort's patient at ``index``: ``p1``, ``p2``, ..."""
    return f"p{index + 1}"


def random_profile(seed: int, index: int, *, patient_id: str | None = None) -> PatientProfile:
    """A plausible, reproducible patient drawn from ``seed`` and their cohort ``index``."""
    rng = np.random.default_rng([seed, index, 0xF00D])
    pid = patient_id or patient_id_for(index)
    return PatientProfile(
        patient_id=pid,
        device_id=f"{pid}-band",
        index=index,
        resting_hr_bpm=float(rng.uniform(58, 85)),
        circadian_hr_amplitude_bpm=float(rng.uniform(1.0, 3.5)),
        sleep_hr_drop_bpm=float(rng.uniform(3, 8)),
        activity_hr_rise_bpm=float(rng.uniform(40, 70)),
        hr_noise_bpm=float(rng.uniform(0.2, 0.7)),
        sleep_onset_h=float(rng.uniform(22.0, 24.5)),
        sleep_duration_h=float(rng.uniform(6.5, 8.5)),
        skin_day_c=float(rng.uniform(29.5, 33.5)),
        skin_night_rise_c=float(rng.uniform(0.9, 1.6)),
        ambient_c=float(rng.uniform(21.0, 25.0)),
        activity_bouts_per_day=float(rng.uniform(1.5, 5.0)),
        battery_start_percent=float(rng.uniform(70, 100)),
        battery_drain_percent_per_h=float(rng.uniform(0.5, 1.0)),
    )
