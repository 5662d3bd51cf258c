"""What every rule of the patient detector shares: the alarm it raises and the evidence on it."""

from __future__ import annotations

from abc import ABC, abstractmethod

from models.alarm import Alarm, AlarmKind, Severity
from models.episodes import EpisodeLatch
from models.features import SignalTracker


class RuleAlarms(ABC):
    """The alarms of one patient's rules, stamped with the patient and the model version.

    The state (the tracker) lives on the detector that combines the rules
    (:class:`models.detector.PatientDetector`), created lazily by ``_ensure_state``.
    """

    patient_id: str
    model_version: str
    tracker: SignalTracker

    @abstractmethod
    def _ensure_state(self) -> None:
        """Create the learned state on first use (no work in ``__init__``)."""

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

    def _expired(self, t: float, kind: AlarmKind, latch: EpisodeLatch) -> Alarm:
        """The end of an episode that never calmed down (``expired`` = 1 in its evidence)."""
        end = {"episode_no": float(latch.episode_no), "expired": 1.0}
        return self._alarm(t, kind, Severity.WARNING, resolved=True, evidence=end)
