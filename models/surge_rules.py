"""The anaphylaxis-like surge rules of the patient detector (a mixin of its state).

* **main path** — heart rate at rest rises fast and stays up: smoothed rate >= 15 % and >= 10 bpm
  above the short resting reference and >= 20 % above this patient's usual resting rate at this
  hour, not recovering from exercise, with the evidence (excess rise x time, CUSUM) at 70 frac·s
  (or, in the 'personal' profile, the smallest level this patient's own rest reaches at most
  0.2 times a day: :mod:`models.calibration`); the baselines hold still while it builds.
* **surge then stillness** — a +10 % surge followed by a motionless wrist (syncope) where motion
  is measured alarms on its own; only a sudden stillness counts (1.12): the wrist went still
  within 10 min, after being still less than a quarter of the recent past (not asleep).
* **non-recovery** (1.6) — within 30 min after exercise, a heart that does not slow down once
  the steps have stopped, 45 % above the hour's usual rest.

Critical when the surge reaches 30 %, lasts 5 min, or is followed by stillness.
"""

from __future__ import annotations

import math
from abc import abstractmethod

from models.alarm import Alarm, AlarmKind, Severity
from models.calibration import EvidenceCalibration
from models.const import (
    ACC_SD_STILL_G,
    MAX_EPISODE_S,
    RECOVERY_SURGE_SCORE_FRAC_S,
    RECOVERY_SURGE_TOD_FRAC,
    RELEASE_FRAC,
    RELEASE_PERSIST_S,
    STILL_AFTER_SURGE_S,
    STILL_MOTION_MAX_AGE_S,
    STILL_SHARE_ASLEEP,
    STILL_SHARE_TAU_S,
    STILL_SUDDEN_MAX_S,
    STILL_SURGE_RISE_FRAC,
    SURGE_CRITICAL_AFTER_S,
    SURGE_CRITICAL_FRAC,
    WARMUP_S,
)
from models.const import (
    SURGE_MIN_TEMP_SLOPE_C_PER_MIN as SURGE_MIN_TEMP_SLOPE,
)
from models.episodes import EpisodeLatch, LatchEvent, LatchState, advance
from models.rule_alarms import RuleAlarms


class SurgeRules(RuleAlarms):
    """Anaphylaxis-like detection: the surge evidence, its three paths and the escalation."""

    surge_rise_frac: float
    surge_min_bpm: float
    surge_tod_margin_frac: float
    surge_score_frac_s: float
    surge_target_per_day: float | None
    surge: EpisodeLatch
    calibration: EvidenceCalibration
    surge_score: float
    recovery_score: float
    surge_time_s: float | None
    still_since_s: float | None
    still_share: float
    still_share_before: float
    still_reported: bool

    @abstractmethod
    def evidence_needed(self) -> float:
        """Surge evidence (frac·s) this patient needs for an alarm now."""

    def _detect_surge(self, t: float, alarms: list[Alarm]) -> None:
        tr = self.tracker
        rise = tr.hr_rise_frac()
        latch = self.surge
        dt = min(t - self.surge_time_s, 60.0) if self.surge_time_s is not None else 0.0
        self.surge_time_s = t
        syncope = self._syncope(t, dt)
        onset = False
        if latch.state is LatchState.IDLE or latch.state is LatchState.PENDING:
            tod = tr.tod_rise_frac(t)
            gated = tr.worn_for(t) >= WARMUP_S and tr.resting(t)
            skin_slope = tr.skin_slope_c_per_min()
            cooling = skin_slope is not None and skin_slope < SURGE_MIN_TEMP_SLOPE
            surging = (
                gated
                and not cooling
                and rise >= self.surge_rise_frac
                and tr.hr_rise_bpm() >= self.surge_min_bpm
                and (tod is None or tod >= self.surge_tod_margin_frac)
                and (self.surge_score > 0.0 or tr.hr_trend_bpm() >= 0.0)
            )
            # evidence is the excess rise integrated over time (a CUSUM): it grows while every
            # condition holds, shrinks by the shortfall while the rise dips below the threshold
            # (one low optical reading no longer wipes it, as before 1.4), holds while the skin
            # cools (the slope estimate dips below the veto for seconds at a time; until 1.8 it
            # wiped minutes of evidence) and restarts from zero only when the wearer moves or
            # the band settles
            step = (rise - self.surge_rise_frac) * dt
            if step > 0.0 and not surging:
                step = 0.0
            if not gated:
                self.surge_score = 0.0
            elif not cooling:
                self.surge_score = max(0.0, self.surge_score + step)
            onset = surging and self.surge_score >= self.evidence_needed()
            # second path: a smaller surge followed by a motionless wrist (syncope)
            onset = onset or (syncope and self._surge_then_still(t))
            # third path: after exercise the heart does not slow down
            not_recovering = self._not_recovering(t, dt)
            onset = onset or not_recovering
        else:
            self.recovery_score = 0.0
            not_recovering = False
            onset = rise >= self.surge_rise_frac * RELEASE_FRAC
        release = rise < self.surge_rise_frac * RELEASE_FRAC
        self.calibration.observe(t, self.surge_score)
        was_active = latch.state is LatchState.ACTIVE
        event = advance(latch, t, onset, release, 0.0, RELEASE_PERSIST_S, MAX_EPISODE_S)
        if event is LatchEvent.EXPIRED:
            # two hours up without calming down: that level is this patient's state now (a
            # fever, a sensor fault...), so the reference restarts from it; before 1.5 it stayed
            # at the old rest and the surge re-alarmed every two hours (30 false alarms in 2.6
            # days of one held-out user with heart rate at 130-150 for a day and a half)
            self.tracker.restart_heart_reference()
            self.surge_score = 0.0
            if was_active:
                alarms.append(self._expired(t, AlarmKind.ANAPHYLAXIS, latch))
            return
        if latch.state is LatchState.SUPPRESSED and syncope and self._surge_then_still(t):
            # the confirmer vetoed the surge, but the wrist has since gone still (syncope):
            # that is the surge-then-syncope path, which the confirmer never vetoes
            latch.state = LatchState.ACTIVE
            event = LatchEvent.ONSET
        if event is LatchEvent.ONSET:
            evidence = self._evidence(t)
            evidence["episode_no"] = float(latch.episode_no)
            evidence["onset"] = 1.0
            evidence["surge_score"] = round(self.surge_score, 2)
            evidence["surge_needed"] = self.evidence_needed()
            evidence["recovery"] = 1.0 if not_recovering else 0.0
            self.surge_score = self.recovery_score = 0.0
            evidence["still"] = 1.0 if syncope else 0.0
            self.still_reported = syncope
            critical = rise >= SURGE_CRITICAL_FRAC or syncope
            latch.severity_critical = critical
            severity = Severity.CRITICAL if critical else Severity.WARNING
            alarms.append(self._alarm(t, AlarmKind.ANAPHYLAXIS, severity, evidence=evidence))
        elif event is LatchEvent.RESOLVED:
            # the episode number tells the bank which vetoed episode a resolution in the same
            # batch belongs to (as for flushes); without it a never-raised episode ended aloud
            end = {"episode_no": float(latch.episode_no)}
            alarms.append(
                self._alarm(t, AlarmKind.ANAPHYLAXIS, Severity.WARNING, resolved=True, evidence=end)
            )
        elif latch.state is LatchState.ACTIVE and (
            not latch.severity_critical or (syncope and not self.still_reported)
        ):
            # escalate once to critical, and report once that the wrist went still (syncope)
            self._maybe_escalate(t, rise, syncope, alarms)

    def _not_recovering(self, t: float, dt: float) -> bool:
        """Within the recovery time after exercise, at rest again, the heart does not slow down.

        The short reference followed the heart up during the exercise, so only the usual resting
        rate of the hour shows the rise; its excess over RECOVERY_SURGE_TOD_FRAC is integrated
        while the two-minute rate is not below its five-minute average, and shrinks otherwise.
        """
        tr = self.tracker
        # the cheap conditions first: this runs on every sample
        if tr.hr_slow is None or not (
            tr.recovering(t) and tr.resting(t) and tr.worn_for(t) >= WARMUP_S
        ):
            self.recovery_score = 0.0
            return False
        tod = tr.tod_rise_frac(t)
        if tod is None:
            self.recovery_score = 0.0
            return False
        excess = tod - RECOVERY_SURGE_TOD_FRAC
        if excess >= 0.0 and not tr.hr_slowing():
            self.recovery_score += excess * dt
        else:
            self.recovery_score = max(0.0, self.recovery_score - abs(excess) * dt)
        return self.recovery_score >= RECOVERY_SURGE_SCORE_FRAC_S

    def _surge_then_still(self, t: float) -> bool:
        """A smaller but clear surge is running (the heart-rate part of surge-then-syncope)."""
        tr = self.tracker
        return (
            tr.worn_for(t) >= WARMUP_S
            and tr.hr_mid_rise_frac() >= STILL_SURGE_RISE_FRAC
            and tr.hr_rise_bpm() >= self.surge_min_bpm
        )

    def _syncope(self, t: float, dt: float) -> bool:
        """The wrist went still a while ago, suddenly (only where motion is measured, lately).

        Sudden: within the last STILL_SUDDEN_MAX_S, from a wrist that had been still less than
        STILL_SHARE_ASLEEP of the recent past. A wrist still for long, or most of the time
        (asleep), says nothing of a faint.
        """
        tr = self.tracker
        acc, acc_time_s = tr.acc_sd_fast, tr.acc_time_s
        if acc is None or acc_time_s is None or t - acc_time_s > STILL_MOTION_MAX_AGE_S:
            measured = still = False
        else:
            measured, still = True, acc < ACC_SD_STILL_G and not tr.off_wrist
        if still and self.still_since_s is None:
            self.still_since_s, self.still_share_before = t, self.still_share
        elif not still:
            self.still_since_s = None
        if measured:
            weight = 1.0 - math.exp(-dt / STILL_SHARE_TAU_S)
            self.still_share += weight * (float(still) - self.still_share)
        if self.still_since_s is None or self.still_share_before >= STILL_SHARE_ASLEEP:
            return False
        return STILL_AFTER_SURGE_S <= t - self.still_since_s <= STILL_SUDDEN_MAX_S

    def _maybe_escalate(self, t: float, rise: float, syncope: bool, alarms: list[Alarm]) -> None:
        latch = self.surge
        sustained = t - latch.since_s >= SURGE_CRITICAL_AFTER_S and rise >= self.surge_rise_frac
        if rise >= SURGE_CRITICAL_FRAC or syncope or sustained:
            latch.severity_critical = True
            self.still_reported = self.still_reported or syncope
            evidence = self._evidence(t)
            evidence["episode_no"] = float(latch.episode_no)
            evidence["still"] = 1.0 if syncope else 0.0
            alarms.append(
                self._alarm(t, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, evidence=evidence)
            )
