"""Your own recordings for ``flarewatch evaluate --recordings``: one file per wearer, and episodes.

A folder holds one recording per wearer in the replay contract of ``flarewatch detect --input``
(docs/models.md), read by :func:`models.recording.read_recording` exactly as ``detect`` reads it:
bad cells and rows are counted and dropped, a file it refuses is an error naming the file. The
wearer is the file name without its recording suffix (``p1.csv.gz`` is ``p1``).

Labelled episodes come from a small CSV (``subject,onset_s,end_s,kind``), checked line by line
against the recordings: a mistake there would silently move sensitivity or false alarms, so each
one is an error that names its line.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from flarewatch.output_files import same_file
from models.alarm import AlarmKind
from models.const import EVAL_LABELLED_DEFAULT_LENGTH_S, EVAL_MATCH_AFTER_END_S
from models.datasets import Recording
from models.errors import RecordingError
from models.evaluation import matching_span
from models.injection import Episode
from models.recording import RecordingQuality, read_recording

log = logging.getLogger(__name__)

RECORDING_SUFFIXES: Final = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz")
"""File names taken as recordings in the folder (read_recording knows the compression by its
first bytes, the suffix only says which files are meant)."""

EPISODE_KINDS: Final = (AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS)
"""What a labelled episode can be (signal states are not episodes)."""

EPISODE_COLUMNS: Final = ("subject", "onset_s", "kind")
"""Columns the episodes file must have; ``end_s`` is optional, others are ignored."""


@dataclass(frozen=True, slots=True)
class OwnRecording:
    """One wearer's file, as read, with what reading it had to drop."""

    path: Path
    recording: Recording
    quality: RecordingQuality

    @property
    def subject(self) -> str:
        """The wearer (the file name without its suffix)."""
        return self.recording.subject


@dataclass(frozen=True, slots=True)
class LabelledEpisode:
    """A real episode someone labelled: who, what, from when to when, and where it was written."""

    subject: str
    kind: AlarmKind
    onset_s: float
    end_s: float
    line: int

    @property
    def episode(self) -> Episode:
        """As an :class:`Episode` for the harness's matching rule (its course is unknown)."""
        return Episode(
            kind=self.kind,
            onset_s=self.onset_s,
            rise_s=self.end_s - self.onset_s,
            plateau_s=0.0,
            decay_s=0.0,
            hr_rise_frac=0.0,
            temp_rise_c=0.0,
            syncope_after_s=None,
        )

    @property
    def window(self) -> tuple[float, float]:
        """From onset until the last moment an alarm still counts as its detection."""
        return matching_span(self.episode)


def subject_of(path: Path) -> str | None:
    """The wearer a file in the folder is for, or None if it is not a recording file."""
    name = path.name
    if name.startswith("."):
        return None  # editor and system files (.DS_Store, .p1.csv.swp)
    for suffix in sorted(RECORDING_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def load_recordings(folder: Path, skip: Path | None = None) -> list[OwnRecording]:
    """Every recording of ``folder`` in wearer order; ``skip`` (the episodes file) is left out.

    Raises RecordingError naming the folder or the file when something cannot be used.
    """
    if not folder.is_dir():
        detail = "no such folder" if not folder.exists() else "is not a folder"
        raise RecordingError(folder, f"{detail}: --recordings takes a folder of recordings")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        subject = subject_of(path)
        if subject is None or not path.is_file() or same_file(path, skip):
            continue
        if subject in files:
            raise RecordingError(
                path, f"is wearer {subject!r} again (also {files[subject].name}): one file each"
            )
        files[subject] = path
    if not files:
        wanted = ", ".join(f"*{s}" for s in RECORDING_SUFFIXES)
        raise RecordingError(folder, f"holds no recording ({wanted}), one file per wearer")
    out: list[OwnRecording] = []
    for subject, path in files.items():
        frame, quality = read_recording(path)
        quality.log_losses(path)
        if "hr_bpm" not in frame or not frame["hr_bpm"].notna().any():
            log.warning("%s: no heart rate: the detectors cannot find an episode in it", path)
        out.append(OwnRecording(path, Recording("own", subject, frame), quality))
    return out


def load_episodes(path: Path, recordings: Mapping[str, Recording]) -> list[LabelledEpisode]:
    """The labelled episodes of ``path``, checked against ``recordings`` (by wearer).

    Raises RecordingError naming the file and the line of the first mistake.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise RecordingError(path, f"cannot read the episodes ({exc.strerror or exc})") from exc
    rows = csv.reader(text.splitlines())
    header = [name.strip().lstrip("\ufeff") for name in next(rows, [])]
    missing = [c for c in EPISODE_COLUMNS if c not in header]
    if missing:
        raise RecordingError(
            path,
            f"line 1: the header lacks {', '.join(missing)} (expected subject,onset_s,end_s,kind; "
            "end_s may be left empty)",
        )
    names: tuple[str, ...] = (*EPISODE_COLUMNS, "end_s")
    where = {name: header.index(name) for name in names if name in header}
    episodes: list[LabelledEpisode] = []
    for row in rows:
        number = rows.line_num  # the file's line, also after a quoted cell across lines
        if not any(cell.strip() for cell in row):
            continue
        cells: dict[str, str] = {
            name: row[i].strip() if i < len(row) else "" for name, i in where.items()
        }
        try:
            episodes.append(_episode(cells, number, recordings))
        except ValueError as exc:
            raise RecordingError(path, f"line {number}: {exc}") from None
    _refuse_overlaps(path, episodes)
    return sorted(episodes, key=lambda e: (e.subject, e.onset_s))


def _episode(
    cells: dict[str, str], line: int, recordings: Mapping[str, Recording]
) -> LabelledEpisode:
    """One line as an episode (raises ValueError saying what is wrong with it)."""
    subject = cells["subject"]
    if subject not in recordings:
        known = ", ".join(sorted(recordings))
        raise ValueError(f"wearer {subject!r} has no recording in the folder (wearers: {known})")
    kinds = {k.value for k in EPISODE_KINDS}
    kind = cells["kind"].lower()
    if kind not in kinds:
        raise ValueError(f"kind {cells['kind']!r} is not one of {', '.join(sorted(kinds))}")
    onset = _seconds(cells["onset_s"], "onset_s")
    end_text = cells.get("end_s", "")
    end = onset + EVAL_LABELLED_DEFAULT_LENGTH_S if not end_text else _seconds(end_text, "end_s")
    if end <= onset:
        raise ValueError(f"end_s {end_text} is not after onset_s {cells['onset_s']}")
    times = recordings[subject].frame["time_s"]
    first, last = float(times.iloc[0]), float(times.iloc[-1])
    if not first <= onset <= last:
        hint = (
            " (it looks like milliseconds: time is in epoch seconds)"
            if first <= onset / 1000.0 <= last
            else ""
        )
        raise ValueError(
            f"onset_s {cells['onset_s']} is outside {subject}'s recording "
            f"({first:.0f} to {last:.0f}){hint}"
        )
    return LabelledEpisode(subject, AlarmKind(kind), onset, end, line)


def _seconds(text: str, column: str) -> float:
    """A time cell as epoch seconds (raises ValueError if it is not a finite number)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number (epoch seconds)") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} {text!r} is not a finite number (epoch seconds)")
    return value


def _refuse_overlaps(path: Path, episodes: list[LabelledEpisode]) -> None:
    """Two episodes of one wearer must not share a moment where one alarm would count for both.

    That is their spans plus the matching time after each end (EVAL_MATCH_AFTER_END_S).
    """
    ordered = sorted(episodes, key=lambda e: (e.subject, e.onset_s, e.line))
    for before, after in itertools.pairwise(ordered):
        if before.subject != after.subject:
            continue
        if after.onset_s == before.onset_s:
            raise RecordingError(
                path, f"line {after.line}: duplicates line {before.line} (same wearer and onset)"
            )
        if after.onset_s <= before.window[1]:
            raise RecordingError(
                path,
                f"line {after.line}: overlaps line {before.line} ({before.subject}): it starts "
                f"before that episode's end plus {EVAL_MATCH_AFTER_END_S / 60:.0f} min, where "
                "one alarm would count for both; merge them or correct the times",
            )


def labelled_windows(episodes: list[LabelledEpisode], subject: str) -> list[tuple[float, float]]:
    """The matching windows of ``subject``'s labelled episodes, in time order."""
    return sorted(e.window for e in episodes if e.subject == subject)
