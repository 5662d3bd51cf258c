"""Your own recordings for ``flarewatch evaluate --recordings``: one file per wearer, and episodes.

A folder holds one recording per wearer in the replay contract of ``flarewatch detect --input``
(docs/models.md), read by :func:`models.recording.read_recording` exactly as ``detect`` reads it:
bad cells and rows are counted and dropped, a file it refuses is an error naming the file. The
wearer is the file name without its recording suffix (``p1.csv.gz`` is ``p1``).

Labelled episodes come from a small CSV (``subject,onset_s,end_s,kind``), checked line by line
against the recordings: a mistake there would silently move sensitivity or false alarms, so each
one is an error that names its line. Every mistake of the file (and every file of the folder the
reader refuses) is named at once, so a long list is corrected in one go, not one rerun a line.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import pandas as pd

from flarewatch.output_files import same_file
from models.alarm import AlarmKind
from models.const import EVAL_LABELLED_DEFAULT_LENGTH_S, EVAL_MATCH_AFTER_END_S
from models.datasets import Recording
from models.episodes_file import (
    EPISODE_COLUMNS,
    ONSET_SOURCES,
)
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

WEARERS_SHOWN: Final = 10
"""Wearers named when a line names none of them (a study has hundreds)."""

MISTAKES_SHOWN: Final = 20
"""Mistakes named in one error (the count says how many more): enough to correct a file in one
go, few enough to read."""


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
    onset_from: str | None = None
    """Where ``onset_s`` came from (ONSET_SOURCES), where the file says."""

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

    All of them are in memory at once (``evaluate --recordings`` reads one wearer at a time
    instead, :func:`models.own_evaluation.check_wearers`). Raises RecordingError naming the
    folder, or every file the reader refuses (all are read first, so one run names them all).
    """
    files = recording_files(folder, skip)
    out: list[OwnRecording] = []
    refused: list[str] = []
    for subject, path in files.items():
        try:
            out.append(read_wearer(subject, path))
        except RecordingError as exc:
            refused.append(str(exc))
    refuse_files(folder, refused, len(files))
    return out


def refuse_files(folder: Path, refused: list[str], files: int) -> None:
    """Raise one RecordingError naming every file of ``folder`` the reader refused (if any)."""
    if refused:
        raise RecordingError(folder, _listed(refused, f"{len(refused)} of {files} files"))


def recording_files(folder: Path, skip: Path | None = None) -> dict[str, Path]:
    """The recording file of every wearer of ``folder``, by wearer, in name order."""
    if not folder.is_dir():
        detail = "no such folder" if not folder.exists() else "is not a folder"
        raise RecordingError(folder, f"{detail}: --recordings takes a folder of recordings")
    if (folder / "recordings").is_dir() and (folder / "episodes.csv").is_file():
        raise RecordingError(
            folder,
            "is a research export, not its folder of recordings: use --recordings "
            f"{folder / 'recordings'} --episodes {folder / 'episodes.csv'}",
        )
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
    return files


def read_wearer(subject: str, path: Path, *, warn: bool = True) -> OwnRecording:
    """One wearer's file, read as ``detect`` reads it (raises RecordingError naming it).

    ``warn``: log what reading it dropped (once per run, not again when it is read again).
    """
    if path.stat().st_size == 0:
        raise RecordingError(path, "is empty (0 bytes)")
    frame, quality = read_recording(path)
    if warn:
        quality.log_losses(path)
        if "hr_bpm" not in frame or not frame["hr_bpm"].notna().any():
            log.warning("%s: no heart rate: the detectors cannot find an episode in it", path)
    return OwnRecording(path, Recording("own", subject, frame), quality)


def _listed(mistakes: list[str], what: str) -> str:
    """Several mistakes as one error message, the first MISTAKES_SHOWN of them."""
    shown = "\n  ".join(mistakes[:MISTAKES_SHOWN])
    more = len(mistakes) - MISTAKES_SHOWN
    return f"{what} refused:\n  {shown}" + (f"\n  ... and {more} more" if more > 0 else "")


def load_episodes(path: Path, recordings: Mapping[str, Recording]) -> list[LabelledEpisode]:
    """The labelled episodes of ``path``, checked against ``recordings`` (by wearer).

    Raises RecordingError naming the file and the line of every mistake.
    """
    episodes = read_episodes(path, recordings.keys())
    refuse_lines(
        path,
        [
            mistake
            for subject, recording in recordings.items()
            for mistake in outside_recording(episodes, subject, recording.frame["time_s"])
        ],
    )
    return episodes


def read_episodes(path: Path, subjects: Collection[str]) -> list[LabelledEpisode]:
    """The labelled episodes of ``path`` for wearers among ``subjects``, in wearer and time order.

    Everything the file alone can tell is checked here; whether each onset lies in its wearer's
    recording is :func:`outside_recording`'s. Raises RecordingError naming the file and the line
    of every mistake.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise RecordingError(path, f"cannot read the episodes ({exc.strerror or exc})") from exc
    rows = csv.reader(text.splitlines())
    first = next(rows, [])
    header = [name.strip().lstrip("\ufeff").lower() for name in first]
    missing = [c for c in EPISODE_COLUMNS if c not in header]
    if missing:
        hint = (
            " (is the file not comma-separated? semicolons and tabs are not read)"
            if len(first) == 1 and any(sep in first[0] for sep in ";\t")
            else ""
        )
        raise RecordingError(
            path,
            f"line 1: the header lacks {', '.join(missing)} (expected subject,onset_s,end_s,kind; "
            f"end_s may be left empty){hint}",
        )
    names: tuple[str, ...] = (*EPISODE_COLUMNS, "end_s", "onset_from")
    where = {name: header.index(name) for name in names if name in header}
    known = frozenset(subjects)
    episodes: list[LabelledEpisode] = []
    mistakes: list[tuple[int, str]] = []
    for row in rows:
        number = rows.line_num  # the file's line, also after a quoted cell across lines
        if not any(cell.strip() for cell in row):
            continue
        cells: dict[str, str] = {
            name: row[i].strip() if i < len(row) else "" for name, i in where.items()
        }
        try:
            episodes.append(_episode(cells, number, known))
        except ValueError as exc:
            mistakes.append((number, str(exc)))
    refuse_lines(path, mistakes + _overlaps(episodes))
    return sorted(episodes, key=lambda e: (e.subject, e.onset_s))


def refuse_lines(path: Path, mistakes: list[tuple[int, str]]) -> None:
    """Raise one RecordingError naming every mistaken line of the episodes file (if any)."""
    texts = [f"line {line}: {text}" for line, text in sorted(mistakes)]
    if len(texts) == 1:
        raise RecordingError(path, texts[0])
    if texts:
        raise RecordingError(path, _listed(texts, f"{len(texts)} lines"))


def outside_recording(
    episodes: list[LabelledEpisode], subject: str, time_s: pd.Series
) -> list[tuple[int, str]]:
    """The lines of ``subject``'s episodes whose onset lies outside its recording's span."""
    first, last = float(time_s.iloc[0]), float(time_s.iloc[-1])
    mistakes: list[tuple[int, str]] = []
    for e in episodes:
        if e.subject != subject or first <= e.onset_s <= last:
            continue
        hint = (
            " (it looks like milliseconds: time is in epoch seconds)"
            if first <= e.onset_s / 1000.0 <= last
            else ""
        )
        mistakes.append(
            (
                e.line,
                f"onset_s {e.onset_s:.0f} is outside {subject}'s recording "
                f"({first:.0f} to {last:.0f}){hint}",
            )
        )
    return mistakes


def _episode(cells: dict[str, str], line: int, subjects: frozenset[str]) -> LabelledEpisode:
    """One line as an episode (raises ValueError saying what is wrong with it)."""
    subject = cells["subject"]
    if subject not in subjects:
        names = sorted(subjects)
        shown = ", ".join(names[:WEARERS_SHOWN])
        more = f", ... {len(names)} in all" if len(names) > WEARERS_SHOWN else ""
        raise ValueError(
            f"wearer {subject!r} has no recording in the folder (wearers: {shown}{more})"
        )
    kinds = {k.value for k in EPISODE_KINDS}
    kind = cells["kind"].lower()
    if kind not in kinds:
        raise ValueError(f"kind {cells['kind']!r} is not one of {', '.join(sorted(kinds))}")
    onset = seconds(cells["onset_s"], "onset_s")
    end_text = cells.get("end_s", "")
    end = onset + EVAL_LABELLED_DEFAULT_LENGTH_S if not end_text else seconds(end_text, "end_s")
    if end <= onset:
        raise ValueError(f"end_s {end_text} is not after onset_s {cells['onset_s']}")
    onset_from = cells.get("onset_from", "").lower() or None
    if onset_from is not None and onset_from not in ONSET_SOURCES:
        raise ValueError(
            f"onset_from {cells['onset_from']!r} is not one of {', '.join(ONSET_SOURCES)} "
            "(or empty)"
        )
    return LabelledEpisode(subject, AlarmKind(kind), onset, end, line, onset_from)


def seconds(text: str, column: str) -> float:
    """A time cell as epoch seconds: a number, or an ISO 8601 time that names its zone.

    A clock time without a zone is refused, not read as UTC: a diary's local times would move
    every episode by hours, and each would then count as a miss and a false alarm.
    Raises ValueError saying what is wrong with the cell.
    """
    try:
        value = float(text)
    except ValueError:
        return _iso_seconds(text, column)
    if not math.isfinite(value):
        raise ValueError(f"{column} {text!r} is not a finite number (epoch seconds)")
    return value


def _iso_seconds(text: str, column: str) -> float:
    """An ISO 8601 time with its zone as epoch seconds (raises ValueError otherwise)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{column} {text!r} is neither epoch seconds nor an ISO 8601 time "
            "(e.g. 2026-11-20T08:15:00+01:00)"
        ) from None
    if when.tzinfo is None:
        raise ValueError(
            f"{column} {text!r} has no time zone: add it (Z for UTC, or e.g. +01:00) or give "
            "epoch seconds; the recordings' time_s are epoch seconds"
        )
    return when.timestamp()


def _overlaps(episodes: list[LabelledEpisode]) -> list[tuple[int, str]]:
    """Two episodes of one wearer must not share a moment where one alarm would count for both.

    That is their spans plus the matching time after each end (EVAL_MATCH_AFTER_END_S). Returns
    a mistake per line that does.
    """
    mistakes: list[tuple[int, str]] = []
    ordered = sorted(episodes, key=lambda e: (e.subject, e.onset_s, e.line))
    for before, after in itertools.pairwise(ordered):
        if before.subject != after.subject:
            continue
        if after.onset_s == before.onset_s:
            mistakes.append((after.line, f"duplicates line {before.line} (same wearer and onset)"))
        elif after.onset_s <= before.window[1]:
            mistakes.append(
                (
                    after.line,
                    f"overlaps line {before.line} ({before.subject}): it starts before that "
                    f"episode's end plus {EVAL_MATCH_AFTER_END_S / 60:.0f} min, where one alarm "
                    "would count for both; merge them or correct the times",
                )
            )
    return mistakes


def labelled_windows(episodes: list[LabelledEpisode], subject: str) -> list[tuple[float, float]]:
    """The matching windows of ``subject``'s labelled episodes, in time order."""
    return sorted(e.window for e in episodes if e.subject == subject)
