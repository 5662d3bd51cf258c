"""The flush rule of the patient detector (a mixin of its state).

Skin warming with a heart-rate rise without exercise (seated gestures allowed): skin >= 0.25 degC
above its reference and still warming by 0.10 degC/min, within 0.2 degC of its recent peak (1.10:
not once the warming is over), two-minute heart rate >= 2 % above its reference, for 30 s.

On a skin that was cooling (1.11): skin 0.6 degC above its own straight-line course of 5-10 min
ago (:mod:`models.skin_trend`), still warming by 0.06 degC/min, the heart 5 % above its rate
5 min ago and not below its reference, for 60 s, then the same 30 s.

Needs a skin-temperature sensor: with heart rate only, flushes cannot be told from ordinary rises
and are not reported.
"""

from __future__ import annotations

from models.alarm import Alarm, AlarmKind, Severity
from models.const import (
    FLUSH_TREND_HOLD_S,
    FLUSH_TREND_HR_RISE_FRAC,
    FLUSH_TREND_RISE_C,
    FLUSH_TREND_SLOPE_C_PER_MIN,
    MAX_EPISODE_S,
    RELEASE_FRAC,
    RELEASE_PERSIST_S,
)
from models.episodes import EpisodeLatch, LatchEvent, LatchState, advance
from models.rule_alarms import RuleAlarms
from models.skin_trend import SkinTrend


class FlushRules(RuleAlarms):
    """Flush detection: skin warming with the heart up, at rest, while the skin is still warm."""

    flush_temp_rise_c: float
    flush_temp_slope_c_per_min: float
    flush_hr_rise_frac: float
    flush_max_fall_c: float
    flush_persist_s: float
    flush_trend: bool
    flush: EpisodeLatch
    skin_trend: SkinTrend
    flush_trend_since_s: float | None

    def _detect_flush(self, t: float, alarms: list[Alarm]) -> None:
        tr = self.tracker
        latch = self.flush
        self.skin_trend.observe(t, tr.temp_fast, tr.hr_mid, tr.temp_settled)
        if self.flush_trend and self._warming_over_trend(t):
            if self.flush_trend_since_s is None:
                self.flush_trend_since_s = t
        else:
            self.flush_trend_since_s = None
        temp_rise = tr.temp_rise_c()
        if temp_rise is None and latch.state is LatchState.IDLE:
            return
        temp_rise = temp_rise if temp_rise is not None else 0.0
        if latch.state is LatchState.IDLE or latch.state is LatchState.PENDING:
            over_trend = (
                self.flush_trend_since_s is not None
                and t - self.flush_trend_since_s >= FLUSH_TREND_HOLD_S
            )
            onset = (
                tr.temp_settled
                and not tr.sensor_rewarming
                and not tr.exercised_recently(t)
                and tr.temp_fall_c() <= self.flush_max_fall_c
                and (
                    over_trend
                    or (
                        temp_rise >= self.flush_temp_rise_c
                        and tr.temp_slope_c_per_min() >= self.flush_temp_slope_c_per_min
                        and tr.hr_mid_rise_frac() >= self.flush_hr_rise_frac
                    )
                )
            )
        else:
            onset = temp_rise >= self.flush_temp_rise_c * RELEASE_FRAC
        release = temp_rise < self.flush_temp_rise_c * RELEASE_FRAC
        was_active = latch.state is LatchState.ACTIVE
        event = advance(
            latch, t, onset, release, self.flush_persist_s, RELEASE_PERSIST_S, MAX_EPISODE_S
        )
        if event is LatchEvent.EXPIRED:
            self.tracker.restart_temp_reference()  # the skin settled warm: that is its level now
            if was_active:
                alarms.append(self._expired(t, AlarmKind.FLUSH, latch))
            return
        if event is LatchEvent.ONSET:
            evidence = self._evidence(t)
            evidence["episode_no"] = float(latch.episode_no)
            evidence["onset"] = 1.0
            above = self.skin_trend.above_trend_c(t, tr.temp_fast or 0.0)
            evidence["temp_above_trend_c"] = round(above if above is not None else 0.0, 3)
            evidence["over_trend"] = 1.0 if self.flush_trend_since_s is not None else 0.0
            alarms.append(self._alarm(t, AlarmKind.FLUSH, Severity.WARNING, evidence=evidence))
        elif event is LatchEvent.RESOLVED:
            end = {"episode_no": float(latch.episode_no)}
            alarms.append(
                self._alarm(t, AlarmKind.FLUSH, Severity.WARNING, resolved=True, evidence=end)
            )

    def _warming_over_trend(self, t: float) -> bool:
        """The skin warms well above its own recent course with the heart up (cheap gates first)."""
        tr = self.tracker
        if (
            tr.temp_fast is None
            or tr.hr_mid is None
            or not (self.flush.state is LatchState.IDLE or self.flush.state is LatchState.PENDING)
            or tr.temp_slope_c_per_min() < FLUSH_TREND_SLOPE_C_PER_MIN
            or tr.hr_mid_rise_frac() < 0.0
            or tr.temp_fall_c() > self.flush_max_fall_c
            or tr.exercised_recently(t)
        ):
            return False
        above = self.skin_trend.above_trend_c(t, tr.temp_fast)
        change = self.skin_trend.hr_change_frac(t, tr.hr_mid)
        return (
            above is not None
            and change is not None
            and above >= FLUSH_TREND_RISE_C
            and change >= FLUSH_TREND_HR_RISE_FRAC
        )
