"""The per-patient detector of flushes, anaphylaxis-like surges and signal states.

Rules, in words (figures and sources in ``docs/models.md``):

* **anaphylaxis-like** — heart rate at rest rises fast and stays up: smoothed rate >= 15 % and
  >= 10 bpm above the short resting reference and >= 20 % above this patient's usual resting rate
  at this hour, not recovering from exercise, with the evidence (excess rise x time, CUSUM) at
  70 %·s (or, in the 'personal' profile, the smallest level this patient's own rest reaches at
  most 0.2 times a day: :mod:`models.calibration`); the baselines hold still while the evidence
  builds. Critical when the surge reaches 30 %, lasts 5 min, or is followed by stillness
  (syncope) where motion is measured; a +10 % surge followed by stillness alarms on its own.
  Within 30 min after exercise, a heart that does not slow down once the steps have stopped,
  45 % above the hour's usual rest, is anaphylaxis-like too (the non-recovery path, 1.6).
* **flush** — skin warming with a heart-rate rise without exercise (seated gestures allowed):
  skin >= 0.25 degC above its reference and still warming by 0.10 degC/min, two-minute heart
  rate >= 2 % above its reference, for 30 s. Needs a skin-temperature
  sensor: with heart rate only, flushes cannot be told from ordinary rises and are not reported.
* **no_contact / no_data** — signal states, never mistaken for a patient in trouble. Contact is
  lost when the band says so, or when the skin temperature drops by degrees within seconds (the
  band came off the wrist: most bands have no contact bit, and some go on reporting a heart rate
  from the table); readings taken off the wrist are ignored.

Every onset goes through an :class:`~models.episodes.EpisodeLatch`, so a continuing episode raises
one alarm (plus one escalation to critical) and one ``resolved`` alarm when it ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind, Severity
from models.base import StreamingDetector
from models.calibration import EvidenceCalibration
from models.const import (
    ACC_SD_STILL_G,
    FLUSH_HR_RISE_FRAC,
    FLUSH_MAX_FALL_C,
    FLUSH_PERSIST_S,
    FLUSH_TEMP_RISE_C,
    FLUSH_TEMP_SLOPE_C_PER_MIN,
    MAX_EPISODE_S,
    MODEL_VERSION,
    NO_CONTACT_AFTER_S,
    NO_DATA_AFTER_S,
    RECOVERY_SURGE_SCORE_FRAC_S,
    RECOVERY_SURGE_TOD_FRAC,
    RELEASE_FRAC,
    RELEASE_PERSIST_S,
    STILL_AFTER_SURGE_S,
    STILL_SURGE_RISE_FRAC,
    SURGE_CRITICAL_AFTER_S,
    SURGE_CRITICAL_FRAC,
    SURGE_MIN_BPM,
    SURGE_RISE_FRAC,
    SURGE_SCORE_FRAC_S,
    SURGE_TOD_MARGIN_FRAC,
    WARMUP_S,
)
from models.const import (
    SURGE_MIN_TEMP_SLOPE_C_PER_MIN as SURGE_MIN_TEMP_SLOPE,
)
from models.episodes import EpisodeLatch, LatchEvent, LatchState, advance
from models.errors import ModelError
from models.features import SignalTracker, check_state_fields, check_state_value

_SCALAR_STATE: dict[str, str] = {
    "no_data_alarmed": "bool",
    "no_contact_since_s": "float | None",
    "no_contact_alarmed": "bool",
    "still_since_s": "float | None",
    "rejected_samples": "int",
    "surge_score": "float",
    "recovery_score": "float",
    "surge_time_s": "float | None",
    "still_reported": "bool",
}
"""The detector's own state entries (besides the dataclasses) and what each must hold."""


class PatientDetector(StreamingDetector):
    """Flush, anaphylaxis-like and signal-state detection for one patient (rules, no learning).

    Parameters are the thresholds of the rules above (defaults in :mod:`models.const`);
    ``surge_target_per_day`` calibrates the surge evidence per patient to that many false alarms
    a day (``None``, the default: the fixed ``surge_score_frac_s``). The calibration counts are
    kept either way, so a patient switched to a calibrated profile starts with their history.
    The learned confirmation of candidates across patients lives in
    :class:`models.bank.DetectorBank`.
    """

    def __init__(
        self,
        patient_id: str = "patient",
        model_version: str = MODEL_VERSION,
        surge_rise_frac: float = SURGE_RISE_FRAC,
        surge_min_bpm: float = SURGE_MIN_BPM,
        surge_tod_margin_frac: float = SURGE_TOD_MARGIN_FRAC,
        surge_score_frac_s: float = SURGE_SCORE_FRAC_S,
        surge_target_per_day: float | None = None,
        flush_temp_rise_c: float = FLUSH_TEMP_RISE_C,
        flush_temp_slope_c_per_min: float = FLUSH_TEMP_SLOPE_C_PER_MIN,
        flush_hr_rise_frac: float = FLUSH_HR_RISE_FRAC,
        flush_max_fall_c: float = FLUSH_MAX_FALL_C,
        flush_persist_s: float = FLUSH_PERSIST_S,
        no_data_after_s: float = NO_DATA_AFTER_S,
    ) -> None:
        self.patient_id = patient_id
        self.model_version = model_version
        self.surge_rise_frac = surge_rise_frac
        self.surge_min_bpm = surge_min_bpm
        self.surge_tod_margin_frac = surge_tod_margin_frac
        self.surge_score_frac_s = surge_score_frac_s
        self.surge_target_per_day = surge_target_per_day
        self.flush_temp_rise_c = flush_temp_rise_c
        self.flush_temp_slope_c_per_min = flush_temp_slope_c_per_min
        self.flush_hr_rise_frac = flush_hr_rise_frac
        self.flush_max_fall_c = flush_max_fall_c
        self.flush_persist_s = flush_persist_s
        self.no_data_after_s = no_data_after_s

    # -- state (created lazily: no work in __init__) ------------------------------------------
    def _ensure_state(self) -> None:
        if "tracker" not in vars(self):
            self.tracker = SignalTracker()
            self.surge = EpisodeLatch()
            self.calibration = EvidenceCalibration()
            self.flush = EpisodeLatch()
            self.no_data_alarmed = False
            self.no_contact_since_s: float | None = None
            self.no_contact_alarmed = False
            self.still_since_s: float | None = None
            self.rejected_samples = 0
            self.surge_score = 0.0
            self.recovery_score = 0.0
            self.surge_time_s: float | None = None
            self.still_reported = False

    def state_dict(self) -> dict[str, Any]:
        """Learned state as plain JSON-able data (baselines, latches, signal states)."""
        self._ensure_state()
        state = super().state_dict()
        for key in ("tracker", "surge", "flush", "calibration"):
            state[key] = dataclasses.asdict(getattr(self, key))
        return state

    def _import_state(self, state: dict[str, Any]) -> None:
        # the cause names the entry at fault, never its value (it may be health data)
        try:
            if not isinstance(state, dict):
                raise TypeError(f"saved state is a {type(state).__name__}, not a mapping")
            tracker = SignalTracker(**state.pop("tracker", None) or {})
            # states saved before 1.6 have no calibration: it starts afresh
            calibration = EvidenceCalibration(**state.pop("calibration", None) or {})
            latches = {k: EpisodeLatch(**(state.pop(k, None) or {})) for k in ("surge", "flush")}
            for latch in latches.values():
                latch.state = LatchState(latch.state)
                check_state_fields(latch)
            check_state_fields(calibration)
            for key, value in state.items():
                if key not in _SCALAR_STATE:
                    raise ValueError(f"saved state has an unknown entry {key!r}")
                check_state_value(key, value, _SCALAR_STATE[key])
        except (TypeError, ValueError) as exc:
            raise ModelError(
                f"saved detector state of patient {self.patient_id!r} does not fit "
                f"{self.model_version}: discard it and let the baselines relearn"
            ) from exc
        self._ensure_state()
        super()._import_state(state)
        self.tracker = tracker
        self.calibration = calibration
        self.surge, self.flush = latches["surge"], latches["flush"]

    @property
    def last_time_s(self) -> float | None:
        """Time of the newest sample folded in (None before the first)."""
        return vars(self)["tracker"].last_time_s if "tracker" in vars(self) else None

    # -- streaming ----------------------------------------------------------------------------
    def update(self, samples: Iterable[Sample]) -> list[Alarm]:
        """Fold samples (oldest first) in; out-of-order or repeated samples are counted, skipped."""
        self._ensure_state()
        alarms: list[Alarm] = []
        for sample in samples:
            self._step(sample, alarms)
        return alarms

    def check_silence(self, now_s: float) -> list[Alarm]:
        """A ``no_data`` alarm once no heart rate arrived for ``no_data_after_s`` (then silent).

        Samples without one (a Fitbit's step counts, a thermometer) do not end the silence:
        without a heart rate nothing is watched. (Before 1.7 any sample did, and a band that
        went on counting steps without a heart rate raised and cleared "no data" every few
        minutes: 27 times a day for one held-out Fitbit user.) While the band says it has lost
        contact, ``no_contact`` tells that already.
        """
        self._ensure_state()
        tr = self.tracker
        last = tr.hr_time_s if tr.hr_time_s is not None else tr.last_time_s
        if (
            last is None
            or self.no_data_alarmed
            or self.no_contact_since_s is not None
            or now_s - last < self.no_data_after_s
        ):
            return []
        self.no_data_alarmed = True
        return [self._alarm(last + self.no_data_after_s, AlarmKind.NO_DATA, Severity.WARNING)]

    def retract(self, kind: AlarmKind, episode_no: int) -> None:
        """The confirmer rejected this onset: keep the episode silent until it ends."""
        latch = self.surge if kind is AlarmKind.ANAPHYLAXIS else self.flush
        if latch.episode_no == episode_no and latch.state is LatchState.ACTIVE:
            latch.state = LatchState.SUPPRESSED

    def _alarm(
        self,
        time_s: float,
        kind: AlarmKind,
        severity: Severity,
        *,
        resolved: bool = False,
        evidence: dict[str, float] | None = None,
    ) -> Alarm:
        return Alarm(
            patient_id=self.patient_id,
            time_s=time_s,
            kind=kind,
            severity=severity,
            model_version=self.model_version,
            resolved=resolved,
            evidence=evidence or {},
        )

    def _step(self, sample: Sample, alarms: list[Alarm]) -> None:
        t = sample.time_ms / 1000.0
        tr = self.tracker
        if tr.last_time_s is not None and t <= tr.last_time_s:
            self.rejected_samples += 1
            return
        if tr.last_time_s is not None and not self.no_data_alarmed:
            alarms.extend(self.check_silence(t))
        hr, temp, acc_sd = (
            sample.heart_rate_bpm,
            sample.skin_temperature_c,
            sample.acceleration_sd_g,
        )
        if tr.check_wrist(t, temp):
            # off the wrist its readings are the room's and the optical sensor's noise
            hr = temp = acc_sd = None
        if sample.contact_detected is False or tr.off_wrist:
            hr = None
            self._no_contact(t, alarms)
        elif self.no_contact_since_s is not None and (sample.contact_detected or hr is not None):
            self.no_contact_since_s = None
            if self.no_contact_alarmed:
                self.no_contact_alarmed = False
                alarms.append(self._alarm(t, AlarmKind.NO_CONTACT, Severity.WARNING, resolved=True))
        if self.no_data_alarmed and hr is not None:
            self.no_data_alarmed = False
            alarms.append(self._alarm(t, AlarmKind.NO_DATA, Severity.WARNING, resolved=True))
        # baselines learn nothing while an episode runs or surge evidence is building (before
        # 1.4 the reference crept up ~5 % during the build-up and hid small surges)
        engaged = self.surge.engaged or self.flush.engaged or self.surge_score > 0.0
        tr.step(t, hr, temp, sample.steps, acc_sd, freeze=engaged)
        self._detect_surge(t, alarms)
        self._detect_flush(t, alarms)

    def _no_contact(self, t: float, alarms: list[Alarm]) -> None:
        if self.no_contact_since_s is None:
            self.no_contact_since_s = t
        if not self.no_contact_alarmed and t - self.no_contact_since_s >= NO_CONTACT_AFTER_S:
            self.no_contact_alarmed = True
            alarms.append(self._alarm(t, AlarmKind.NO_CONTACT, Severity.WARNING))

    def _evidence(self, t: float) -> dict[str, float]:
        tr = self.tracker
        tod = tr.tod_rise_frac(t)
        temp_rise = tr.temp_rise_c()
        since_active = t - tr.last_active_s if tr.last_active_s is not None else tr.worn_for(t)
        return {
            "hr_bpm": round(tr.hr_fast or 0.0, 1),
            "hr_ref_bpm": round(tr.hr_ref or 0.0, 1),
            "hr_rise_frac": round(tr.hr_rise_frac(), 4),
            "hr_tod_rise_frac": round(tod if tod is not None else 0.0, 4),
            "hr_trend_bpm": round(tr.hr_trend_bpm(), 2),
            "temp_rise_c": round(temp_rise if temp_rise is not None else 0.0, 3),
            "temp_slope_c_per_min": round(tr.temp_slope_c_per_min(), 4),
            "has_temp": 1.0 if temp_rise is not None else 0.0,
            "has_motion": 1.0 if tr.acc_sd_fast is not None else 0.0,
            "activity_known": 1.0 if tr.activity_known(t) else 0.0,
            "rest_s": round(min(since_active, 6 * 3600.0), 0),
            "worn_s": round(min(tr.worn_for(t), 6 * 3600.0), 0),
            "hr_noise_frac": round(tr.hr_noise_frac(), 4),
        }

    def _detect_surge(self, t: float, alarms: list[Alarm]) -> None:
        tr = self.tracker
        rise = tr.hr_rise_frac()
        latch = self.surge
        dt = min(t - self.surge_time_s, 60.0) if self.surge_time_s is not None else 0.0
        self.surge_time_s = t
        syncope = self._syncope(t)
        onset = False
        if latch.state is LatchState.IDLE or latch.state is LatchState.PENDING:
            tod = tr.tod_rise_frac(t)
            gated = tr.worn_for(t) >= WARMUP_S and tr.resting(t)
            cooling = tr.temp_fast is not None and tr.temp_slope_c_per_min() < SURGE_MIN_TEMP_SLOPE
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
            alarms.append(self._alarm(t, AlarmKind.ANAPHYLAXIS, Severity.WARNING, resolved=True))
        elif latch.state is LatchState.ACTIVE and (
            not latch.severity_critical or (syncope and not self.still_reported)
        ):
            # escalate once to critical, and report once that the wrist went still (syncope)
            self._maybe_escalate(t, rise, syncope, alarms)

    def evidence_needed(self) -> float:
        """Surge evidence (%·s) this patient needs for an alarm now: calibrated or fixed."""
        self._ensure_state()
        if self.surge_target_per_day is None:
            return self.surge_score_frac_s
        return self.calibration.level(self.surge_score_frac_s, self.surge_target_per_day)

    def _expired(self, t: float, kind: AlarmKind, latch: EpisodeLatch) -> Alarm:
        """The end of an episode that never calmed down (``expired`` = 1 in its evidence)."""
        end = {"episode_no": float(latch.episode_no), "expired": 1.0}
        return self._alarm(t, kind, Severity.WARNING, resolved=True, evidence=end)

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

    def _syncope(self, t: float) -> bool:
        """The wrist has been motionless for a while (only where motion is measured)."""
        acc = self.tracker.acc_sd_fast
        if acc is not None and acc < ACC_SD_STILL_G and not self.tracker.off_wrist:
            self.still_since_s = self.still_since_s if self.still_since_s is not None else t
        else:
            self.still_since_s = None
        return self.still_since_s is not None and t - self.still_since_s >= STILL_AFTER_SURGE_S

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
