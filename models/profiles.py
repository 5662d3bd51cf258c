"""Detection profiles: the operating points of the surge rule a care team may choose per patient.

No setting of the surge thresholds meets every target at once (docs/evaluation.md, trade-off
curve): earlier alarms cost false alarms. A patient with a history of severe anaphylaxis may
accept an alarm every other day for faster, surer detection; another may need quiet nights.
The profile only moves the anaphylaxis-like surge thresholds; flush and signal states are the
same in every profile. The 'personal' profile (1.6) is the balanced one with its surge evidence
calibrated per patient to a false-alarm rate (:mod:`models.calibration`): a quiet heart alarms
sooner, a restless one later.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from models.const import (
    PROFILE_PERSONAL_TARGET_PER_DAY,
    PROFILE_QUIET_SURGE,
    PROFILE_SENSITIVE_SURGE,
    SURGE_RISE_FRAC,
    SURGE_SCORE_FRAC_S,
    SURGE_TOD_MARGIN_FRAC,
)


class DetectionProfile(StrEnum):
    """How eager a patient's surge detection is (figures in models/const.py and the docs)."""

    SENSITIVE = "sensitive"
    BALANCED = "balanced"
    PERSONAL = "personal"
    QUIET = "quiet"


_SURGE = {
    DetectionProfile.SENSITIVE: PROFILE_SENSITIVE_SURGE,
    DetectionProfile.BALANCED: (SURGE_RISE_FRAC, SURGE_TOD_MARGIN_FRAC, SURGE_SCORE_FRAC_S),
    DetectionProfile.PERSONAL: (SURGE_RISE_FRAC, SURGE_TOD_MARGIN_FRAC, SURGE_SCORE_FRAC_S),
    DetectionProfile.QUIET: PROFILE_QUIET_SURGE,
}


_TARGET_PER_DAY = {DetectionProfile.PERSONAL: PROFILE_PERSONAL_TARGET_PER_DAY}


def profile_surge(profile: DetectionProfile) -> tuple[float, float, float]:
    """The surge thresholds of ``profile``: rise, hourly margin, evidence before calibration."""
    return _SURGE[profile]


def profile_target(profile: DetectionProfile) -> float | None:
    """False alarms per day ``profile`` calibrates the surge evidence to (None: fixed)."""
    return _TARGET_PER_DAY.get(profile)


def profile_params(profile: DetectionProfile) -> dict[str, Any]:
    """Constructor arguments of :class:`~models.detector.PatientDetector` for ``profile``."""
    rise, margin, score = profile_surge(profile)
    return {
        "surge_rise_frac": rise,
        "surge_tod_margin_frac": margin,
        "surge_score_frac_s": score,
        "surge_target_per_day": profile_target(profile),
    }


def profile_version(model_version: str, profile: DetectionProfile) -> str:
    """The version stamped on alarms: the balanced profile adds nothing, others ``@name``."""
    return model_version if profile is DetectionProfile.BALANCED else f"{model_version}@{profile}"
