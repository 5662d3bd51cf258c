"""What a detector tells the rest of the system: an alarm, its kind and its severity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final


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


def alarm_record(alarm: Alarm) -> dict[str, Any]:
    """An alarm as a JSON object (the replay contract's events, docs/models.md)."""
    return {
        "time_s": round(alarm.time_s, 3),
        "kind": alarm.kind.value,
        "severity": alarm.severity.value,
        "resolved": alarm.resolved,
        "patient_id": alarm.patient_id,
        "model_version": alarm.model_version,
        "evidence": dict(alarm.evidence),
    }


def alarm_from_record(record: Any) -> Alarm:
    """The alarm of a JSON object of :func:`alarm_record`'s form (``resolved`` may be absent).

    Raises ``TypeError``, ``KeyError`` or ``ValueError`` on anything malformed; no message quotes
    a value of the evidence (a vital sign must not reach a log).
    """
    if not isinstance(record, dict):
        raise TypeError("not a JSON object")
    patient_id, evidence = record["patient_id"], record["evidence"]
    if not isinstance(patient_id, str) or not patient_id or not isinstance(evidence, dict):
        raise ValueError("no patient or no evidence")
    try:
        values = {str(k): float(v) for k, v in evidence.items()}
    except (TypeError, ValueError):
        raise ValueError("evidence holds a value that is not a number") from None
    time_s = float(record["time_s"])
    if not all(math.isfinite(v) for v in [time_s, *values.values()]):
        raise ValueError("a time or evidence that is not a finite number")
    resolved = record.get("resolved", False)
    if not isinstance(resolved, bool):
        raise ValueError("'resolved' is not true or false")
    return Alarm(
        patient_id=patient_id,
        time_s=time_s,
        kind=AlarmKind(record["kind"]),
        severity=Severity(record["severity"]),
        model_version=str(record["model_version"]),
        resolved=resolved,
        evidence=values,
    )
