"""Tunables of the detectors and their evaluation, each with its unit and the reason for its value.

Physiological figures are cited from ``/docs/models.md`` (sources listed there); detector
thresholds were chosen on the tuning half of the recordings only (see ``docs/evaluation.md``).
"""

from __future__ import annotations

from typing import Final

MODEL_VERSION: Final = "fw-detect-1.0.0"
"""Version stamped on every alarm; bump it whenever a default below or the artifact changes."""

# --- signal conditioning -------------------------------------------------------------------
HR_FAST_TAU_S: Final = 20.0
"""Smoothing of heart rate: optical HR jitters by several bpm sample to sample; 20 s keeps a
surge visible within half a minute."""

HR_REF_TAU_S: Final = 15 * 60.0
"""Short resting reference: follows posture and daily drift but not a surge of a few minutes."""

HR_REF_CLIP_FRAC: Final = 0.04
"""The reference moves toward at most +-4 % of itself per sample, so a surge cannot drag it up."""

TEMP_FAST_TAU_S: Final = 30.0
"""Wrist temperature sensors are slow and quantised (E4: 0.02 degC); 30 s removes the steps."""

TEMP_REF_TAU_S: Final = 10 * 60.0
"""Skin-temperature reference: flushes warm the skin over minutes, slower drifts are ambient."""

HR_MID_TAU_S: Final = 120.0
"""Two-minute average of heart rate: its gap to the fast one tells rising from falling."""

TEMP_MID_TAU_S: Final = 180.0
"""Three-minute average of skin temperature: its gap to the fast one is the warming slope."""

TEMP_REF_CLIP_C: Final = 0.05
"""The temperature reference moves toward at most 0.05 degC of warming per sample."""

ACC_SD_TAU_S: Final = 10.0
"""Smoothing of movement, so stillness means ten quiet seconds, not one."""

MAX_STEP_S: Final = 60.0
"""Longest time step an average integrates; longer silences are gaps, not slow samples."""

ACC_SD_ACTIVE_G: Final = 0.05
"""Movement above this standard deviation of |acceleration| counts as activity (E4 at rest:
median 0.007 g, 90th percentile 0.056 g in the stress-predict recordings)."""

ACC_SD_STILL_G: Final = 0.004
"""Below this the wrist is motionless (a syncope after a surge; real rest still shows ~0.007 g)."""

REST_AFTER_ACTIVITY_S: Final = 5 * 60.0
"""The heart rate takes minutes to settle after exercise; 'at rest' starts 5 min after the last
steps or movement (Apple's high-heart-rate alert waits 10 min of inactivity)."""

GAP_RESET_S: Final = 10 * 60.0
"""A silence this long means the band was off or out of range: restart the wear-time clock."""

WARMUP_S: Final = 10 * 60.0
"""No detection during the first 10 min of wear: the optical sensor and above all the skin
temperature settle after the band is put on (stress-predict README: ~10 min warm-up)."""

TEMP_WARMUP_S: Final = 15 * 60.0
"""Skin-temperature detection waits 5 min longer: the reference needs settled readings."""

NO_DATA_AFTER_S: Final = 5 * 60.0
"""Silence after which a 'no data' signal alarm is raised (distinct from 'patient in trouble')."""

NO_CONTACT_AFTER_S: Final = 60.0
"""Continuous loss of skin contact for this long raises a 'no contact' signal alarm."""

TOD_BINS: Final = 24
"""Hourly bins of the per-patient resting heart rate by time of day (circadian rhythm)."""

TOD_TAU_S: Final = 3 * 3600.0
"""Each hourly bin averages over about 3 days of that hour (3 h of in-bin time)."""

# --- anaphylaxis-like: rapid sustained surge at rest ------------------------------------------
SURGE_RISE_FRAC: Final = 0.15
"""Heart rate above the short resting reference by 15 %: above the mean +11.6 % of all allergic
reactions (Ruiz-Garcia 2021), below the anaphylactic surges it must catch."""

SURGE_MIN_BPM: Final = 10.0
"""... and by at least 10 bpm, so low resting rates do not turn noise into a surge."""

SURGE_TOD_MARGIN_FRAC: Final = 0.10
"""... and 10 % above this patient's usual resting rate at this hour (waking up, circadian rise)."""

SURGE_PERSIST_S: Final = 75.0
"""A surge must last 75 s: arousals and posture changes pass sooner; anaphylaxis does not."""

SURGE_CRITICAL_FRAC: Final = 0.30
"""A surge of 30 % or a surge followed by stillness is critical from the first alarm."""

SURGE_CRITICAL_AFTER_S: Final = 5 * 60.0
"""A surge still running after 5 min escalates to critical (median time to arrest in fatal
drug anaphylaxis is about 5 min, GUIDE section 1)."""

STILL_AFTER_SURGE_S: Final = 30.0
"""Motionless for 30 s during a surge episode: possible syncope (72 % of SM anaphylaxis)."""

# --- flush: skin warming with a heart-rate rise at rest -----------------------------------------
FLUSH_TEMP_RISE_C: Final = 0.35
"""Skin above its reference by 0.35 degC: below the smallest documented flush (+0.6 degC, niacin)
so the rising edge is caught early, above sensor quantisation and ambient drift."""

FLUSH_TEMP_SLOPE_C_PER_MIN: Final = 0.04
"""... and still warming by 0.04 degC/min (flushes rise over minutes; sleep onset ~0.06)."""

FLUSH_HR_RISE_FRAC: Final = 0.04
"""... with heart rate 4 % above reference (sleep onset warms the skin while the heart slows)."""

FLUSH_PERSIST_S: Final = 60.0
"""A flush condition must hold for one minute."""

# --- episodes ---------------------------------------------------------------------------------
RELEASE_PERSIST_S: Final = 10 * 60.0
"""An episode ends after 10 min below the release thresholds: hysteresis against flapping."""

MAX_EPISODE_S: Final = 2 * 3600.0
"""An episode that never calms down is closed after 2 h and the baselines start afresh."""

RELEASE_FRAC: Final = 0.5
"""Release thresholds are half the onset thresholds."""

CONFIRM_THRESHOLD: Final = 0.5
"""Probability above which the learned confirmer accepts a candidate alarm."""

# --- evaluation -------------------------------------------------------------------------------
EVAL_CHUNK_S: Final = 300.0
"""Replay feeds the detector bank 5-minute batches, as a gateway would after a short buffer."""
