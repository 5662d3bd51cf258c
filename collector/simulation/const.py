"""Tunables and physiological figures of the simulator, each with its unit and where it comes from.

Figures marked GUIDE §3 are from the project's design guide, which cites: Ruiz-Garcia, Turner,
Boyle, JACI 2021 (heart rate +11.6 % in food-challenge reactions); Clark et al., Allergy 2007
(nasal skin +0.8 °C within 20 min); niacin flush (+0.6 °C); hot flashes at the finger
(+2.7 ± 0.2 °C for ~31 min); 72 % syncope in systemic-mastocytosis anaphylaxis; wrist skin
+0.6 °C in the 10 min before sleep; ~10 min sensor warm-up; optical HR error ~30 % higher
during activity.
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
NOISE_CACHE_BLOCKS: Final = 32
"""Noise blocks kept per patient (~2 blocks of each stream, float32): ~77 kB per patient."""
WARM_UP_TAU_S: Final = 200.0
"""The skin sensor approaches skin temperature with tau = 200 s: 95 % after 10 min (GUIDE §3)."""
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
HR_DROPOUT_PROBABILITY: Final = 0.01
"""Samples where the optical sensor finds no pulse although the band is worn."""
REST_STEP_RATE_PER_S: Final = 0.03
"""Occasional steps while awake at rest (standing up, a few paces)."""
MAX_CHUNK_SAMPLES: Final = 86_400
"""Longer ranges are generated in pieces to bound the samples-by-events temporary arrays."""
HR_WAVE_PERIODS_S: Final = (37.0, 260.0, 1400.0)
HR_WAVE_AMPLITUDES_BPM: Final = (1.0, 1.8, 2.2)
"""Slow heart-rate variability (respiration-free, minutes-scale drifts) as fixed sinusoids."""

# --- episodes (GUIDE §3) -------------------------------------------------------------------------

FLUSH_SKIN_RISE_C: Final = (0.6, 2.7)
"""From the niacin flush mean (+0.6 °C) to hot flashes at the finger (+2.7 °C)."""
FLUSH_HR_RISE_FRACTION: Final = (0.10, 0.20)
"""Around the +11.6 % (95 % CI 8.4-14.8) of food-challenge reactions."""
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
