"""Tunables of the detectors and their evaluation, each with its unit and the reason for its value.

Physiological figures are cited from ``/docs/models.md`` (sources listed there); detector
thresholds were chosen on the tuning half of the recordings only (see ``docs/evaluation.md``).
"""

from __future__ import annotations

from typing import Final

MODEL_VERSION: Final = "fw-detect-1.12.5"
"""Version stamped on every alarm; bump it whenever a default below or the artifact changes."""

# --- signal conditioning -------------------------------------------------------------------
HR_FAST_TAU_S: Final = 20.0
"""Smoothing of heart rate: optical HR jitters by several bpm sample to sample; 20 s keeps a
surge visible within half a minute."""

HR_REF_TAU_S: Final = 15 * 60.0
"""Short resting reference: follows posture and daily drift but not a surge of a few minutes."""

HR_REF_WARMUP_TAU_S: Final = 5 * 60.0
"""During the wear warm-up the heart-rate reference follows within minutes, so it stands at the
settled rate when detection starts (1.3: an E4 session starting at 60 bpm and settling at 90 in
the first 2 min left the reference at 56 for the whole session, two false alarms)."""

HR_REF_RECOVERY_TAU_S: Final = 5 * 60.0
"""For half an hour after exercise a heart rate below the reference pulls it down within ~5 min
(two-minute average, so single low readings do not). Before 1.3 it followed with 15 min and sat
above the recovering rate, hiding surges (sensitivity after exercise 0.36)."""

EXERCISE_RECOVERY_S: Final = 30 * 60.0
"""How long the heart keeps slowing after exercise; the evaluation's "after exercise" group uses
the same 30 min."""

HR_REF_CLIP_FRAC: Final = 0.04
"""The reference moves toward at most +-4 % of itself per sample, so a surge cannot drag it up."""

TEMP_FAST_TAU_S: Final = 30.0
"""Wrist temperature sensors are slow and quantised (E4: 0.02 degC); 30 s removes the steps."""

TEMP_REF_TAU_S: Final = 10 * 60.0
"""Skin-temperature reference: flushes warm the skin over minutes, slower drifts are ambient."""

HR_MID_TAU_S: Final = 120.0
"""Two-minute average of heart rate: its gap to the fast one tells rising from falling."""

HR_SLOW_TAU_S: Final = 5 * 60.0
"""Five-minute average of the two-minute heart rate: after exercise a recovering heart stays below
it (1.6, the non-recovery path)."""

HR_NOISE_TAU_S: Final = 120.0
"""Signal quality is the scatter of heart-rate readings around the smoothed rate over ~2 min."""

TEMP_MID_TAU_S: Final = 180.0
"""Three-minute average of skin temperature: its gap to the fast one is the warming slope."""

TEMP_REF_MAX_RISE_C_PER_MIN: Final = 0.02
"""Once the sensor has settled the temperature reference rises by at most 0.02 degC/min, slower
than the slowest injected flush (+0.6 degC in 12 min = 0.05 degC/min), so slow ambient warming is
followed but a flush is not. (Before 1.2 a per-sample clip of 0.05 degC let it rise only
~0.005 degC/min at 1 Hz, so after a band-on warm-up it sat ~0.7 degC below the skin for an hour.)"""

TEMP_REF_FOLLOW_TAU_S: Final = 60.0
"""While the sensor warms up (E4: 0.5-2.3 degC low at first, ~10 min to settle) and whenever the
skin is below it, the reference follows the skin within a minute: the rise is then the warming
since the recent low, not since a cooler moment long ago."""

ACC_SD_TAU_S: Final = 30.0
"""Smoothing of movement: exercise is sustained movement, a gesture is not; stillness means
half a minute without it."""

MAX_STEP_S: Final = 60.0
"""Longest time step an average integrates; longer silences are gaps, not slow samples."""

ACC_SD_ACTIVE_G: Final = 0.10
"""Smoothed movement above this standard deviation of |acceleration| counts as exercise. Seated
people gesture: in the stress-predict recordings the per-second value exceeds 0.05 g 10 % of the
time (median 0.007 g), while walking keeps it around 0.2-0.4 g."""

ACC_SD_EXERCISE_G: Final = 0.20
"""Smoothed movement at walking level (0.2-0.4 g): exercise warms the skin by itself, so a
flush is sought only without it. Seated gesturing (above ACC_SD_ACTIVE_G, below this) does not
stop flush detection: on the tuning split it had hidden 4 flushes of one fidgeting subject and
lifting it added no false alarm (1.3)."""

ACC_SD_STILL_G: Final = 0.004
"""Below this the wrist is motionless (a syncope after a surge; real rest still shows ~0.007 g)."""

REST_AFTER_ACTIVITY_S: Final = 5 * 60.0
"""The heart rate takes minutes to settle after exercise; 'at rest' starts 5 min after the last
steps or movement (Apple's high-heart-rate alert waits 10 min of inactivity)."""

ACTIVITY_SIGNAL_MEMORY_S: Final = 24 * 3600.0
"""A band that reported no steps (of any count) and no motion for a day is treated as one
without an activity signal: its surge alarms say that walking cannot be ruled out (a band
without step counting makes ~17 times the false surge alarms, docs/evaluation.md)."""

WORN_GAP_S: Final = 3600.0
"""Exposure (patient-days of wear) counts the time between readings only across gaps shorter than
this: a band silent for an hour or more was not being worn (charging, in a drawer)."""

GAP_RESET_S: Final = 10 * 60.0
"""A silence this long means the band was off or out of range: restart the wear-time clock."""

WARMUP_S: Final = 15 * 60.0
"""No detection during the first 15 min of wear: the optical sensor settles and the baselines need
readings (stress-predict README: skin temperature climbs for ~10 min after the band goes on)."""

TEMP_WARMUP_S: Final = 15 * 60.0
"""Skin-temperature detection waits at least as long, and then until the skin stops warming."""

TEMP_RESETTLE_S: Final = TEMP_MID_TAU_S
"""Back on the skin after a short removal (or a contact blip), skin-temperature detection waits
this long, and then until the skin stops warming: the three-minute average must hold readings
taken since, or its slope still says "settled" while the sensor re-warms (1.11.1)."""

BACK_ON_REWARMED_C: Final = 0.1
"""A temperature sensor back on the skin after moments off it (a contact loss, or a reading's drop
that said the band left) is re-warming while its readings are this far below the 30-s average
from before: they are dropped (at most TEMP_RESETTLE_S), for they are the sensor's, not the skin's
(1.12.4). Off the skin for ten seconds a sensor cools by about 1 degC; a loose strap's blips of a
few seconds leave it warm and cost nothing. (Until 1.12.4 a sensor back 0.5 degC colder settled
again, its readings folded in: its re-warming held a surge under way back as a cooling skin, and
each blip hid a flush under way.)"""

REWARMING_RISE_C: Final = 0.05
REWARMED_AFTER_S: Final = 30.0
"""... or until they have not risen REWARMING_RISE_C for REWARMED_AFTER_S: the sensor is as warm
as the skin, which cooled while it was off (S32's by 0.45 degC in a minute). A sensor back 1 degC
colder re-warms within about a minute; the E4 reads in steps of 0.02 degC."""

SENSOR_LIFT_DROP_C: Final = 0.5
"""A skin reading this far below its 30-s average (but not OFF_WRIST_DROP_C) says the sensor left
the skin for moments: a band without a contact bit (most bands, the E4) shifting on the wrist.
Its readings are dropped while it re-warms, as after a contact loss (1.12.5). No skin cools that
fast (the fastest cooling while worn in the 35 stress-predict sessions was 0.25 degC/min). There,
readings this far below come from band shifts (S07: 1.2 degC, re-warmed within 75 s onto a spot
0.35 degC cooler; S01: 0.85 degC, re-warming slowly), from the jumpy first minutes of S29's
warm-up, and from bands taken off at the end. Until 1.12.5 the dip and the re-warming were the
skin's: the dip held a surge under way back as a cooling skin (S15's missed), and the re-warming,
over a reference that had followed the dip down, read as a flush (a sensor lifted every 5 min:
16 alarms in the 35 sessions instead of 3)."""

TEMP_MAX_WARMUP_S: Final = 25 * 60.0
"""... but at most 25 min: skin that keeps warming longer (relaxing, a warm room) is then followed
by the rate-limited reference like any other slow warming."""

TEMP_SETTLED_SLOPE_C_PER_MIN: Final = 0.02
"""The warm-up is over once the skin temperature changes by less than this: in some E4 sessions
it keeps climbing well past 15 min."""

SURGE_MIN_TEMP_SLOPE_C_PER_MIN: Final = -0.02
"""Where skin temperature is measured, a surge with the skin cooling is not anaphylaxis-like:
reactions dilate peripheral vessels (blood flow +19.7 %, Ruiz-Garcia 2021) while mental stress
and hyperventilation constrict them (skin cools; stress-predict README). While the skin cools the
surge evidence holds (1.9; until 1.8 it restarted from zero): the slope estimate is below this
44 % of settled E4 wear, so a surge lost minutes of evidence to a few seconds of it. Tuning (3
seeds, 216 E4 surges): 0.921 -> 0.935, no alarm added; held out 0.892 -> 0.912, no alarm added."""

NO_DATA_AFTER_S: Final = 5 * 60.0
"""Time without a heart-rate reading after which a 'no data' signal alarm is raised (distinct
from 'patient in trouble'); other readings (steps, temperature) do not count."""

NO_CONTACT_AFTER_S: Final = 60.0
"""Continuous loss of skin contact for this long raises a 'no contact' signal alarm."""

OFF_WRIST_DROP_C: Final = 2.0
"""A skin-temperature reading this far below its 30-s average means the band left the wrist (most
bands have no contact bit; the E4 keeps reporting a heart rate off the wrist). In the 35
stress-predict sessions the largest drop while worn was 1.2 degC (S07: the band shifted and the
skin read warm again within a minute), while the four bands taken off at the end of a session
fell 4.5-7.7 degC below it within half a minute. A wrist does not cool that fast: hyperventilation
and cold rooms cool it by tenths of a degree a minute."""

OFF_WRIST_FALL_C_PER_MIN: Final = 0.6
"""... or the skin cooling faster than this (the 30-s against the three-minute average): a band's
sensor cooling off the wrist more slowly than a reading's 2 degC drop shows (in a pocket, or a
housing that holds the warmth). The fastest cooling while worn in the 35 stress-predict sessions
was 0.25 degC/min (S07); a band taken off cools by several degrees a minute."""

OFF_WRIST_REWARM_C: Final = 1.0
"""... and it is back on once its 30-s average is this much warmer than its coldest since it came
off (a band lying on a table only cools towards the room; a wrist warms it by degrees)."""

OFF_WRIST_LEVEL_C: Final = 0.3
OFF_WRIST_LEVEL_S: Final = 120.0
WRIST_MIN_C: Final = 28.0
"""... or once its 30-s average has held within OFF_WRIST_LEVEL_C for OFF_WRIST_LEVEL_S at
WRIST_MIN_C or warmer (1.12.2): a band put on warmer than the skin (off a charger, out of a
pocket or a hot car) cools onto the wrist as fast as one taken off, then holds at the skin's
temperature. A band taken off cools on towards the room (by about a fifth of its distance to it a
minute: it holds 0.3 degC for two minutes only within about a degree of the room's temperature).
91.5 % of the worn readings of the 35 stress-predict sessions are at 28 degC or warmer (the E4
reads wrists cool: 70 % at 30 or warmer); few rooms are. Where they meet, a band that reports
motion must also have moved (at least ACC_SD_STILL_G) while it held that level (1.12.3): a wrist
moves, a table does not. Until then a band left in a room of 28 degC or more counted as worn
after two minutes, and the E4, which reports a heart rate from the table without a contact bit,
had that rate, climbing like a surge, judged like a wearer's. A band without motion still counts
as worn there. A band taken off in a room within about 2.5 degC of the skin is not seen to leave
at all (it cools too little and too slowly), with or without this rule."""

TOD_BINS: Final = 24
"""Hourly bins of the per-patient resting heart rate by time of day (circadian rhythm)."""

TOD_TAU_S: Final = 3 * 3600.0
"""Each hourly bin averages over about 3 days of that hour (3 h of in-bin time)."""

TOD_MIN_HISTORY_S: Final = 30 * 60.0
"""An hourly bin is trusted after 30 min of resting data in it; until then (new patient, an hour
never seen at rest) the resting rate over all hours stands in for it."""

TOD_UPDATE_CLIP_FRAC: Final = 0.25
"""Resting baselines learn at most 25 % above the short resting reference (the everyday awakening
rises of 15-25 % are still learned): a surge building up
before its alarm must not teach the detector that it is usual (version 1.1 seeded an empty hour
with a surging 99.8 bpm against 64.9 the hour before, hiding a +44 % surge)."""

# --- anaphylaxis-like: rapid sustained surge at rest ------------------------------------------
SURGE_RISE_FRAC: Final = 0.15
"""Heart rate above the short resting reference by 15 %: above the mean +11.6 % of all allergic
reactions (Ruiz-Garcia 2021), below the anaphylactic surges it must catch."""

SURGE_MIN_BPM: Final = 10.0
"""... and by at least 10 bpm, so low resting rates do not turn noise into a surge."""

SURGE_TOD_MARGIN_FRAC: Final = 0.20
"""... and 20 % above this patient's usual resting rate at this hour (waking up, circadian rise)."""

SURGE_SCORE_FRAC_S: Final = 70.0
"""Evidence needed for a surge alarm: the excess rise over SURGE_RISE_FRAC integrated over time
(fraction x seconds, a CUSUM that dips below the threshold shrink rather than reset). A +45 %
surge alarms ~3 min after crossing, a +25 % one after ~12 min: night arousals and posture changes
(+15-25 % for 2-5 min) mostly fall short. Chosen on the tuning split, as in every version, as the
smallest value keeping false alarms <= 0.2 per Fitbit patient-day (1.4: 65 gave 0.204, 70 0.182;
see docs/evaluation.md for the trade-off against delay)."""

PROFILE_PERSONAL_TARGET_PER_DAY: Final = 0.2
"""The 'personal' profile (1.6) calibrates each patient's surge evidence: once they have worn the
band for a few days, the evidence needed is the smallest level of CALIBRATION_LEVELS that their
own rest reached at most this often per day (issue 4's false-alarm target). Heart rates differ:
with one fixed level the tuning Fitbit users made 0.01 to 0.36 false alarms a day. Tuning split:
sensitivity 0.865, median delay 6.0 min, 0.179 a day (balanced: 0.841, 7.0, 0.185). Held out
it found more (0.861, 5.0 min, against 0.839) but made 0.247 a day, above the target the
balanced profile meets, so it is a choice for a care team, not the default (docs/evaluation.md)."""

CALIBRATION_LEVELS: Final[tuple[float, ...]] = (20.0, 30.0, 45.0, 70.0, 100.0, 150.0)
"""Evidence levels (frac·s) the calibration counts excursions at and chooses from: roughly x1.5
apart. The lowest alarms a +45 % surge about a minute after it crosses the rise threshold; the
highest (about twice the fixed default) bounds how deaf a noisy patient's detector may become."""

CALIBRATION_MEMORY_S: Final = 30 * 86_400.0
"""The excursion counts fade with this time constant: a month of history, so one bad week moves
the level but does not set it for good (7 days chased bursts: 0.195 false alarms a day on the
tuning split against 0.172, for no sensitivity)."""

CALIBRATION_MIN_HISTORY_S: Final = 3 * 86_400.0
"""Until three days of data are in, the fixed SURGE_SCORE_FRAC_S applies: after one quiet day any
level looks rare. (One day on the tuning split: 0.862 at 0.182 a day, against 0.858 at 0.172.)"""

CALIBRATION_REFRESH_S: Final = 3600.0
"""The counts are aged at least hourly, and whenever an excursion ends (cheap per sample)."""

RECOVERY_SURGE_TOD_FRAC: Final = 0.45
"""Non-recovery path (1.6): within 30 min after exercise, once the steps have stopped for 5 min, a
heart that does not slow down (two-minute rate not below its five-minute average) while 45 % or more
above the usual resting rate of the hour is anaphylaxis-like: exercise is a trigger, and the short
reference, which followed the heart up during the exercise, cannot show it. Chosen on the tuning
split (Fitbit, rules only): +35 / +45 / +50 / +60 % over the hour with 60 frac·s gave 0.847 /
0.841 / 0.840 / 0.835 at 0.214 / 0.185 / 0.185 / 0.179 false alarms a day, against 0.832 at
0.179 without the path; the most sensitive setting keeping <= 0.2 was taken."""

RECOVERY_SURGE_SCORE_FRAC_S: Final = 60.0
"""Evidence of the non-recovery path: its excess over RECOVERY_SURGE_TOD_FRAC integrated over time
(fraction x seconds, as SURGE_SCORE_FRAC_S). 30 made 0.208 false alarms a day on tuning, 100 (with
+40 %) found 0.838."""

SURGE_CRITICAL_FRAC: Final = 0.30
"""A surge of 30 % or a surge followed by stillness is critical from the first alarm."""

SURGE_CRITICAL_AFTER_S: Final = 5 * 60.0
"""A surge still running after 5 min escalates to critical (median time to arrest in fatal
drug anaphylaxis is about 5 min, GUIDE section 1)."""

STILL_SURGE_RISE_FRAC: Final = 0.10
"""A two-minute heart rate 10 % above reference followed by a motionless wrist is anaphylaxis-like
on its own (surge then syncope), without waiting for the full surge evidence."""

STILL_MOTION_MAX_AGE_S: Final = 60.0
"""A wrist is judged still only on a motion reading at most this old: when a band's motion stream
ends (a sensor or a second device out of range) its last still readings said nothing about an hour
later, and a +14 % rise an hour on was raised as a critical, never-vetoed surge then syncope. The
E4 sessions give a motion reading every second; the Fitbit days none."""

STILL_AFTER_SURGE_S: Final = 45.0
"""Motionless for 45 s during a surge: possible syncope (72 % of SM anaphylaxis). With 30 s (until
1.7) a seated person's brief surge with the wrist at rest alarmed on its own: two of the six
stress-predict alarms (S10: 78 -> 141 bpm for two minutes; S25), both over within a minute of the
alarm. Tuning split (3 seeds, 216 E4 surges): 45 s removed S25's alarm and found 0.921 instead of
0.912, 0.1-0.25 min later; 60 and 75 s found 0.917, 90 s 0.912 (docs/evaluation.md, 1.8)."""

STILL_SUDDEN_MAX_S: Final = 10 * 60.0
"""Stillness is a syncope only while it is recent: a wrist that went still within the last 10 min.
One still for longer is at rest or asleep, and its stillness says nothing of a faint."""

STILL_SHARE_TAU_S: Final = 15 * 60.0
"""Time constant of the share of the recent past the wrist was still (an exponential average of
the motion readings below ACC_SD_STILL_G)."""

STILL_SHARE_ASLEEP: Final = 0.25
"""A stillness is a faint only if the wrist was still less than a quarter of the recent past
before it began. Asleep, the wrist is still much of the time, and a turn in bed restarts the
stillness every few minutes: until 1.12 any stillness counted, so in sleep a heart-rate rise of
10 %, a dream or a flush, was a critical "possible anaphylaxis" on the spot, never vetoed (the
demo's flush at night did that: its sleeping wrist was still 38-45 % of the time). An awake
seated E4 wrist is still about 20 % of the time in the stress sessions. Tuning split: 0.25, 0.35
and 0.5 give identical reports (the injected syncopes' surges are found by the main path too),
the held-out one too at 0.25."""

# --- flush: skin warming with a heart-rate rise at rest -----------------------------------------
FLUSH_TEMP_RISE_C: Final = 0.25
"""Skin above its reference by 0.25 degC: below the smallest documented flush (+0.6 degC, niacin)
so the rising edge is caught early, above sensor quantisation and ambient drift."""

FLUSH_TEMP_SLOPE_C_PER_MIN: Final = 0.10
"""... and still warming by 0.10 degC/min (flushes rise over minutes; sleep onset warms 0.6 degC
in 10 min, but with the heart slowing). Chosen on the tuning split in 1.2, once the reference
followed the skin: 0.08 left 4 flush false alarms in 18 stress-predict sessions, 0.10 left 1 at
the same sensitivity (docs/evaluation.md)."""

FLUSH_HR_RISE_FRAC: Final = 0.02
"""... with the two-minute heart rate 2 % above reference (sleep onset warms the skin while the
heart slows)."""

FLUSH_PERSIST_S: Final = 30.0
"""A flush condition must hold for half a minute (the averages already smooth it)."""

FLUSH_MAX_FALL_C: Final = 0.2
"""... and the skin no more than 0.2 degC below its recent peak: a flush alarms while the skin
warms or is held warm, not once a warming is over. Since 1.10: in held-out session S12 a real
warming of 2.9 degC peaked two minutes before the heart rose, and the flush alarm then came on a
cooling skin and held an episode open for 20 min, hiding injected flushes. Tuning split (3 seeds,
648 flushes): 0.15-0.3 degC lose none (0.1 loses one); 0.2 keeps a step from that edge
(docs/evaluation.md, 1.10)."""

TEMP_PEAK_DECAY_C_PER_MIN: Final = FLUSH_TEMP_SLOPE_C_PER_MIN
"""The recent skin-temperature peak forgets at the flush warming slope: a skin cooling slower than
a flush warms never falls from it, so only a real cooling counts (1.10; 0.05 degC/min lost 1-7
tuning flushes at the falls measured)."""

# --- flush on a cooling skin: warming above the skin's own recent trend (1.11) ------------------
FLUSH_TREND_RISE_C: Final = 0.6
"""A second flush path, for flushes on a skin that was cooling (through a stress task, after a
warm room): the 30-s skin temperature 0.6 degC above the straight line through its own course
5-10 min ago, extrapolated to now. Against that line a +0.6-1 degC flush stands out although its
warming over the cooling never reaches FLUSH_TEMP_SLOPE_C_PER_MIN (57 of the 66 tuning misses of
1.10). Real re-warmings after stress reach 0.4-1.6 degC above the line too: the heart-rate and
slope conditions below and the hold tell them apart (docs/evaluation-history.md, 1.11)."""

FLUSH_TREND_HR_RISE_FRAC: Final = 0.05
"""... with the two-minute heart rate 5 % above its own value FLUSH_TREND_LAG_S ago and not below
its reference (a re-warming after stress comes with the heart slowing as the person relaxes)."""

FLUSH_TREND_SLOPE_C_PER_MIN: Final = 0.06
"""... and the skin still warming by 0.06 degC/min. The binding guard: at 0.04 the closest real
session (S35, skin and heart swinging together every 8-10 min) alarms and its open episode hides
15 injected flushes."""

FLUSH_TREND_HOLD_S: Final = 60.0
"""... all of it for a minute before the flush latch's own FLUSH_PERSIST_S, 90 s in all: the
up-swings of sessions whose skin and heart oscillate together last 1-3 min (60 s in all added
three tuning false alarms)."""

FLUSH_TREND_LAG_S: Final = 300.0
"""The skin's trend is fitted to its course from FLUSH_TREND_LAG_S + FLUSH_TREND_FIT_S to
FLUSH_TREND_LAG_S ago, so a flush rising over the last minutes is not yet in it."""

FLUSH_TREND_FIT_S: Final = 300.0
"""Span of the trend fit (5 min of 30-s snapshots)."""

FLUSH_TREND_SNAPSHOT_S: Final = 30.0
"""The trend keeps one snapshot of the 30-s skin temperature and the two-minute heart rate per
30 s, over the last FLUSH_TREND_LAG_S + FLUSH_TREND_FIT_S (about 22 snapshots, 0.7 KiB saved)."""

# --- episodes ---------------------------------------------------------------------------------
RELEASE_PERSIST_S: Final = 10 * 60.0
"""An episode ends after 10 min below the release thresholds: hysteresis against flapping."""

MAX_EPISODE_S: Final = 2 * 3600.0
"""An episode that never calms down is closed after 2 h ("expired") and the short reference
restarts from the level it settled at (1.5; before, it stayed at the old rest and the same
elevation re-alarmed every 2 h)."""

RELEASE_FRAC: Final = 0.5
"""Release thresholds are half the onset thresholds."""

CONFIRM_THRESHOLD: Final = 0.5
"""Probability above which the learned confirmer accepts a candidate alarm."""

# --- evaluation -------------------------------------------------------------------------------
EVAL_CHUNK_S: Final = 300.0
"""Replay feeds the detector bank 5-minute batches, as a gateway would after a short buffer."""

CONFIRM_CV_FOLDS: Final = 5
"""The confirmer's threshold is read from 5-fold out-of-fold probabilities, folds by wearer."""

CONFIRM_KEEP_POSITIVE_SHARE: Final = 0.98
"""The confirmer's threshold is set on the tuning split to keep 98 % of true onsets: missing an
anaphylaxis costs far more than a false alarm."""

# --- evaluation: injected episodes (models/injection.py), uniform ranges --------------------
INJECT_FLUSH_TEMP_RISE_C: Final[tuple[float, float]] = (0.6, 2.7)
"""Flush skin warming, degC: niacin flush +0.6 mean to hot flash at the finger +2.7 (GUIDE 3)."""

INJECT_FLUSH_HR_RISE_FRAC: Final[tuple[float, float]] = (0.084, 0.148)
"""Flush heart-rate rise: 95 % CI of the mean +11.6 % in food-challenge reactions
(Ruiz-Garcia 2021)."""

INJECT_FLUSH_RISE_S: Final[tuple[float, float]] = (3 * 60.0, 12 * 60.0)
"""Flush onset to peak: "over minutes" (nasal skin +0.8 degC within 20 min, Clark 2007)."""

INJECT_FLUSH_PLATEAU_S: Final[tuple[float, float]] = (5 * 60.0, 20 * 60.0)
"""Flush held at its peak."""

INJECT_FLUSH_DECAY_S: Final[tuple[float, float]] = (10 * 60.0, 30 * 60.0)
"""Flush fading (hot flashes last ~31 min in all)."""

INJECT_SURGE_HR_RISE_FRAC: Final[tuple[float, float]] = (0.20, 0.60)
"""Anaphylaxis-like surge: above the +11.6 % of reactions of all severities; a tachycardia of
100 bpm from a resting 70 is +43 %."""

INJECT_SURGE_RISE_S: Final[tuple[float, float]] = (60.0, 5 * 60.0)
"""Surge onset to plateau: minutes (median time to arrest in fatal drug anaphylaxis ~5 min)."""

INJECT_SURGE_PLATEAU_S: Final[tuple[float, float]] = (10 * 60.0, 40 * 60.0)
"""Surge held."""

INJECT_SURGE_DECAY_S: Final[tuple[float, float]] = (5 * 60.0, 20 * 60.0)
"""Surge fading."""

INJECT_SURGE_WARMING_SHARE: Final[float] = 0.5
"""Share of surges that also warm the skin (peripheral blood flow +19.7 %, Ruiz-Garcia 2021)."""

INJECT_SURGE_TEMP_RISE_C: Final[tuple[float, float]] = (0.3, 1.5)
"""Skin warming of those surges, degC."""

INJECT_SYNCOPE_SHARE: Final[float] = 0.72
"""Share with syncope: 72 % in systemic-mastocytosis anaphylaxis (GUIDE 3)."""

INJECT_SYNCOPE_AFTER_S: Final[tuple[float, float]] = (60.0, 5 * 60.0)
"""Syncope (wrist still) this long after the surge onset."""

INJECT_STILL_ACC_SD_G: Final[tuple[float, float]] = (0.0005, 0.003)
"""Movement left on a motionless wrist: accelerometer noise only."""

# --- evaluation: where episodes go and how alarms are matched ---------------------------------
EVAL_ONSET_LEAD_S: Final = 30 * 60.0
"""An onset needs 30 min of wear before it (baselines) and ..."""
EVAL_ONSET_TAIL_S: Final = 30 * 60.0
"""... 30 min of data after it in Fitbit recordings (to see the detection)."""
EVAL_FITBIT_BLOCK_S: Final = 8 * 3600.0
"""At most one injected episode per 8 h block of a Fitbit recording ..."""
EVAL_MIN_EPISODE_SPACING_S: Final = 4 * 3600.0
"""... at least 4 h apart, so each starts from calm baselines."""
EVAL_STRESS_ONSET_WINDOW_S: Final[tuple[float, float]] = (20 * 60.0, 42 * 60.0)
"""Stress-predict sessions last ~55 min: onsets after warm-up, with >= 13 min left to detect."""
EVAL_STRESS_SURGE_COPIES: Final[int] = 4
"""Independent injected copies per session of an anaphylaxis-like episode (one episode each):
with the Fitbit users' ~700 surges per split, 4 keep the E4 a tenth of them."""
EVAL_STRESS_FLUSH_COPIES: Final[int] = 12
"""... and of a flush. Flushes are only injected into the stress sessions (the Fitbit users have no
skin temperature), so 4 copies gave 68-72 per split and the held-out flush sensitivity moved by
9 points with the seed (0.75-0.84); 12 copies give ~210."""
EVAL_MATCH_AFTER_END_S: Final = 5 * 60.0
"""An alarm up to 5 min after the injected change is over still counts as its detection."""
EVAL_LABELLED_DEFAULT_LENGTH_S: Final = 30 * 60.0
"""A labelled episode of ``evaluate --recordings`` without an end lasts this long: the injected
episodes' courses run 18-70 min, and an alarm later than half an hour after onset is no timely
detection anyway."""
EVAL_NIGHT_HOURS: Final = range(0, 6)
"""Fitbit clocks are local: 00:00-06:00 is night (sleep, sleep onset and awakenings)."""

CONFIRM_REAL_LABEL_WEIGHT: Final = 10.0
"""A real episode labelled by a care team weighs as much as 10 injected ones when the confirmer
is fitted: the tuning split gives ~900 injected anaphylaxis-like candidates, so ~90 real ones
weigh as much as all of them. A starting point, to revisit once real labels exist."""

CONFIRM_MIN_PER_CLASS: Final = 20
"""Below this many examples of either class a kind keeps the rules alone: a model fitted on a
handful of negatives learns the handful (7 flush negatives cost 25 % of held-out flushes)."""

# --- evaluation: the surge rule's trade-off curve (models/tradeoff.py) ------------------------
TRADEOFF_SURGE_SETTINGS: Final[tuple[tuple[float, float, float], ...]] = (
    (0.10, 0.10, 10.0),
    (0.12, 0.12, 15.0),
    (0.12, 0.15, 20.0),
    (0.15, 0.15, 30.0),
    (0.15, 0.20, 20.0),
    (0.15, 0.20, 45.0),
    (0.15, 0.20, 70.0),
    (0.18, 0.25, 60.0),
    (0.20, 0.30, 60.0),
    (0.20, 0.30, 100.0),
    (0.25, 0.35, 150.0),
    (0.30, 0.40, 200.0),
)
"""Surge settings swept by ``flarewatch evaluate --tradeoff``: (rise over the reference, margin
over the usual hourly rate, evidence in frac·s), from very eager to strict; the released setting
(SURGE_RISE_FRAC, SURGE_TOD_MARGIN_FRAC, SURGE_SCORE_FRAC_S) is one of them. The two strictest
show how far a band without step counting has to go (``--tradeoff --without steps``)."""

TRADEOFF_FAST_S: Final = 120.0
"""The anaphylaxis delay target (median <= 2 min) holds when half the detections come this soon."""

# --- detection profiles: operating points a care team may choose per patient (models/profiles.py)
PROFILE_SENSITIVE_SURGE: Final[tuple[float, float, float]] = (0.15, 0.15, 30.0)
"""'sensitive': surge +15 % over the reference, +15 % over the hour's usual rate, 30 frac·s. Tuning
split (Fitbit, 1.4 rules): sensitivity 0.898, median delay 4.0 min, 0.52 false alarms per day."""

PROFILE_QUIET_SURGE: Final[tuple[float, float, float]] = (0.20, 0.30, 60.0)
"""'quiet': +20 %, +30 %, 60 frac·s. Tuning split: sensitivity 0.712, 7.0 min, 0.11 per day. The
default ('balanced', SURGE_* above) gives 0.831, 7.0 min, 0.18 per day."""


PROFILE_REVIEW_MATCH_BEFORE_S: Final = 15 * 60.0
"""Comparing profiles on a patient's labelled episodes: an alarm of another profile up to 15 min
before the patient's own alarm counts as the same episode. Between the most and the least eager
profile the evidence needed differs by about 100 frac·s, some 11 min at a surge 15 % past the rise
threshold; an earlier alarm is more likely a different event."""


PROFILE_REVIEW_MIN_DAYS: Final = 1.0
"""A rate of alarms per day of wear is given only from a day of wear on: fewer hours say more
about the time of day than about the patient."""


SENSOR_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "steps": ("steps",),
    "skin-temp": ("skin_temp_c",),
    "motion": ("acc_g", "acc_sd_g"),
}
"""Sensors a band may lack and the recording columns they give: ``flarewatch evaluate --without``
hides them from the detectors to measure what each sensor is worth."""

EVAL_BOOTSTRAP_RESAMPLES: Final = 2000
"""Resamples of the subject bootstrap behind the 95 % intervals of the headline figures."""

EVAL_SIGNAL_LONG_S: Final = 10 * 60.0
"""A signal-state alarm lasting this long would reach caregivers if the wearer does not answer:
the service's default signal window (``service.alerts.const.DEFAULT_SIGNAL_WINDOW_S``)."""

# --- the acceptance targets of issue 4, drawn into the plots ----------------------------------
TARGET_ANAPHYLAXIS_SENSITIVITY: Final = 0.95
TARGET_ANAPHYLAXIS_MEDIAN_DELAY_MIN: Final = 2.0
TARGET_FLUSH_MEDIAN_DELAY_MIN: Final = 5.0
TARGET_FALSE_ALARMS_PER_DAY: Final = 0.2
"""Issue 4: anaphylaxis-like >= 0.95 within a 2-min median, flush within a 5-min median, <= 0.2
false alarms per patient-day in free living."""

# --- recordings read by ``flarewatch detect`` and the evaluation ---------------------------------
LATEST_VALID_TIME_S: Final = 4_102_444_800.0
"""2100-01-01T00:00:00Z: a later ``time_s`` is a broken clock or a unit mistake (milliseconds)."""

READ_CHUNK_ROWS: Final = 200_000
"""Lines parsed at a time: only one chunk's text is held, never the whole file's."""

SAMPLE_BLOCK_ROWS: Final = 10_000
"""Rows turned into Python values at a time while yielding samples."""
