"""Real episodes labelled by a care team, read back for training the confirmer.

The service exports one JSON object per onset alarm of every labelled episode
(``flarewatch admin episode export-labels``): ``subject`` (a keyed pseudonym of the patient),
``label`` (``reaction`` or ``false_alarm``), ``kind``, ``time_s``, ``severity``,
``model_version`` and ``evidence`` (the features the rules computed at onset). Injected episodes
teach the confirmer the documented physiology; only these teach it what real reactions and real
false alarms look like.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.alarm import Alarm, AlarmKind, alarm_from_record
from models.const import MODEL_VERSION
from models.errors import RecordingError

log = logging.getLogger(__name__)

LABELS = {"reaction": 1, "false_alarm": 0}
"""Label names of the export and the class each one is for the confirmer."""

REAL_SUBJECT_PREFIX = "real:"
"""Prefixed to the pseudonyms, so a real patient never shares a validation fold key with a
recording of the public data sets."""


def rules_version(model_version: str) -> str:
    """The rules part of an alarm's model version (``fw-detect-1.5.0+confirm-…@sensitive``)."""
    return model_version.split("+", 1)[0].split("@", 1)[0]


@dataclass(frozen=True, slots=True)
class ReviewedEpisode:
    """A real episode of the patient and what the care team said it was."""

    kind: AlarmKind
    opened_s: float
    """When the patient's own alarm of ``kind`` came (for an episode that opened as a flush and
    became anaphylaxis-like, its anaphylaxis-like onset: the alarm a profile is compared with)."""
    closed_s: float | None
    """When it ended (None: still open, or never closed; then it counts for MAX_EPISODE_S)."""
    reaction: bool
    """True for a real reaction, False for a false alarm."""


@dataclass(slots=True)
class LabelledOnsets:
    """Labelled onsets usable with these rules, and what was left out and why (counts)."""

    candidates: list[tuple[Alarm, int]] = field(default_factory=list)
    lines: int = 0
    other_rules: int = 0
    """Onsets raised by another rules version: their evidence may mean something else."""
    rejected: int = 0
    """Lines that are not a valid labelled onset (logged by line number, never by value)."""

    def counts(self) -> dict[str, int]:
        """Positives and negatives per kind, for the model card."""
        return label_counts(self.candidates)


def label_counts(candidates: list[tuple[Alarm, int]]) -> dict[str, int]:
    """Labelled onsets per kind and class (``anaphylaxis_reactions``, ``flush_false_alarms``...)."""
    out: dict[str, int] = {}
    for alarm, label in candidates:
        key = f"{alarm.kind.value}_{'reactions' if label else 'false_alarms'}"
        out[key] = out.get(key, 0) + 1
    return out


def load_labelled_onsets(path: Path) -> LabelledOnsets:
    """Read an export of labelled episodes; a bad line is counted and skipped, never fatal.

    Lines are decoded one by one: a damaged byte costs its line, not the whole file.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        detail = f"cannot read the labelled episodes ({exc.__class__.__name__})"
        raise RecordingError(path, detail) from exc
    out = LabelledOnsets()
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        out.lines += 1
        try:
            alarm, label = _onset(json.loads(line.decode("utf-8")))
        except (ValueError, TypeError, KeyError) as exc:
            out.rejected += 1
            log.warning("%s line %d is not a labelled onset (%s): skipped", path, number, exc)
            continue
        if rules_version(alarm.model_version) != MODEL_VERSION:
            out.other_rules += 1
            continue
        out.candidates.append((alarm, label))
    return out


def _onset(record: Any) -> tuple[Alarm, int]:
    """One exported record as an onset alarm and its class (raises on anything malformed)."""
    if not isinstance(record, dict):
        raise TypeError("not a JSON object")
    label = LABELS[str(record["label"])]
    if AlarmKind(record["kind"]) not in (AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS):
        raise ValueError(f"kind {record['kind']!r} is a signal state, not an episode")
    subject = str(record["subject"])
    if not subject:
        raise ValueError("no subject")
    alarm = alarm_from_record({**record, "patient_id": REAL_SUBJECT_PREFIX + subject})
    if alarm.resolved:
        raise ValueError("an episode's end, not its onset")
    return alarm, label
