"""What a detector tells the rest of the system: an alarm, its kind and its severity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class AlarmKind(StrEnum):
    """What the detector believes is happening.

    ``flush`` and ``anaphylaxis`` are physiological; the others are signal states, which must never
    be mistaken for a patient in trouble.
    """

    FLUSH = "flush"
    ANAPHYLAXIS = "anaphylaxis"
    NO_CONTACT = "no_contact"
    NO_DATA = "no_data"


class Severity(StrEnum):
    """How urgently a human must look; critical alerts bypass quiet rules and cancel windows."""

    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Alarm:
    """A detector's decision that an event started or worsened or, with ``resolved``, ended.

    A continuing event raises no new alarm; a worsening one raises one with a higher severity.
    ``evidence`` carries the features that led to the decision (e.g. ``hr_rise_bpm``) for the
    episode summary and the audit trail.
    """

    patient_id: str
    time_s: float
    kind: AlarmKind
    severity: Severity
    model_version: str
    resolved: bool = False
    evidence: Mapping[str, float] = field(default_factory=dict)


UNCONFIRMED: Final = "unconfirmed"
"""Evidence key set (1.0) on an onset the confirmer was to judge but could not (it raised): its
model version names the confirmer, which never saw it; the rules alone raised it."""


def is_onset(alarm: Alarm) -> bool:
    """A physiological alarm that opens an episode (not an escalation nor a resolution)."""
    return alarm.evidence.get("onset") == 1.0
