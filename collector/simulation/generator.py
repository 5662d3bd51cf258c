"""Physiologically plausible samples of one simulated wearable, for any time range, without waiting.

Every signal is a function of absolute time and of random streams keyed by (seed, patient, hour or
day), so a range can be generated in one call or in many chunks with identical results, and time
can run at any speed: pacing in real time is the caller's job (see ``collector.simulation.driver``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from collector.errors import SimulationError
from collector.simulation.block import FloatArray, IntArray, SampleBlock
from collector.simulation.const import (
    ACC_G_NOISE,
    ACC_SD_ASLEEP_G,
    ACC_SD_MOTIONLESS_G,
    ACC_SD_REST_G,
    ACC_SD_REST_LOG_SD,
    ACC_SD_WALK_BASE_G,
    ACC_SD_WALK_PER_INTENSITY_G,
    ACTIVE_HR_NOISE_FACTOR,
    ACTIVITY_RAMP_DOWN_S,
    ACTIVITY_RAMP_UP_S,
    ACTIVITY_SKIN_DROP_C,
    COOL_DOWN_TAU_S,
    GESTURE_ACC_G_SHARE,
    GESTURE_PROBABILITY_ASLEEP,
    GESTURE_PROBABILITY_AWAKE,
    GESTURE_SCALE_G,
    HR_DROPOUT_PROBABILITY,
    HR_WAVE_AMPLITUDES_BPM,
    HR_WAVE_PERIODS_S,
    MAX_CHUNK_SAMPLES,
    MS_PER_H,
    NOISE_BLOCK_SAMPLES,
    NOISE_CACHE_BLOCKS,
    POTTER_BURST_PER_MIN,
    POTTER_CADENCE_PER_S,
    POTTER_INTENSITY,
    POTTER_SPELL_S,
    POTTER_SPELL_SHARE,
    POTTER_STEPS_LOG_SD,
    POTTER_STEPS_MEDIAN,
    RR_JITTER_FRACTION,
    SAMPLE_DROPOUT_PROBABILITY,
    SKIN_NOISE_C,
    SKIN_RESOLUTION_C,
    SLEEP_PRE_ONSET_RISE_C,
    SLEEP_PRE_ONSET_S,
    SLEEP_RAMP_S,
    WARM_UP_GAP_SHARE,
    WARM_UP_TAU_S,
)
from collector.simulation.episodes import EpisodeScript, EpisodeTruth, RealisedEpisode, realise
from collector.simulation.profile import PatientProfile
from collector.simulation.schedule import (
    DayPlan,
    day_plan,
    inside,
    local_day,
    time_since_edge,
    trapezoid,
)


class PatientSimulator:
    """Generates samples of one patient's wearable at a fixed interval, from a seed.

    ``band_on_ms`` is when the band was put on (sensor warm-up starts there); no samples exist
    before it. Scripted episodes are realised on construction; :meth:`ground_truth` tells what
    happened when.
    """

    def __init__(
        self,
        profile: PatientProfile,
        *,
        seed: int,
        band_on_ms: int,
        interval_ms: int = 1000,
        episodes: Sequence[EpisodeScript] = (),
    ) -> None:
        if interval_ms < 100 or interval_ms > 60_000:
            raise SimulationError(f"interval_ms {interval_ms} outside 100-60000")
        self.profile = profile
        self.seed = seed
        self.band_on_ms = band_on_ms
        self.interval_ms = interval_ms
        self._episodes: list[RealisedEpisode] = [
            realise(
                script,
                profile.device_id,
                profile.resting_hr_bpm,
                np.random.default_rng([seed, profile.index, n, 0xE915]),
            )
            for n, script in enumerate(s for s in episodes if s.patient_id == profile.patient_id)
        ]
        self._plans: dict[int, DayPlan] = {}
        self._noise_cache: dict[tuple[int, int], npt.NDArray[np.float32]] = {}
        phase_rng = np.random.default_rng([seed, profile.index, 0xA5E])
        self._hr_phases = phase_rng.uniform(0, 2 * np.pi, len(HR_WAVE_PERIODS_S))

    def ground_truth(self) -> list[EpisodeTruth]:
        """Onset, peak, offset (and syncope) of every scripted episode of this patient."""
        return [e.truth for e in self._episodes]

    def day_plan(self, day: int) -> DayPlan:
        """The sleep, activity, band-off and contact-loss events of local ``day`` (cached)."""
        plan = self._plans.get(day)
        if plan is None:
            if len(self._plans) > 8:
                self._plans.clear()
            plan = self._plans[day] = day_plan(self.profile, self.seed, day)
        return plan

    def generate(self, start_ms: int, end_ms: int) -> SampleBlock:
        """Samples at the interval grid times in ``[start_ms, end_ms)`` (none before band-on)."""
        first = -(-max(start_ms, self.band_on_ms) // self.interval_ms)
        last = -(-end_ms // self.interval_ms)
        if last - first > MAX_CHUNK_SAMPLES:
            middle = (first + MAX_CHUNK_SAMPLES) * self.interval_ms
            return _concat(self.generate(start_ms, middle), self.generate(middle, end_ms))
        slots = np.arange(first, max(first, last), dtype=np.int64)
        return self._generate_slots(slots)

    # --- internals -------------------------------------------------------------------------------

    def _plans_for(self, times_ms: IntArray) -> list[DayPlan]:
        if times_ms.size == 0:
            return []
        first = local_day(int(times_ms[0]), self.profile) - 1
        last = local_day(int(times_ms[-1]), self.profile) + 1
        return [self.day_plan(d) for d in range(first, last + 1)]

    def _noise(self, stream: int, slots: IntArray, normal: bool) -> FloatArray:
        """Noise per slot from blocks keyed by (seed, patient, stream, block): chunk-independent."""
        first = int(slots[0]) // NOISE_BLOCK_SAMPLES if slots.size else 0
        last = int(slots[-1]) // NOISE_BLOCK_SAMPLES if slots.size else 0
        if first == last:  # the usual case: one block, plain indexing
            picked: FloatArray = self._noise_block(stream, first, normal)[
                slots % NOISE_BLOCK_SAMPLES
            ].astype(np.float64)
            return picked
        blocks = slots // NOISE_BLOCK_SAMPLES
        out = np.empty(slots.shape)
        for block in range(first, last + 1):
            sel = blocks == block
            out[sel] = self._noise_block(stream, block, normal)[slots[sel] % NOISE_BLOCK_SAMPLES]
        return out

    def _noise_block(self, stream: int, block: int, normal: bool) -> npt.NDArray[np.float32]:
        key = (stream, block)
        values = self._noise_cache.get(key)
        if values is None:
            if len(self._noise_cache) >= NOISE_CACHE_BLOCKS:
                # time moves forward: forget the older half (dicts keep insertion order)
                for stale in list(self._noise_cache)[: NOISE_CACHE_BLOCKS // 2]:
                    del self._noise_cache[stale]
            rng = np.random.default_rng([self.seed, self.profile.index, stream, block])
            if normal:
                values = rng.standard_normal(NOISE_BLOCK_SAMPLES, dtype=np.float32)
            else:
                values = rng.random(NOISE_BLOCK_SAMPLES, dtype=np.float32)
            self._noise_cache[key] = values
        return values

    def _uniform(self, stream: int, slots: IntArray) -> FloatArray:
        return self._noise(stream, slots, normal=False)

    def _normal(self, stream: int, slots: IntArray) -> FloatArray:
        return self._noise(stream, slots, normal=True)

    def _pottering(self, times_ms: IntArray) -> npt.NDArray[np.bool_]:
        """Seconds of short walking bursts while up and about (keyed by spell and minute)."""
        if times_ms.size == 0:
            return np.zeros(0, dtype=bool)
        spell = times_ms // (POTTER_SPELL_S * 1000)
        minute = times_ms // 60_000
        # draws per spell and per minute, looked up by each sample
        spells = np.arange(spell[0], spell[-1] + 1)
        minutes = np.arange(minute[0], minute[-1] + 1)
        up_and_about = self._uniform(201, spells) < POTTER_SPELL_SHARE
        burst = self._uniform(202, minutes) < POTTER_BURST_PER_MIN
        in_burst: npt.NDArray[np.bool_] = up_and_about[spell - spell[0]] & burst[minute - minute[0]]
        at = np.flatnonzero(in_burst)  # the shape of a burst only where there is one
        if at.size:
            burst_minute = minute[at]
            size = POTTER_STEPS_MEDIAN * np.exp(
                POTTER_STEPS_LOG_SD * self._normal(203, burst_minute)
            )
            length_s = np.clip(size, 2, 90) / POTTER_CADENCE_PER_S
            start_s = self._uniform(204, burst_minute) * (60.0 - length_s)
            second = (times_ms[at] - burst_minute * 60_000) / 1000.0
            in_burst[at] = (second >= start_s) & (second < start_s + length_s)
        return in_burst

    def _rr_values(self, slots: IntArray, mean_rr_s: FloatArray, counts: IntArray) -> FloatArray:
        """Flat RR intervals, ``counts[i]`` of them around ``mean_rr_s[i]`` for sample ``i``."""
        width = int(counts.max()) if counts.size else 0
        if width == 0:
            return np.zeros(0)
        # the j-th interval of every sample draws from its own stream: chunk-independent
        jitter = np.stack([self._normal(20 + 2 * j, slots) for j in range(width)], axis=1)
        used = np.arange(width)[None, :] < counts[:, None]
        values = mean_rr_s[:, None] * (1.0 + RR_JITTER_FRACTION * jitter)
        flat: FloatArray = np.clip(values[used], 0.25, 2.5)
        return flat

    def _generate_slots(self, slots: IntArray) -> SampleBlock:
        p = self.profile
        t = slots * self.interval_ms
        plans = self._plans_for(t)
        cat = np.concatenate

        def events(name: str) -> npt.NDArray[np.int64]:
            return cat([getattr(d, name) for d in plans]) if plans else np.zeros((0, 2), np.int64)

        sleep, bouts, band_off = events("sleep"), events("bouts"), events("band_off")
        glitches = events("contact_glitches")
        intensity = cat([d.bout_intensity for d in plans]) if plans else np.zeros(0)

        asleep = inside(t, sleep)
        band_on = ~inside(t, band_off)
        activity = trapezoid(t, bouts, intensity, ACTIVITY_RAMP_UP_S, ACTIVITY_RAMP_DOWN_S)
        activity = np.where(asleep | ~band_on, 0.0, activity)
        hr_fx = np.zeros(t.shape)
        skin_fx = np.zeros(t.shape)
        still = np.zeros(t.shape, dtype=bool)
        unwell = np.zeros(t.shape, dtype=bool)
        seated = np.zeros(t.shape, dtype=bool)
        for episode in self._episodes:
            effect = episode.effect(t)
            hr_fx += effect.hr_bpm
            skin_fx += effect.skin_c
            still |= effect.still
            unwell |= (t >= episode.truth.onset_ms) & (t < episode.truth.offset_ms)
            seated |= effect.seated
        activity = np.where(still | seated, 0.0, activity)
        contact = band_on & ~inside(t, glitches)

        # heart rate
        local_h = (t / MS_PER_H + p.tz_offset_h) % 24.0
        circadian = p.circadian_hr_amplitude_bpm * np.cos(2 * np.pi * (local_h - 16.0) / 24.0)
        sleep_depth = trapezoid(t, sleep, np.ones(len(sleep)), 900.0, 1200.0)
        waves = sum(
            a * np.sin(2 * np.pi * t / 1000.0 / period + phase)
            for a, period, phase in zip(
                HR_WAVE_AMPLITUDES_BPM, HR_WAVE_PERIODS_S, self._hr_phases, strict=True
            )
        )
        noise_sd = p.hr_noise_bpm * (1.0 + (ACTIVE_HR_NOISE_FACTOR - 1.0) * (activity > 0.05))
        true_hr = (
            p.resting_hr_bpm
            + circadian
            - p.sleep_hr_drop_bpm * sleep_depth
            + p.activity_hr_rise_bpm * activity
            + hr_fx
            + waves
        )
        hr = np.round(true_hr + noise_sd * self._normal(1, slots))
        hr_missing = ~contact | (self._uniform(3, slots) < HR_DROPOUT_PROBABILITY)
        heart_rate = np.where(hr_missing, np.nan, np.clip(hr, 30.0, 220.0))

        # RR intervals: as many beats as fit the interval on average, jittered
        beats = np.clip(true_hr, 30.0, 220.0) * self.interval_ms / 60_000.0
        counts = np.floor(beats + self._uniform(4, slots)).astype(np.int64)
        counts = np.where(np.isnan(heart_rate), 0, np.minimum(counts, 64))
        mean_rr = 60.0 / np.clip(true_hr, 30.0, 220.0)
        rr_values = self._rr_values(slots, mean_rr, counts)

        # wrist skin temperature
        night = trapezoid(t, sleep, np.ones(len(sleep)), SLEEP_RAMP_S, 1800.0)
        pre_onset = trapezoid(
            t + round(SLEEP_PRE_ONSET_S * 1000), sleep, np.ones(len(sleep)), SLEEP_PRE_ONSET_S, 1.0
        )
        skin = (
            p.skin_day_c
            + np.maximum(SLEEP_PRE_ONSET_RISE_C * pre_onset, p.skin_night_rise_c * night)
            - ACTIVITY_SKIN_DROP_C * activity
            + skin_fx
        )
        on_edges = np.concatenate(([self.band_on_ms], band_off[:, 1]))
        since_on = time_since_edge(t, on_edges)
        since_off = time_since_edge(t, band_off[:, 0])
        warmth = np.where(
            band_on,
            1.0 - WARM_UP_GAP_SHARE * np.exp(-since_on / WARM_UP_TAU_S),
            np.exp(-since_off / COOL_DOWN_TAU_S),
        )
        sensor_c = p.ambient_c + (skin - p.ambient_c) * warmth
        sensor_c = sensor_c + SKIN_NOISE_C * self._normal(6, slots)
        sensor_c = np.round(np.round(sensor_c / SKIN_RESOLUTION_C) * SKIN_RESOLUTION_C, 2)
        glitch = contact != band_on
        sensor_c = np.where(glitch, sensor_c - 0.3, sensor_c)

        # motion: seated stillness with gestures, pottering bursts, walks (const.py, calibrated)
        awake_worn = ~asleep & band_on & ~still
        pottering = awake_worn & ~unwell & ~seated & (activity <= 0.05) & self._pottering(t)
        walking = np.where(pottering, POTTER_INTENSITY, activity)
        step_rate = np.where(
            pottering, POTTER_CADENCE_PER_S, activity * (90.0 + 80.0 * activity) / 60.0
        )
        step_rate = np.where(awake_worn & (walking > 0.05), step_rate, 0.0)
        # cadence is regular: the fraction of a step carried by a uniform draw keeps the mean
        steps = np.floor(step_rate * self.interval_ms / 1000.0 + self._uniform(7, slots))
        spread = np.exp(ACC_SD_REST_LOG_SD * self._normal(8, slots))
        # wearer's state: 0 band off or motionless, 1 asleep, 2 awake (asleep and awake exclusive)
        state = asleep.view(np.int8) + 2 * awake_worn.view(np.int8)
        floor_g = np.array([ACC_SD_MOTIONLESS_G, ACC_SD_ASLEEP_G, ACC_SD_REST_G])[state]
        gesture_p = np.array([0.0, GESTURE_PROBABILITY_ASLEEP, GESTURE_PROBABILITY_AWAKE])[state]
        # a hit's draw, rescaled by its probability, is again uniform: its size, exponential
        gesture = np.zeros(t.shape)
        draw = self._uniform(9, slots)
        at = np.flatnonzero(draw < gesture_p)
        gesture[at] = GESTURE_SCALE_G * -np.log(draw[at] / gesture_p[at] + 1e-12)
        walk_g = np.where(
            walking > 0.05, ACC_SD_WALK_BASE_G + ACC_SD_WALK_PER_INTENSITY_G * walking, 0.0
        )
        acc_sd = np.maximum(floor_g * spread + gesture, walk_g * spread)
        acc: FloatArray = (
            1.0
            + 0.15 * walking
            + ACC_G_NOISE * self._normal(10, slots)
            + GESTURE_ACC_G_SHARE * gesture
        )

        elapsed_h = (t - self.band_on_ms) / MS_PER_H
        battery = np.clip(
            np.floor(p.battery_start_percent - p.battery_drain_percent_per_h * elapsed_h), 1, 100
        )
        present = self._uniform(12, slots) >= SAMPLE_DROPOUT_PROBABILITY

        return SampleBlock(
            patient_id=p.patient_id,
            device_id=p.device_id,
            time_ms=t,
            heart_rate_bpm=heart_rate,
            rr_counts=counts,
            rr_values_s=rr_values,
            skin_temperature_c=np.clip(sensor_c, 10.0, 45.0),
            steps=np.minimum(steps, 10_000).astype(np.int64),
            acceleration_g=np.round(np.clip(acc, 0.0, 32.0), 4).astype(np.float64),
            acceleration_sd_g=np.round(np.clip(acc_sd, 0.0, 32.0), 4),
            contact_detected=contact,
            battery_percent=battery.astype(np.int64),
            present=present,
            asleep=asleep,
            activity=activity,
            band_on=band_on,
        )


def _concat(a: SampleBlock, b: SampleBlock) -> SampleBlock:
    fields = {
        name: np.concatenate((getattr(a, name), getattr(b, name)))
        for name in SampleBlock.__dataclass_fields__
        if name not in ("patient_id", "device_id")
    }
    return SampleBlock(patient_id=a.patient_id, device_id=a.device_id, **fields)
