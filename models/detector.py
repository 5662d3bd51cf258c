"""The per-patient detector of flushes, anaphylaxis-like surges and signal states.

It combines the rules, each in its own module with its figures (sources in ``docs/models.md``):

* **anaphylaxis-like** — a fast, sustained heart-rate surge at rest, a smaller surge followed by
  a motionless wrist (syncope), or a heart that does not slow down after exercise
  (:mod:`models.surge_rules`);
* **flush** — skin warming with a heart-rate rise at rest (:mod:`models.flush_rules`; needs a
  skin-temperature sensor);
* **no_contact / no_data** — signal states (here), never mistaken for a patient in trouble.
  Contact is lost when the band says so, or when the skin temperature drops by degrees within
  seconds (the band came off the wrist: most bands have no contact bit, and some go on reporting
  a heart rate from the table); readings taken off the wrist are ignored.

Every onset goes through an :class:`~models.episodes.EpisodeLatch`, so a continuing episode raises
one alarm (plus one escalation to critical) and one ``resolved`` alarm when it ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flarewatch.const import MIN_VALID_TIME_MS
from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind, Severity
from models.base import StreamingDetector
from models.calibration import EvidenceCalibration
from models.const import (
    FLUSH_HR_RISE_FRAC,
    FLUSH_MAX_FALL_C,
    FLUSH_PERSIST_S,
    FLUSH_TEMP_RISE_C,
    FLUSH_TEMP_SLOPE_C_PER_MIN,
    LATEST_VALID_TIME_S,
    MODEL_VERSION,
    NO_CONTACT_AFTER_S,
    NO_DATA_AFTER_S,
    SURGE_MIN_BPM,
    SURGE_RISE_FRAC,
    SURGE_SCORE_FRAC_S,
    SURGE_TOD_MARGIN_FRAC,
)
from models.episodes import EpisodeLatch, LatchState
from models.errors import ModelError
from models.features import SignalTracker
from models.flush_rules import FlushRules
from models.skin_trend import SkinTrend
from models.state_checks import check_state_fields, check_state_value, check_times_not_after
from models.surge_rules import SurgeRules

_SCALAR_STATE: dict[str, str] = {
    "no_data_alarmed": "bool",
    "no_contact_since_s": "float | None",
    "no_contact_alarmed": "bool",
    "still_since_s": "float | None",
    "still_share": "float",
    "still_share_before": "float",
    "rejected_samples": "int",
    "surge_score": "float",
    "recovery_score": "float",
    "surge_time_s": "float | None",
    "still_reported": "bool",
    "flush_trend_since_s": "float | None",
}
"""The detector's own state entries (besides the dataclasses) and what each must hold."""

_TRACKER_TIMES = (
    "wear_start_s",
    "last_active_s",
    "last_exercise_s",
    "activity_signal_s",
    "hr_time_s",
    "temp_time_s",
    "temp_on_skin_s",
    "temp_back_s",
    "temp_back_top_s",
    "acc_time_s",
    "acc_dropped_s",
    "temp_dropped_s",
    "off_wrist_since_s",
    "off_wrist_level_s",
    "off_wrist_moved_s",
    "off_wrist_still_s",
)
"""Times in the tracker: all at or before its newest sample (later ones are a damaged state)."""
_SCALAR_TIMES = ("no_contact_since_s", "still_since_s", "surge_time_s", "flush_trend_since_s")


def _contract_range(name: str) -> tuple[float, float]:
    """The lowest and highest value the wire contract accepts in a Sample field (its ge/le)."""
    metadata = Sample.model_fields[name].metadata
    return (
        float(next(m.ge for m in metadata if hasattr(m, "ge"))),
        float(next(m.le for m in metadata if hasattr(m, "le"))),
    )


_HR_LOW, _HR_HIGH = _contract_range("heart_rate_bpm")
_TEMP_LOW, _TEMP_HIGH = _contract_range("skin_temperature_c")
_STEPS_LOW, _STEPS_HIGH = _contract_range("steps")
_ACC_LOW, _ACC_HIGH = _contract_range("acceleration_sd_g")
_TIME_HIGH_MS = LATEST_VALID_TIME_S * 1000.0


def _acceptable(sample: Sample) -> bool:
    """Whether the time and the values the detector reads are what the wire contract accepts.

    The service validates every sample and ``flarewatch detect`` blanks what is out of range, but
    a sample built without validation (``Sample.model_construct``, as the recording reader does
    for speed) reached the detector as it was: one NaN heart rate stayed in every average and the
    reference for good (no alarm ever again, a snapshot that cannot be restored), and one time in
    the year 33,658 had every later sample skipped as older. NaN compares false: it is refused.
    Written out field by field: it runs on every sample (0.4 us; a loop over the fields took 1).
    """
    hr, temp, steps, acc_sd = (
        sample.heart_rate_bpm,
        sample.skin_temperature_c,
        sample.steps,
        sample.acceleration_sd_g,
    )
    return (
        MIN_VALID_TIME_MS <= sample.time_ms <= _TIME_HIGH_MS
        and (hr is None or _HR_LOW <= hr <= _HR_HIGH)
        and (temp is None or _TEMP_LOW <= temp <= _TEMP_HIGH)
        and (steps is None or _STEPS_LOW <= steps <= _STEPS_HIGH)
        and (acc_sd is None or _ACC_LOW <= acc_sd <= _ACC_HIGH)
    )


class PatientDetector(SurgeRules, FlushRules, StreamingDetector):
    """Flush, anaphylaxis-like and signal-state detection for one patient (rules, no learning).

    Parameters are the thresholds of the rules above (defaults in :mod:`models.const`);
    ``flush_trend`` switches the flush path over the skin's own trend (1.11) on or off;
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
        flush_trend: bool = True,
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
        self.flush_trend = flush_trend
        self.no_data_after_s = no_data_after_s

    # -- state (created lazily: no work in __init__) ------------------------------------------
    def _ensure_state(self) -> None:
        if "tracker" not in vars(self):
            self.tracker = SignalTracker()
            self.surge = EpisodeLatch()
            self.calibration = EvidenceCalibration()
            self.flush = EpisodeLatch()
            self.skin_trend = SkinTrend()
            self.flush_trend_since_s: float | None = None
            self.no_data_alarmed = False
            self.no_contact_since_s: float | None = None
            self.no_contact_alarmed = False
            self.still_since_s: float | None = None
            self.still_share = 0.0
            self.still_share_before = 0.0
            self.rejected_samples = 0
            self.surge_score = 0.0
            self.recovery_score = 0.0
            self.surge_time_s: float | None = None
            self.still_reported = False

    def state_dict(self) -> dict[str, Any]:
        """Learned state as plain JSON-able data (baselines, latches, signal states)."""
        self._ensure_state()
        state = super().state_dict()
        for key in ("tracker", "surge", "flush", "calibration", "skin_trend"):
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
            # states saved before 1.11 have no skin trend: it fills within ten minutes
            skin_trend = SkinTrend(**state.pop("skin_trend", None) or {})
            latches = {k: EpisodeLatch(**(state.pop(k, None) or {})) for k in ("surge", "flush")}
            for latch in latches.values():
                latch.state = LatchState(latch.state)
                check_state_fields(latch)
            check_state_fields(calibration)
            check_state_fields(skin_trend)
            for key, value in state.items():
                if key not in _SCALAR_STATE:
                    raise ValueError(f"saved state has an unknown entry {key!r}")
                check_state_value(key, value, _SCALAR_STATE[key])
            check_times_not_after(
                tracker.last_time_s,
                {
                    **{f"tracker.{name}": getattr(tracker, name) for name in _TRACKER_TIMES},
                    "calibration.last_time_s": calibration.last_time_s,
                    "calibration.faded_s": calibration.faded_s,
                    "skin_trend.time_s": max(skin_trend.time_s, default=None),
                    **{name: state.get(name) for name in _SCALAR_TIMES},
                },
            )
        except (TypeError, ValueError) as exc:
            raise ModelError(
                f"saved detector state of patient {self.patient_id!r} does not fit "
                f"{self.model_version}: discard it and let the baselines relearn"
            ) from exc
        self._ensure_state()
        super()._import_state(state)
        self.tracker = tracker
        self.calibration = calibration
        self.skin_trend = skin_trend
        self.surge, self.flush = latches["surge"], latches["flush"]

    @property
    def last_time_s(self) -> float | None:
        """Time of the newest sample folded in (None before the first)."""
        return vars(self)["tracker"].last_time_s if "tracker" in vars(self) else None

    # -- streaming ----------------------------------------------------------------------------
    def update(self, samples: Iterable[Sample]) -> list[Alarm]:
        """Fold samples (oldest first) in; out-of-order or repeated samples are counted, skipped.

        So are samples holding a value the wire contract refuses (NaN, an infinity, a reading or
        a time out of range), which only a caller skipping validation can pass.
        """
        self._ensure_state()
        alarms: list[Alarm] = []
        for sample in samples:
            self._step(sample, alarms)
        return alarms

    def update_until(
        self, samples: Sequence[Sample], start: int, stop: Callable[[Alarm], bool]
    ) -> tuple[list[Alarm], int]:
        """Fold ``samples[start:]`` in up to the first sample raising an alarm ``stop`` picks.

        Returns the alarms and the index of the next sample to fold in (``len(samples)`` once
        all are in). The bank stops at every onset its confirmer judges, so that a vetoed
        episode is silenced before the samples after it, however the samples come in batches.
        """
        self._ensure_state()
        alarms: list[Alarm] = []
        for index in range(start, len(samples)):
            before = len(alarms)
            self._step(samples[index], alarms)
            if len(alarms) > before and any(stop(a) for a in alarms[before:]):
                return alarms, index + 1
        return alarms, len(samples)

    def check_silence(self, now_s: float) -> list[Alarm]:
        """A ``no_data`` alarm once no heart rate arrived for ``no_data_after_s`` (then silent).

        Samples without one (a Fitbit's step counts, a thermometer) do not end the silence:
        without a heart rate nothing is watched. (Before 1.7 any sample did, and a band that
        went on counting steps without a heart rate raised and cleared "no data" every few
        minutes: 27 times a day for one held-out Fitbit user.) Once ``no_contact`` was raised it
        tells that already; a band that lost contact and fell silent before that (within
        NO_CONTACT_AFTER_S: put on its charger) is no data, or nothing would ever say so.
        """
        self._ensure_state()
        tr = self.tracker
        last = tr.hr_time_s if tr.hr_time_s is not None else tr.last_time_s
        if (
            last is None
            or self.no_data_alarmed
            or self.no_contact_alarmed
            or not now_s - last >= self.no_data_after_s  # a NaN clock is no silence
        ):
            return []
        self.no_data_alarmed = True
        return [self._alarm(last + self.no_data_after_s, AlarmKind.NO_DATA, Severity.WARNING)]

    def evidence_needed(self) -> float:
        """Surge evidence (frac·s) this patient needs for an alarm now: calibrated or fixed."""
        self._ensure_state()
        if self.surge_target_per_day is None:
            return self.surge_score_frac_s
        return self.calibration.level(self.surge_score_frac_s, self.surge_target_per_day)

    def retract(self, kind: AlarmKind, episode_no: int) -> None:
        """The confirmer rejected this onset: keep the episode silent until it ends."""
        latch = self.surge if kind is AlarmKind.ANAPHYLAXIS else self.flush
        if latch.episode_no == episode_no and latch.state is LatchState.ACTIVE:
            latch.state = LatchState.SUPPRESSED

    def _step(self, sample: Sample, alarms: list[Alarm]) -> None:
        t = sample.time_ms / 1000.0
        tr = self.tracker
        if not _acceptable(sample) or (tr.last_time_s is not None and t <= tr.last_time_s):
            self.rejected_samples += 1
            return
        if tr.last_time_s is not None and not self.no_data_alarmed:
            alarms.extend(self.check_silence(t))
        hr, temp, acc_sd = (
            sample.heart_rate_bpm,
            sample.skin_temperature_c,
            sample.acceleration_sd_g,
        )
        if sample.contact_detected is False:
            # the band says it is off the skin: its temperature is a pocket's or a table's (until
            # 1.11 it became the skin's reference, and putting the band back on read as a flush)
            temp = acc_sd = None
        elif sample.contact_detected and self.no_contact_since_s is not None and not tr.off_wrist:
            tr.back_on_skin(t, self.no_contact_since_s)
        if tr.check_wrist(t, temp, acc_sd):
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
        motion_dropped = acc_sd is None and sample.acceleration_sd_g is not None
        temp_dropped = temp is None and sample.skin_temperature_c is not None
        if motion_dropped or temp_dropped:
            tr.readings_dropped(t, motion=motion_dropped, temperature=temp_dropped)
        tr.step(t, hr, temp, sample.steps, acc_sd, freeze=engaged)
        self._detect_surge(t, alarms)
        self._detect_flush(t, alarms)

    def _no_contact(self, t: float, alarms: list[Alarm]) -> None:
        if self.no_contact_since_s is None:
            self.no_contact_since_s = t
        if not self.no_contact_alarmed and t - self.no_contact_since_s >= NO_CONTACT_AFTER_S:
            self.no_contact_alarmed = True
            alarms.append(self._alarm(t, AlarmKind.NO_CONTACT, Severity.WARNING))
