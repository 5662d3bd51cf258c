"""Labelled onsets from a research export, its recordings replayed through these rules.

A label export (``flarewatch admin episode export-labels``) carries the features the rules
computed live, so the onsets an older rules version raised cannot be used: their evidence may
mean something else. A research export (``flarewatch admin research export``, docs/research.md)
carries the recordings themselves. Replayed through the rules of this version, every labelled
episode is usable whatever version raised it, and the exports of several deployments can be
pooled for one confirmer.

Only what a care team said is learnt:

* the first onset of the episode's kind inside a reaction of ``episodes.csv`` (from its onset,
  or first sign, until 5 min after its end) is a positive;
* every onset inside an episode labelled ``false_alarm`` in ``alarms.csv`` is a negative;
* every other onset is left out (counted): nobody reviewed it. It falls in an episode nobody
  labelled, or where the live service, with weeks of a patient's state, raised nothing.
  Learning to veto what nobody looked at could teach the confirmer to veto a reaction.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from models.alarm import Alarm, AlarmKind, is_onset
from models.bank import DetectorBank
from models.errors import RecordingError
from models.labels import REAL_SUBJECT_PREFIX, label_counts
from models.own_evaluation import Wearer, check_wearers
from models.own_recordings import (
    EPISODE_KINDS,
    LabelledEpisode,
    read_episodes,
    recording_files,
)
from models.replay import replay

log = logging.getLogger(__name__)

RECORDINGS: Final = "recordings"
"""The research export's folder of recordings, one per subject."""
REACTIONS: Final = "episodes.csv"
"""The research export's real reactions (``subject,onset_s,end_s,kind``)."""
EPISODES: Final = "alarms.csv"
"""The research export's every episode, with the care team's label (empty: not reviewed)."""
FALSE_ALARM: Final = "false_alarm"
"""The label of an episode the care team found was no reaction."""


@dataclass(slots=True)
class StudyOnsets:
    """The labelled onsets of one research export, and what was left out and why (counts)."""

    folder: Path
    candidates: list[tuple[Alarm, int]] = field(default_factory=list)
    subjects: int = 0
    reactions: int = 0
    """Reactions in ``episodes.csv``."""
    reactions_unseen: int = 0
    """Reactions in which these rules raise no onset of their kind: the confirmer cannot learn
    from them (it only judges onsets), but an evaluation counts them as missed."""
    false_alarm_episodes: int = 0
    """Episodes labelled ``false_alarm`` in ``alarms.csv``."""
    unreviewed: int = 0
    """Onsets outside every labelled episode: left out."""
    rejected: int = 0
    """Lines of ``alarms.csv`` that are not an episode of a recorded subject (logged by number)."""

    def counts(self) -> dict[str, int]:
        """Positives and negatives per kind, and the counts above, for the model card."""
        return {
            **label_counts(self.candidates),
            "subjects": self.subjects,
            "reactions_listed": self.reactions,
            "reactions_without_onset": self.reactions_unseen,
            "false_alarm_episodes": self.false_alarm_episodes,
            "unreviewed_onsets_left_out": self.unreviewed,
            "rejected_lines": self.rejected,
        }


@dataclass(frozen=True, slots=True)
class Study:
    """A research export as checked: its wearers (read once, one at a time) and reactions."""

    folder: Path
    wearers: list[Wearer]
    reactions: list[LabelledEpisode]

    @property
    def samples(self) -> int:
        """Rows to replay, for a progress bar's total."""
        return sum(w.samples for w in self.wearers)


def load_study(folder: Path, progress: Callable[[int, int], None] | None = None) -> Study:
    """Check a research export before any replay, one recording in memory at a time.

    ``progress(done, files)`` after each file. RecordingError names what cannot be used: every
    file the reader refuses, or every line of ``episodes.csv`` that is wrong.
    """
    if not (folder / RECORDINGS).is_dir() or not (folder / REACTIONS).is_file():
        raise RecordingError(
            folder,
            f"is not a research export: it needs a {RECORDINGS}/ folder and {REACTIONS} "
            "(flarewatch admin research export)",
        )
    files = recording_files(folder / RECORDINGS)
    reactions = read_episodes(folder / REACTIONS, files.keys())
    wearers = check_wearers(
        folder / RECORDINGS,
        files,
        folder / REACTIONS,
        reactions,
        0,
        inject=False,
        progress=progress,
    )
    return Study(folder, wearers, reactions)


def study_onsets(
    study: Study,
    bank_factory: Callable[[], DetectorBank],
    progress: Callable[[int], None] | None = None,
) -> StudyOnsets:
    """Replay every recording of the export from an empty bank; label its onsets (see above)."""
    folder, reactions = study.folder, study.reactions
    subjects = {w.subject for w in study.wearers}
    refuted, rejected = _false_alarm_windows(folder / EPISODES, subjects)
    out = StudyOnsets(folder, subjects=len(subjects), reactions=len(reactions), rejected=rejected)
    out.false_alarm_episodes = sum(len(w) for w in refuted.values())
    for wearer in study.wearers:
        subject, recording = wearer.subject, wearer.recording().recording
        alarms = replay(
            bank_factory(), subject, recording.samples(recording.frame), progress=progress
        )
        onsets = [
            replace(a, patient_id=REAL_SUBJECT_PREFIX + subject) for a in alarms if is_onset(a)
        ]
        claimed: set[int] = set()
        for episode in (e for e in reactions if e.subject == subject):
            start, stop = episode.window
            inside = [i for i, a in enumerate(onsets) if start <= a.time_s <= stop]
            claimed.update(inside)
            first = next((i for i in inside if onsets[i].kind is episode.kind), None)
            if first is None:
                out.reactions_unseen += 1
            else:
                out.candidates.append((onsets[first], 1))
        for i, alarm in enumerate(onsets):
            if i in claimed:
                continue
            if any(start <= alarm.time_s <= stop for start, stop in refuted.get(subject, [])):
                out.candidates.append((alarm, 0))
            else:
                out.unreviewed += 1
    return out


def _false_alarm_windows(
    path: Path, subjects: set[str]
) -> tuple[dict[str, list[tuple[float, float]]], int]:
    """Each subject's episodes labelled a false alarm, as matching windows; rejected lines.

    A missing ``alarms.csv`` gives no negatives (an export written by hand may have only the
    reactions). A line that is not an episode of a recorded subject is counted and skipped.
    """
    if not path.exists():
        log.warning("%s: not found, so no episode is known to be a false alarm", path)
        return {}, 0
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise RecordingError(path, f"cannot read it ({exc.strerror or exc})") from exc
    rows = csv.DictReader(text.splitlines())
    missing = {"subject", "onset_s", "end_s", "kind", "label"} - set(rows.fieldnames or ())
    if missing:
        raise RecordingError(path, f"line 1: the header lacks {', '.join(sorted(missing))}")
    kinds = {k.value for k in EPISODE_KINDS}
    windows: dict[str, list[tuple[float, float]]] = {}
    rejected = 0
    for row in rows:
        if (row.get("label") or "").strip() != FALSE_ALARM:
            continue
        try:
            subject = (row.get("subject") or "").strip()
            onset, end = float(row.get("onset_s") or ""), float(row.get("end_s") or "")
            kind = (row.get("kind") or "").strip()
            if subject not in subjects or kind not in kinds:
                raise ValueError("not an episode of a recorded subject")
            if not (math.isfinite(onset) and math.isfinite(end) and end >= onset):
                raise ValueError("times are not an interval")
        except ValueError:
            rejected += 1  # float()'s message would quote the cell: the line number only
            log.warning("%s line %d is not a usable false alarm: skipped", path, rows.line_num)
            continue
        episode = LabelledEpisode(subject, AlarmKind(kind), onset, end, rows.line_num)
        windows.setdefault(subject, []).append(episode.window)
    return windows, rejected
