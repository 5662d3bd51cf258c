"""The flush rule of the patient detector (a mixin of its state).

Skin warming with a heart-rate rise without exercise (seated gestures allowed): skin >= 0.25 degC
above its reference and still warming by 0.10 degC/min, within 0.2 degC of its recent peak (1.10:
not once the warming is over), two-minute heart rate >= 2 % above its reference, for 30 s. Needs a
skin-temperature sensor: with heart rate only, flushes cannot be told from ordinary rises and are
not reported.
"""

from __future__ import annotations

from models.alarm import Alarm, AlarmKind, Severity
from models.const import MAX_EPISODE_S, RELEASE_FRAC, RELEASE_PERSIST_S
from models.episodes import EpisodeLatch, LatchEvent, LatchState, advance
from models.rule_alarms import RuleAlarms


class FlushRules(RuleAlarms):
    """Flush detection: skin warming with the heart up, at rest, while the skin is still warm."""

    flush_temp_rise_c: float
    flush_temp_slope_c_per_min: float
    flush_hr_rise_frac: float
    flush_max_fall_c: float
    flush_persist_s: float
    flush: EpisodeLatch

    def _detect_flush(self, t: float, alarms: list[Alarm]) -> None:
        tr = self.tracker
        temp_rise = tr.temp_rise_c()
        latch = self.flush
        if temp_rise is None and latch.state is LatchState.IDLE:
            return
        temp_rise = temp_rise if temp_rise is not None else 0.0
        if latch.state is LatchState.IDLE or latch.state is LatchState.PENDING:
            onset = (
                tr.temp_settled
                and not tr.exercised_recently(t)
                and temp_rise >= self.flush_temp_rise_c
                and tr.temp_slope_c_per_min() >= self.flush_temp_slope_c_per_min
                and tr.hr_mid_rise_frac() >= self.flush_hr_rise_frac
                and tr.temp_fall_c() <= self.flush_max_fall_c
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
            alarms.append(self._alarm(t, AlarmKind.FLUSH, Severity.WARNING, evidence=evidence))
        elif event is LatchEvent.RESOLVED:
            end = {"episode_no": float(latch.episode_no)}
            alarms.append(
                self._alarm(t, AlarmKind.FLUSH, Severity.WARNING, resolved=True, evidence=end)
            )
