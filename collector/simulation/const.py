"""Tunables and physiological figures of the simulator, each with its unit and where it comes from.

Figures marked GUIDE §3 are from the project's design guide, which cites: Ruiz-Garcia, Turner,
Boyle, JACI 2021 (heart rate +11.6 % in food-challenge reactions); Clark et al., Allergy 2007
(nasal skin +0.8 °C within 20 min); niacin flush (+0.6 °C); hot flashes at the finger
(+2.7 ± 0.2 °C for ~31 min); 72 % syncope in systemic-mastocytosis anaphylaxis; wrist skin
+0.6 °C in the 10 min before sleep; ~10 min sensor warm-up; optical HR error ~30 % higher
during activity.

Signals at rest, their noise, the steps and the dropouts are calibrated on the real recordings
shipped in data/recordings (both MIT licensed; measured per second / per minute, see
docs/collector.md "Calibration"):

- stress-predict: Iqbal et al., "Stress-Predict Dataset", Sensors 2022
  (github.com/italha-d/Stress-Predict-Dataset): 35 adults, Empatica E4 on the wrist, 1 Hz.
- fitbit_covid: Mishra et al., "Pre-symptomatic detection of COVID-19 from smartwatch data",
  Nature Biomedical Engineering 2020, via github.com/gireeshkbogu/AnomalyDetect: 8 people,
  49-95 days of Fitbit heart rate (every 5-60 s) and steps per minute.
"""

from __future__ import annotations

from typing import Final

MS_PER_H: Final = 3_600_000
MS_PER_DAY: Final = 24 * MS_PER_H

# --- daily schedule -------------------------------------------------------------------------------

BAND_OFF_MIN_S: Final = 15 * 60
BAND_OFF_MAX_S: Final = 35 * 60
"""Daily shower/charging break: the band is off, then needs its ~10 min warm-up (GUIDE §3)."""
CONTACT_GLITCHES_PER_DAY: Final = 8.0
CONTACT_GLITCH_MAX_S: Final = 45.0
"""Brief losses of skin contact (loose strap) of 3-45 s, a few per waking day."""

# --- signals --------------------------------------------------------------------------------------

NOISE_BLOCK_SAMPLES: Final = 600
"""Per-sample noise is drawn in blocks of this many sample slots, each from its own stream."""
NOISE_CACHE_BLOCKS: Final = 40
"""Noise blocks kept per patient (~2 blocks of each stream, float32): ~96 kB per patient."""
WARM_UP_GAP_SHARE: Final = 0.12
WARM_UP_TAU_S: Final = 200.0
"""A band put on reads most of the way to skin temperature from its first sample, then closes
the rest of the gap with tau = 200 s: 95 % after 10 min (GUIDE §3). The E4 recordings
(stress-predict) read 0.5 °C (median; quartile 1.1, p10 2.3 °C) below their 20-25 min level in
their first second and ~0.2 °C below after 2 min: 12 % of the ~9 °C skin-room gap, ~1 °C, is
left at the first sample."""
COOL_DOWN_TAU_S: Final = 300.0
"""A band taken off cools towards room temperature a little slower than it warms on skin."""
SLEEP_PRE_ONSET_RISE_C: Final = 0.6
SLEEP_PRE_ONSET_S: Final = 600.0
"""Wrist skin warms ~0.6 °C in the 10 min before sleep onset (GUIDE §3)."""
SLEEP_RAMP_S: Final = 3600.0
"""Further distal warming to the night level over the first hour of sleep."""
ACTIVITY_RAMP_UP_S: Final = 60.0
ACTIVITY_RAMP_DOWN_S: Final = 180.0
"""Heart rate follows exercise within ~1 min and recovers over a few minutes."""
ACTIVITY_SKIN_DROP_C: Final = 0.5
"""Wrist skin cools slightly during exercise (blood shunted to muscle, air flow)."""
ACTIVE_HR_NOISE_FACTOR: Final = 1.3
"""Optical heart-rate error is ~30 % higher during activity (GUIDE §3)."""
RR_JITTER_FRACTION: Final = 0.04
"""Beat-to-beat variability: ~40 ms around a 1 s interval, a normal resting RMSSD."""
SAMPLE_DROPOUT_PROBABILITY: Final = 0.002
"""Whole samples lost on the radio link (absent, not null)."""
HR_DROPOUT_PROBABILITY: Final = 0.003
"""Samples where the optical sensor finds no pulse although the band is worn (E4: 0.3 % of
seconds without heart rate, 0.28-0.43 % per subject, stress-predict)."""
SKIN_NOISE_C: Final = 0.015
SKIN_RESOLUTION_C: Final = 0.02
"""E4 skin temperature at rest: quantised to 0.02 °C, second-to-second SD 0.02 °C (median of
the subjects' baseline phase, stress-predict)."""

# --- motion and steps (calibrated on stress-predict E4 and fitbit_covid) --------------------------

ACC_SD_REST_G: Final = 0.0065
ACC_SD_REST_LOG_SD: Final = 0.45
"""Awake and seated, the per-second SD of |acceleration| has a median of 0.007 g (p25 0.005,
p10 0.003) in the E4 baseline and relax phases: the wrist is nearly still (stress-predict)."""
GESTURE_PROBABILITY_AWAKE: Final = 0.17
GESTURE_PROBABILITY_ASLEEP: Final = 0.02
GESTURE_SCALE_G: Final = 0.072
"""Seated people gesture: the E4 per-second value exceeds 0.04 g in 10 % of resting seconds,
0.09 g in 5 % and 0.2 g in 1 % (stress-predict baseline and relax). Modelled as single seconds of
extra movement, exponential with mean 0.072 g, in 17 % of seconds: that tail fits all three
points. Sleep has far fewer (assumption: no sleep recordings with an accelerometer)."""
ACC_SD_ASLEEP_G: Final = 0.003
"""Asleep the wrist is stiller than seated awake (assumption, between the E4 rest median and its
floor)."""
ACC_SD_MOTIONLESS_G: Final = 0.0015
"""Band off the wrist or a motionless patient (syncope): the E4 floor, p5 0.0013 g at rest."""
ACC_SD_WALK_BASE_G: Final = 0.05
ACC_SD_WALK_PER_INTENSITY_G: Final = 0.4
"""Walking: ~0.17 g strolling (intensity 0.3) to ~0.45 g running; seated gestures reach
0.2 g only in their top 1 % (stress-predict)."""
ACC_G_NOISE: Final = 0.006
GESTURE_ACC_G_SHARE: Final = 0.2
"""Mean |acceleration| at rest: 1.00 g, per-second SD 0.011 g including gestures (E4); a gesture
moves the mean by a fifth of its spread."""
POTTER_SPELL_S: Final = 15 * 60
POTTER_SPELL_SHARE: Final = 0.45
POTTER_BURST_PER_MIN: Final = 0.3
"""Outside walks, awake people alternate seated spells without a step and spells of pottering
about. Fitbit (fitbit_covid, 10:00-20:00): 11-28 % of minutes have steps, 4-11 minutes an hour
hold a short burst (< 40 steps), and 75-93 % of the step-free time lies in runs of >= 10 min.
Here each 15-min spell is 'up and about' with probability 0.45 and then each of its minutes holds
a burst with probability 0.3: ~8 bursts an hour, step-free spells of 15 min or more."""
POTTER_STEPS_MEDIAN: Final = 20.0
POTTER_STEPS_LOG_SD: Final = 0.8
POTTER_CADENCE_PER_S: Final = 1.6
"""A burst is a few paces: median 15-31 steps in the minutes with steps (fitbit_covid), at an
ordinary walking cadence (~1.6 steps/s); the wrist moves like a slow walk meanwhile."""
POTTER_INTENSITY: Final = 0.3
"""Activity level of a burst for the motion signals (a stroll)."""
MAX_CHUNK_SAMPLES: Final = 86_400
"""Longer ranges are generated in pieces to bound the samples-by-events temporary arrays."""
HR_WAVE_PERIODS_S: Final = (37.0, 260.0, 1400.0)
HR_WAVE_AMPLITUDES_BPM: Final = (1.0, 1.8, 2.2)
"""Slow heart-rate variability (respiration-free, minutes-scale drifts) as fixed sinusoids."""

# --- episodes (GUIDE §3) -------------------------------------------------------------------------

FLUSH_SKIN_RISE_C: Final = (0.6, 2.7)
"""From the niacin flush mean (+0.6 °C) to hot flashes at the finger (+2.7 °C)."""
FLUSH_HR_RISE_FRACTION: Final = (0.084, 0.148)
"""The 95 % CI of the +11.6 % of food-challenge reactions, as the evaluation injects them."""
FLUSH_RISE_S: Final = (3 * 60, 12 * 60)
FLUSH_PLATEAU_S: Final = (10 * 60, 30 * 60)
"""Hot flashes last ~31 min; mast-cell flushes minutes to half an hour."""
FLUSH_DECAY_S: Final = 15 * 60
ANAPHYLAXIS_HR_RISE_BPM: Final = (30.0, 60.0)
ANAPHYLAXIS_RISE_S: Final = (60, 180)
ANAPHYLAXIS_SUSTAIN_S: Final = (20 * 60, 40 * 60)
"""Untreated, the surge lasts; median time to arrest in fatal anaphylaxis is 5-30 min."""
ANAPHYLAXIS_DECAY_S: Final = 10 * 60
ANAPHYLAXIS_WARMING_PROBABILITY: Final = 0.6
ANAPHYLAXIS_SKIN_RISE_C: Final = (0.5, 1.5)
SYNCOPE_PROBABILITY: Final = 0.72
"""72 % of systemic-mastocytosis anaphylaxis had syncope (GUIDE §3)."""
SYNCOPE_DELAY_S: Final = (60, 5 * 60)
"""Stillness begins this long after the heart rate peaked."""
SYNCOPE_DURATION_S: Final = (5 * 60, 20 * 60)

# --- driver and command ---------------------------------------------------------------------------

MAX_CHUNK_MS: Final = 60_000
"""Simulated time generated per device per step (one outbox transaction per step)."""
TICK_S: Final = 0.25
"""Real-time pacing granularity: samples are handed over at most this late."""
REFRESH_S: Final = 0.25
"""Progress display refresh (terminal); without a terminal a log line every ``LOG_EVERY_S``."""
LOG_EVERY_S: Final = 5.0
DEFAULT_FLUSH_TIMEOUT_S: Final = 60.0
"""After the last sample, wait this long for the broker to acknowledge everything."""
EXIT_PENDING: Final = 3
"""Exit code when samples are still waiting in the outbox (they are sent on the next run)."""

AT_REST_BEFORE_S: Final = 10 * 60
"""A scripted episode ``at_rest`` finds the patient seated this long before its onset: the
detectors judge rest from the last 5 min without steps (models.const.REST_AFTER_ACTIVITY_S)."""
