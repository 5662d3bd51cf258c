"""Per-patient signal conditioning: smoothed vitals, robust personal baselines, activity and wear.

Everything is updated one sample at a time in O(1) from plain attributes (no windows are stored):
time-aware exponential averages stand in for sliding windows, so irregular sampling (1 s to 15 s)
and gaps need no resampling. The state is a flat dataclass of numbers, cheap to save and restore.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from models.const import (
    ACC_SD_ACTIVE_G,
    ACC_SD_EXERCISE_G,
    ACC_SD_STILL_G,
    ACC_SD_TAU_S,
    ACTIVITY_SIGNAL_MEMORY_S,
    BACK_ON_REWARMED_C,
    EXERCISE_RECOVERY_S,
    GAP_RESET_S,
    HR_FAST_TAU_S,
    HR_MID_TAU_S,
    HR_NOISE_TAU_S,
    HR_REF_CLIP_FRAC,
    HR_REF_RECOVERY_TAU_S,
    HR_REF_TAU_S,
    HR_REF_WARMUP_TAU_S,
    HR_SLOW_TAU_S,
    MAX_STEP_S,
    OFF_WRIST_DROP_C,
    OFF_WRIST_FALL_C_PER_MIN,
    OFF_WRIST_LEVEL_C,
    OFF_WRIST_LEVEL_S,
    OFF_WRIST_REWARM_C,
    REST_AFTER_ACTIVITY_S,
    REWARMED_AFTER_S,
    REWARMING_RISE_C,
    SENSOR_LIFT_DROP_C,
    TEMP_FAST_TAU_S,
    TEMP_MAX_WARMUP_S,
    TEMP_MID_TAU_S,
    TEMP_PEAK_DECAY_C_PER_MIN,
    TEMP_REF_FOLLOW_TAU_S,
    TEMP_REF_MAX_RISE_C_PER_MIN,
    TEMP_REF_TAU_S,
    TEMP_RESETTLE_S,
    TEMP_SETTLED_SLOPE_C_PER_MIN,
    TEMP_WARMUP_S,
    TOD_BINS,
    TOD_MIN_HISTORY_S,
    TOD_TAU_S,
    TOD_UPDATE_CLIP_FRAC,
    WARMUP_S,
    WRIST_MIN_C,
)
from models.state_checks import check_state_fields


def ewma(previous: float | None, value: float, dt_s: float, tau_s: float) -> float:
    """Time-aware exponential average: the weight of the old value decays as exp(-dt/tau)."""
    if previous is None:
        return value
    return previous + (1.0 - math.exp(-dt_s / tau_s)) * (value - previous)


def covered_s(time_s: float, last_s: float | None, dropped_s: float | None) -> float:
    """The time a reading at ``time_s`` stands for in an average.

    Since the one before (``last_s``; 1 s for the first), at most MAX_STEP_S (longer is a gap),
    and no longer than since the last one dropped (``dropped_s``), over which the average holds.
    """
    step_s = 1.0 if last_s is None else min(time_s - last_s, MAX_STEP_S)
    return step_s if dropped_s is None else min(step_s, time_s - dropped_s)


def lag_slope_c_per_min(fast_c: float, mid_c: float) -> float:
    """Warming rate from how far the 30-s skin average leads the three-minute one."""
    return (fast_c - mid_c) / (TEMP_MID_TAU_S - TEMP_FAST_TAU_S) * 60.0


def hour_bin(time_s: float) -> int:
    """Hourly time-of-day bin of a timestamp (the patient's clock as the wearable reports it)."""
    return int(time_s % 86_400.0 // 3600.0) % TOD_BINS


@dataclass(slots=True)
class SignalTracker:
    """Smoothed vitals and personal baselines of one patient; call :meth:`step` per sample.

    ``hr_ref``/``temp_ref`` are short references that follow slow drifts (posture, room) but
    not an episode: their rise is clipped and they freeze while an episode is suspected
    (``freeze=True``). ``tod_rest_bpm`` holds the usual resting heart rate per hour of day.
    """

    last_time_s: float | None = None
    wear_start_s: float | None = None
    last_active_s: float | None = None
    last_exercise_s: float | None = None
    activity_signal_s: float | None = None
    hr_time_s: float | None = None
    hr_fast: float | None = None
    hr_mid: float | None = None
    hr_slow: float | None = None
    hr_ref: float | None = None
    hr_noise: float | None = None
    temp_time_s: float | None = None
    temp_fast: float | None = None
    temp_mid: float | None = None
    temp_ref: float | None = None
    temp_settled: bool = False
    temp_on_skin_s: float | None = None
    """When the temperature sensor last came (back) against the skin (None: at wear start)."""
    temp_back_s: float | None = None
    """When the sensor came back colder from moments off the skin (None: not re-warming): its
    readings are dropped until it is back near ``temp_back_from_c``, for TEMP_RESETTLE_S at most."""
    temp_back_from_c: float | None = None
    """... the 30-s skin average before the sensor left the skin."""
    temp_back_top_c: float | None = None
    """... its warmest reading since it came back, and when it last rose REWARMING_RISE_C."""
    temp_back_top_s: float | None = None
    temp_back_rose: bool = False
    """... whether it has risen REWARMING_RISE_C since it came back (until then the warmest
    reading is the coldest: a sensor lifted off the skin is still cooling when it is seen)."""
    temp_mid_step_c: float = 0.0
    """How much of a step down the three-minute average still holds: readings taken again below
    where the skin was before the sensor left (:meth:`_taken_again`), fading as it refills."""
    temp_peak: float | None = None
    """Recent peak of the 30-s skin temperature, forgetting TEMP_PEAK_DECAY_C_PER_MIN."""
    acc_time_s: float | None = None
    acc_sd_fast: float | None = None
    acc_dropped_s: float | None = None
    """When a motion reading was last dropped (the band off the skin; None: none since)."""
    temp_dropped_s: float | None = None
    """When a skin-temperature reading was last dropped (the band off the skin, or its sensor
    re-warming; None: none since)."""
    tod_rest_bpm: list[float | None] = field(default_factory=lambda: [None] * TOD_BINS)
    tod_rest_s: list[float] = field(default_factory=lambda: [0.0] * TOD_BINS)
    rest_bpm: float | None = None
    off_wrist_low_c: float | None = None
    """The coldest skin-temperature reading since the band left the wrist (None: worn)."""
    off_wrist_since_s: float | None = None
    """When the band left the wrist (None: worn)."""
    off_wrist_from_c: float | None = None
    """The 30-s skin average before the reading whose drop said the band left (None: worn, or
    it left by cooling): a reading back near it says the band never left."""
    off_wrist_level_c: float | None = None
    """Off the wrist: the 30-s skin average when it last moved OFF_WRIST_LEVEL_C (None: worn)."""
    off_wrist_level_s: float | None = None
    """... and when: it has held that level since (a band levelled at a wrist's warmth)."""
    off_wrist_moved_s: float | None = None
    """Off the wrist: its last motion reading of a moving wrist (None: none, or worn)."""
    off_wrist_still_s: float | None = None
    """... and of a motionless one: a band on a table shows no movement at all."""

    def __post_init__(self) -> None:
        # a saved state that is damaged or from other hour bins must not be half-used
        check_state_fields(self)
        if len(self.tod_rest_bpm) != TOD_BINS or len(self.tod_rest_s) != TOD_BINS:
            raise ValueError(f"saved resting heart rates do not fit {TOD_BINS} hourly bins")
        if any(bpm is not None and bpm <= 0.0 for bpm in (self.rest_bpm, *self.tod_rest_bpm)):
            raise ValueError("saved resting heart rates must be positive")  # they divide

    def step(
        self,
        time_s: float,
        heart_rate_bpm: float | None,
        skin_temperature_c: float | None,
        steps: int | None,
        acc_sd_g: float | None,
        *,
        freeze: bool,
    ) -> None:
        """Fold one sample in; ``freeze`` holds the references while an episode is suspected."""
        if self.last_time_s is None or time_s - self.last_time_s >= GAP_RESET_S:
            self._start_wear(time_s, off_wrist=self.off_wrist)
            if self.last_time_s is not None and not freeze:
                self.hr_ref = self.temp_ref = None
        self.last_time_s = time_s
        if steps is not None or acc_sd_g is not None:
            self.activity_signal_s = time_s
        if acc_sd_g is not None:
            dt = covered_s(time_s, self.acc_time_s, self.acc_dropped_s)
            self.acc_time_s, self.acc_dropped_s = time_s, None
            self.acc_sd_fast = ewma(self.acc_sd_fast, acc_sd_g, dt, ACC_SD_TAU_S)
        moving = self.acc_sd_fast is not None and self.acc_sd_fast > ACC_SD_ACTIVE_G
        walking = self.acc_sd_fast is not None and self.acc_sd_fast > ACC_SD_EXERCISE_G
        stepping = steps is not None and steps > 0
        if moving or stepping:
            self.last_active_s = time_s
        if walking or stepping:
            self.last_exercise_s = time_s
        if heart_rate_bpm is not None:
            self._step_heart_rate(time_s, heart_rate_bpm, freeze)
        if skin_temperature_c is not None:
            self._step_temperature(time_s, skin_temperature_c, freeze)

    def _step_heart_rate(self, time_s: float, hr: float, freeze: bool) -> None:
        dt = covered_s(time_s, self.hr_time_s, None)
        self.hr_time_s = time_s
        if self.hr_fast is not None:
            # signal quality: typical jump of a reading away from the smoothed rate
            self.hr_noise = ewma(self.hr_noise, abs(hr - self.hr_fast), dt, HR_NOISE_TAU_S)
        self.hr_fast = ewma(self.hr_fast, hr, dt, HR_FAST_TAU_S)
        self.hr_mid = ewma(self.hr_mid, hr, dt, HR_MID_TAU_S)
        self.hr_slow = ewma(self.hr_slow, self.hr_mid, dt, HR_SLOW_TAU_S)
        if freeze:
            return
        ref = self.hr_ref
        if self.worn_for(time_s) < WARMUP_S and ref is not None:
            # while the band settles (nothing is judged yet) the reference follows quickly: the
            # first optical readings can be far off and must not anchor it for an hour
            self.hr_ref = ewma(ref, hr, dt, HR_REF_WARMUP_TAU_S)
        elif ref is None or self.active_recently(time_s):
            # during and just after exercise the reference follows the heart freely, so the slow
            # recovery afterwards never looks like a surge
            self.hr_ref = ewma(ref, hr, dt, HR_REF_TAU_S)
        else:
            self.hr_ref = ewma(ref, min(hr, ref * (1.0 + HR_REF_CLIP_FRAC)), dt, HR_REF_TAU_S)
            if self.recovering(time_s) and self.hr_mid is not None and self.hr_mid < self.hr_ref:
                # the heart slows for half an hour after exercise: the reference follows it down
                # within minutes, or it would sit above the resting rate and hide a surge
                self.hr_ref = ewma(self.hr_ref, self.hr_mid, dt, HR_REF_RECOVERY_TAU_S)
        if self.resting(time_s) and self.worn_for(time_s) >= REST_AFTER_ACTIVITY_S:
            # a rate far above the short resting reference (a surge building up) must not
            # become this hour's usual resting rate, least of all as the first value of a bin
            rest = min(self.hr_fast, self.hr_ref * (1.0 + TOD_UPDATE_CLIP_FRAC))
            b = hour_bin(time_s)
            self.tod_rest_bpm[b] = ewma(self.tod_rest_bpm[b], rest, dt, TOD_TAU_S)
            self.tod_rest_s[b] = min(self.tod_rest_s[b] + dt, TOD_TAU_S)
            self.rest_bpm = ewma(self.rest_bpm, rest, dt, TOD_TAU_S)

    def _step_temperature(self, time_s: float, temp: float, freeze: bool) -> None:
        if self.temp_back_s is None and self._sensor_lifted(temp):
            self.rewarm_sensor(time_s)
        if self.temp_back_s is not None and self._still_rewarming(time_s, temp):
            self.temp_dropped_s = time_s
            return
        elapsed = time_s - self.temp_time_s if self.temp_time_s is not None else 1.0
        dt = covered_s(time_s, self.temp_time_s, self.temp_dropped_s)
        self.temp_time_s, self.temp_dropped_s = time_s, None
        self.temp_fast = ewma(self.temp_fast, temp, dt, TEMP_FAST_TAU_S)
        self.temp_mid = ewma(self.temp_mid, temp, dt, TEMP_MID_TAU_S)
        if self.temp_mid_step_c:
            self.temp_mid_step_c *= math.exp(-dt / TEMP_MID_TAU_S)
        # the peak forgets over the real time elapsed: across a gap the skin may have cooled
        # slowly all along, and the averages above follow it at once
        forgotten = (
            self.temp_fast
            if self.temp_peak is None
            else self.temp_peak - TEMP_PEAK_DECAY_C_PER_MIN * elapsed / 60.0
        )
        self.temp_peak = max(self.temp_fast, forgotten)
        # back on the skin after a short removal the sensor warms up again, from the room's
        # temperature: until 1.11 the wear clock alone said "settled", and its re-warming read
        # as a flush over a reference that had followed it down
        # (the slope needs the three-minute average refilled first; a contact blip of a second
        # costs those minutes, not the quarter of an hour of a band put on)
        back_on = (
            self.temp_on_skin_s is not None
            and self.wear_start_s is not None
            and self.temp_on_skin_s > self.wear_start_s
        )
        on_skin_s = self.worn_for(time_s)
        if back_on and self.temp_on_skin_s is not None:
            on_skin_s = time_s - self.temp_on_skin_s
        if not self.temp_settled and on_skin_s >= (TEMP_RESETTLE_S if back_on else TEMP_WARMUP_S):
            self.temp_settled = (
                abs(self.temp_slope_c_per_min()) < TEMP_SETTLED_SLOPE_C_PER_MIN
                or on_skin_s >= TEMP_MAX_WARMUP_S
            )
        if freeze:
            return
        ref = self.temp_ref
        if ref is None or not self.temp_settled or temp <= ref:
            # while the sensor warms up, and whenever the skin is below it, the reference
            # follows freely: a band-on warm-up or a cooled skin must not leave it behind
            self.temp_ref = ewma(ref, temp, dt, TEMP_REF_FOLLOW_TAU_S)
        else:
            # once settled it may rise only slowly, so a flush cannot drag it up
            moved = ewma(ref, temp, dt, TEMP_REF_TAU_S)
            self.temp_ref = min(moved, ref + TEMP_REF_MAX_RISE_C_PER_MIN * dt / 60.0)

    def _start_wear(self, time_s: float, *, off_wrist: bool = False) -> None:
        """The wear clock and the smoothed signals restart (a band put on, or data after a gap).

        A band that was off the wrist before a gap stays so until its skin temperature says
        otherwise: a band left on the table does not come back worn when its data resumes.
        """
        self.wear_start_s = time_s
        if not off_wrist:
            self._worn()
        self.hr_fast = self.hr_mid = self.hr_slow = None
        self.resettle_temperature(time_s)

    def back_on_skin(self, time_s: float, lost_s: float) -> None:
        """The band says it touches the skin again, after losing contact at ``lost_s``.

        As when the skin temperature says so (:meth:`check_wrist`): after GAP_RESET_S or more the
        wear clock restarts, as when a band is put on; after less the temperature sensor's
        readings are dropped while it re-warms, if it came back colder (:meth:`rewarm_sensor`).
        A contact blip of a loose strap, the sensor still warm, costs nothing, and a flush under
        way goes on being seen.
        """
        if time_s - lost_s >= GAP_RESET_S:
            self._start_wear(time_s)
        else:
            self.rewarm_sensor(time_s)

    def resettle_temperature(self, time_s: float) -> None:
        """The temperature sensor is (back) against the skin: it must warm up and settle again."""
        self.temp_settled = False
        self.temp_on_skin_s = time_s
        self.temp_fast = self.temp_mid = self.temp_peak = None
        self.temp_mid_step_c = 0.0
        self._rewarmed()

    def rewarm_sensor(self, time_s: float) -> None:
        """Off the skin for moments, the sensor is back colder: drop its readings while it warms.

        Its readings are dropped until one is back within BACK_ON_REWARMED_C of the 30-s skin
        average before it left, or they have stopped rising (REWARMED_AFTER_S without rising
        REWARMING_RISE_C since the warmest, or while still falling since the coldest: a band
        shifted onto a cooler spot, or a skin that cooled while the sensor was off; then
        :meth:`_taken_again`): the skin's averages,
        slope, reference and settling go on from where they were, for the re-warming readings
        are the sensor's, not the skin's (1.12.4), and no flush is judged until they are taken
        again (the averages held could be a warm glitch's). Until then they were folded in.
        Read as the skin cooling, they held back the evidence of a surge under way (up to 89 s
        late; S15's, delayed past its wearer's next movement, missed); the reference followed
        them down and then up, so a flush under way was taken into it and missed; and back
        colder as the band's warm-up ended, their re-warming offset the skin's own warming, the
        sensor read "settled", and the re-warming a flush. Before 1.12.3 the averages even
        restarted from the first reading back.

        Still rising after TEMP_RESETTLE_S, the readings are taken; a settled sensor still
        SENSOR_LIFT_DROP_C below settles again (it cooled for minutes, in a pocket), while a
        rise nearer the skin is the skin's own (a flush a band's shift came before: settling
        again through it, S19's was missed; 1.12.5). Without an average from before, it
        settles again at once.
        """
        if self.temp_fast is None:
            self._unsettle(time_s)
            return
        self.temp_back_s, self.temp_back_from_c = time_s, self.temp_fast
        self.temp_back_top_c = self.temp_back_top_s = None
        self.temp_back_rose = False

    def _sensor_lifted(self, temp: float) -> bool:
        """A reading SENSOR_LIFT_DROP_C below the 30-s average: the sensor left the skin."""
        return self.temp_fast is not None and temp <= self.temp_fast - SENSOR_LIFT_DROP_C

    def _still_rewarming(self, time_s: float, temp: float) -> bool:
        """Whether ``temp`` is the re-warming sensor's, to drop (see :meth:`rewarm_sensor`).

        Taken again below where the skin was, the 30-s average steps down (:meth:`_taken_again`).
        """
        from_c, back_s = self.temp_back_from_c, self.temp_back_s
        if from_c is None or back_s is None:
            self._rewarmed()
            return False
        if temp >= from_c - BACK_ON_REWARMED_C:
            self._taken_again(temp)
            return False
        top, top_s = self.temp_back_top_c, self.temp_back_top_s
        if top is None or top_s is None or temp >= top + REWARMING_RISE_C:
            self.temp_back_rose = top is not None and top_s is not None
            self.temp_back_top_c, self.temp_back_top_s = temp, time_s
        elif temp < top and not self.temp_back_rose:
            self.temp_back_top_c, self.temp_back_top_s = temp, time_s
        elif time_s - top_s >= REWARMED_AFTER_S:
            self._taken_again(temp)
            return False
        if time_s - back_s < TEMP_RESETTLE_S:
            return True
        self._taken_again(temp)
        if temp < from_c - SENSOR_LIFT_DROP_C:
            self._unsettle(time_s)
        return False

    def _taken_again(self, temp: float) -> None:
        """The sensor's readings are taken again from ``temp``: below the average, a step down.

        The band reads a cooler spot (S07's shifted 0.35 degC), the skin cooled meanwhile, or
        the sensor is still re-warming its last tenth of a degree: the 30-s average starts from
        ``temp``, and the skin's course for a surge leaves out the step the three-minute
        average then holds (:meth:`skin_slope_c_per_min`; 1.12.5). That last tenth, averaged
        in, read as the skin cooling and held back the surge of a wearer whose skin cools at
        about the rate that does (S27's, a lift 74 s in).
        Held where it was, the 30-s average made the next reading, as far below, say the
        sensor left again (after a warm glitch had raised it, every reading was dropped); and
        followed by the three-minute average over minutes, the step read as a cooling skin,
        which holds a surge back (S07's shift 1 min before to 1.5 min into 44 strong surges:
        10 missed). A flush still sees the step: after its quick re-warming a sensor may go
        on warming slowly back to where it was (S01's, by 0.8 degC over 3.5 min), which would
        read as a flush over it. A flush begun as the band shifted is then late or missed
        (S07's, 39 s after its shift).
        """
        self._rewarmed()
        if self.temp_fast is not None and temp < self.temp_fast:
            self.temp_mid_step_c += self.temp_fast - temp
            self.temp_fast = temp

    def _rewarmed(self) -> None:
        """The sensor is not (or no longer) re-warming: its readings are the skin's."""
        self.temp_back_s = self.temp_back_from_c = None
        self.temp_back_top_c = self.temp_back_top_s = None
        self.temp_back_rose = False

    def _unsettle(self, time_s: float) -> None:
        """The sensor is back on the skin colder: skin temperature waits until it settles again.

        A sensor still settling goes on settling: restarted, the clock gave a skin warming
        slowly another 25 min (TEMP_MAX_WARMUP_S), and a flush 14 min after one cold reading
        went unseen (1.12.3).
        """
        if self.temp_settled:
            self.temp_settled = False
            self.temp_on_skin_s = time_s

    @property
    def off_wrist(self) -> bool:
        """The skin temperature says the band is off the wrist (see :meth:`check_wrist`)."""
        return self.off_wrist_low_c is not None

    def check_wrist(
        self, time_s: float, skin_temperature_c: float | None, acc_sd_g: float | None
    ) -> bool:
        """Whether the band is off the wrist, judged from a new skin-temperature reading.

        It comes off when a reading falls OFF_WRIST_DROP_C below the 30-s average, or the skin
        cools faster than OFF_WRIST_FALL_C_PER_MIN (a sensor cooling in a pocket), and is back on
        once that average has warmed OFF_WRIST_REWARM_C above its coldest since, or has held
        within OFF_WRIST_LEVEL_C for OFF_WRIST_LEVEL_S at a wrist's warmth, moving if the band
        reports motion (``acc_sd_g``: a band put on warmer than the skin, cooling onto it), or,
        when a reading's drop said it left, once a reading is back near the average before that
        drop (:meth:`_back_on_after_a_drop`). Back on after GAP_RESET_S or more the wear clock
        restarts, as when a band is put on; after less (the band adjusted, a wrist under cold
        water) only the temperature sensor warms up and settles again, as after putting it on.
        Call it before :meth:`step`, and keep the readings taken off the wrist out of it.
        """
        temp, smoothed = skin_temperature_c, self.temp_fast
        if self.off_wrist and acc_sd_g is not None:
            if acc_sd_g < ACC_SD_STILL_G:
                self.off_wrist_still_s = time_s
            else:
                self.off_wrist_moved_s = time_s
        if temp is None:
            return self.off_wrist
        dropped = smoothed is not None and temp <= smoothed - OFF_WRIST_DROP_C
        if not self.off_wrist:
            if not dropped and self.temp_slope_c_per_min() > -OFF_WRIST_FALL_C_PER_MIN:
                return False
            self.off_wrist_from_c = smoothed if dropped else None
        elif (
            self.off_wrist_from_c is not None
            and temp > self.off_wrist_from_c - OFF_WRIST_DROP_C
            and self.off_wrist_since_s is not None
            and time_s - self.off_wrist_since_s < GAP_RESET_S
        ):
            self._back_on_after_a_drop(time_s, self.off_wrist_from_c)
            return False
        # off the wrist the 30-s average follows the band alone: handling it moves single
        # readings by a degree or two for seconds (S28), a wrist warms the average for minutes
        dt = covered_s(time_s, self.temp_time_s, None)
        self.temp_time_s = time_s
        self.temp_fast = smoothed = ewma(smoothed, temp, dt, TEMP_FAST_TAU_S)
        low = smoothed if self.off_wrist_low_c is None else min(self.off_wrist_low_c, smoothed)
        since = time_s if self.off_wrist_since_s is None else self.off_wrist_since_s
        if smoothed >= low + OFF_WRIST_REWARM_C or self._levelled_on_a_wrist(time_s, smoothed):
            if time_s - since >= GAP_RESET_S:
                self._start_wear(time_s)
            else:
                self.resettle_temperature(time_s)
                self._worn()
            return False
        self.off_wrist_low_c, self.off_wrist_since_s = low, since
        return True

    def _levelled_on_a_wrist(self, time_s: float, smoothed: float) -> bool:
        """Off the wrist, the 30-s average has held its level for a while at a wrist's warmth.

        A band put on warmer than the skin (off a charger, out of a pocket or a hot car) cools
        onto it as fast as one taken off, which says it came off; then it holds at the skin's
        temperature, never warming a degree above its coldest, and stayed "off" (heart rate
        ignored, ``no_contact``, surges missed) until the skin happened to warm (1.12.2). A band
        taken off cools on towards the room, far below a wrist's warmth, and holds there. In a
        room as warm as a wrist, a band that reports motion tells them apart: on a wrist it
        moves, on a table it does not (1.12.3). The E4 reports a heart rate from the table,
        climbing like a surge: judged worn there, it raised one.
        """
        level, level_s = self.off_wrist_level_c, self.off_wrist_level_s
        if level is None or level_s is None or abs(smoothed - level) > OFF_WRIST_LEVEL_C:
            self.off_wrist_level_c, self.off_wrist_level_s = smoothed, time_s
            return False
        if smoothed < WRIST_MIN_C or time_s - level_s < OFF_WRIST_LEVEL_S:
            return False
        still, moved = self.off_wrist_still_s, self.off_wrist_moved_s
        return still is None or still < level_s or (moved is not None and moved >= level_s)

    def _worn(self) -> None:
        """Forget the band's time off the wrist."""
        self.off_wrist_low_c = self.off_wrist_since_s = self.off_wrist_from_c = None
        self.off_wrist_level_c = self.off_wrist_level_s = None
        self.off_wrist_moved_s = self.off_wrist_still_s = None

    def _back_on_after_a_drop(self, time_s: float, before_c: float) -> None:
        """A reading back within OFF_WRIST_DROP_C of where the skin was before a drop: worn again.

        One reading of a band that slipped or a sensor glitch (a reading of 20 degC on a skin of
        33.5) said the band left; the 30-s average moves a thirtieth of the way per reading, so
        it never warmed OFF_WRIST_REWARM_C above its coldest under a steady skin, and the band
        stayed "off" (heart rate ignored, no alarm) until the skin happened to warm by a degree
        (1.12.1). A band taken off keeps cooling, far below it. The readings in between were a
        glitch and are dropped; back colder, the sensor was off the skin, and its readings are
        dropped while it re-warms, as after any short removal (:meth:`rewarm_sensor`).
        """
        self._worn()
        self.temp_fast = before_c
        self.rewarm_sensor(time_s)

    def readings_dropped(self, time_s: float, *, motion: bool, temperature: bool) -> None:
        """Readings were dropped (the band off the skin): the next ones cover less time.

        The smoothed movement and skin temperature hold across them. Until 1.12.3 the first
        motion reading after a contact loss of 10 s weighed in as if it had lasted all of them:
        one gesture (0.33 g) made the wearer "active" for 5 min and wiped the evidence of a
        surge under way (S02); the first skin reading did so until 1.12.4.
        """
        if motion:
            self.acc_dropped_s = time_s
        if temperature:
            self.temp_dropped_s = time_s

    def restart_heart_reference(self) -> None:
        """The short heart-rate reference restarts from the two-minute rate (a lasting level)."""
        if self.hr_mid is not None:
            self.hr_ref = self.hr_mid

    def restart_temp_reference(self) -> None:
        """The skin-temperature reference restarts from the current skin temperature."""
        if self.temp_fast is not None:
            self.temp_ref = self.temp_fast

    def worn_for(self, time_s: float) -> float:
        """Seconds of (nearly) continuous data since the band was put on or came back."""
        return 0.0 if self.wear_start_s is None else time_s - self.wear_start_s

    def active_recently(self, time_s: float) -> bool:
        """Steps or movement within the settling time after exercise."""
        return (
            self.last_active_s is not None and time_s - self.last_active_s < REST_AFTER_ACTIVITY_S
        )

    def exercised_recently(self, time_s: float) -> bool:
        """Steps or walking-level movement within the settling time (gestures do not count)."""
        return (
            self.last_exercise_s is not None
            and time_s - self.last_exercise_s < REST_AFTER_ACTIVITY_S
        )

    def activity_known(self, time_s: float) -> bool:
        """The band reported steps (any count) or motion within the last day.

        Without that signal "at rest" is an assumption: walking cannot be told from a surge.
        """
        return (
            self.activity_signal_s is not None
            and time_s - self.activity_signal_s < ACTIVITY_SIGNAL_MEMORY_S
        )

    def recovering(self, time_s: float) -> bool:
        """Within the recovery time after steps or walking-level movement."""
        return (
            self.last_exercise_s is not None and time_s - self.last_exercise_s < EXERCISE_RECOVERY_S
        )

    def resting(self, time_s: float) -> bool:
        """No steps or movement for the settling time (and data long enough to know it)."""
        return not self.active_recently(time_s)

    def hr_rise_frac(self) -> float:
        """Relative rise of smoothed heart rate over the short resting reference (0 if unknown)."""
        if self.hr_fast is None or self.hr_ref is None or self.hr_ref <= 0:
            return 0.0
        return self.hr_fast / self.hr_ref - 1.0

    def hr_mid_rise_frac(self) -> float:
        """Relative rise of the two-minute heart rate over the reference: slower, less noisy."""
        if self.hr_mid is None or self.hr_ref is None or self.hr_ref <= 0:
            return 0.0
        return self.hr_mid / self.hr_ref - 1.0

    def hr_noise_frac(self) -> float:
        """Signal quality: recent reading-to-reading scatter relative to the resting rate."""
        if self.hr_noise is None or self.hr_ref is None or self.hr_ref <= 0:
            return 0.0
        return self.hr_noise / self.hr_ref

    def hr_rise_bpm(self) -> float:
        """Absolute rise of smoothed heart rate over the short resting reference."""
        if self.hr_fast is None or self.hr_ref is None:
            return 0.0
        return self.hr_fast - self.hr_ref

    def tod_rise_frac(self, time_s: float) -> float | None:
        """Rise over the usual resting rate of this hour of the day.

        An hour with too little history falls back to the resting rate over all hours (None:
        new patient). Until 1.3 the highest of this hour and its two neighbours was used; the
        hour alone caught 1.7 points more tuning surges for one more false alarm in 313 days.
        """
        if self.hr_fast is None:
            return None
        b = hour_bin(time_s)
        hourly, history_s = self.tod_rest_bpm[b], self.tod_rest_s[b]
        usual = hourly if hourly is not None and history_s >= TOD_MIN_HISTORY_S else self.rest_bpm
        return None if usual is None else self.hr_fast / usual - 1.0

    def hr_slowing(self) -> bool:
        """The two-minute heart rate is below its five-minute average (a heart recovering)."""
        return self.hr_mid is not None and self.hr_slow is not None and self.hr_mid < self.hr_slow

    def hr_trend_bpm(self) -> float:
        """Fast minus two-minute heart rate: positive while rising, negative while recovering."""
        if self.hr_fast is None or self.hr_mid is None:
            return 0.0
        return self.hr_fast - self.hr_mid

    def temp_rise_c(self) -> float | None:
        """Skin temperature above its reference (None without a temperature sensor)."""
        if self.temp_fast is None or self.temp_ref is None:
            return None
        return self.temp_fast - self.temp_ref

    def temp_fall_c(self) -> float:
        """How far the skin has cooled from its recent peak (0 while warming or held warm)."""
        if self.temp_fast is None or self.temp_peak is None:
            return 0.0
        return self.temp_peak - self.temp_fast

    def temp_slope_c_per_min(self) -> float:
        """Warming rate estimated from the lag between the fast and three-minute averages."""
        if self.temp_fast is None or self.temp_mid is None:
            return 0.0
        return lag_slope_c_per_min(self.temp_fast, self.temp_mid)

    @property
    def sensor_rewarming(self) -> bool:
        """The sensor is back colder from moments off the skin: its readings are dropped.

        After a contact loss, after a reading's drop that said the band left, or when a
        reading SENSOR_LIFT_DROP_C below the 30-s average says the sensor left the skin on a
        band without a contact bit (1.12.5).
        """
        return self.temp_back_s is not None

    def skin_slope_c_per_min(self) -> float | None:
        """The skin's warming rate, or None while it is not measured (the sensor re-warming).

        None with no reading yet, and while the readings of a sensor back colder from moments
        off the skin are dropped (:meth:`rewarm_sensor`): the averages then hold the course
        from before, which a surge is not held back on for a minute or more (1.12.4). A step
        down as the readings are taken again is left out (:meth:`_taken_again`).
        """
        if self.temp_fast is None or self.temp_mid is None or self.sensor_rewarming:
            return None
        return lag_slope_c_per_min(self.temp_fast, self.temp_mid - self.temp_mid_step_c)
