"""Measuring the detectors on your own recordings: real labelled episodes, and injected ones.

Each wearer's untouched recording is replayed once through :func:`models.replay.replay` and a
bank from the evaluation's factory (the service's code path). That one replay:

* scores the **real labelled episodes** with the harness's matching rule
  (:func:`models.evaluation.score_episodes`: an onset alarm of the same kind from the onset until
  EVAL_MATCH_AFTER_END_S after the end);
* counts **false alarms** outside the labelled episodes' matching windows, per patient-day of the
  time covered by data outside them;
* saves the detectors' state before every planned **injected episode** (unless told not to),
  which is then injected alone into a copy of its window and replayed from that state, as the
  built-in harness does with its free-living recordings (:func:`score_from_snapshots`).

Recordings are read one wearer at a time, twice: a first reading checks every file and every
labelled onset against its wearer's recording and plans the injected episodes, so a mistake
stops the run before any replay; the replay reads the file again. A folder of whole recordings
(hundreds of wearers, months each) does not fit in memory at once; a small one is kept from the
first reading (OWN_KEPT_ROWS).

Injected onsets are drawn as the harness draws them (:func:`models.onsets.fitbit_onsets`: at
rest, after 30 min of wear, one per 8 h), never in a labelled episode's window, and flushes only
where skin temperature is recorded. Each wearer's episodes come from a stream of their own
(seed and wearer name), so adding a file to the folder does not move the others' episodes.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from models.alarm import Alarm, AlarmKind, is_onset
from models.const import GAP_RESET_S
from models.episodes_file import ONSET_ALARM
from models.errors import RecordingError
from models.evaluation import (
    EXAMPLE_CONTEXT_BEFORE_S,
    BankFactory,
    EpisodeOutcome,
    EvaluationResult,
    Example,
    Progress,
    episode_window,
    matching_span,
    record_false_alarms,
    replay_with_snapshots,
    score_episodes,
    score_from_snapshots,
)
from models.injection import Episode, draw_episode
from models.onsets import fitbit_onsets
from models.own_recordings import (
    LabelledEpisode,
    OwnRecording,
    labelled_windows,
    outside_recording,
    read_wearer,
    refuse_files,
    refuse_lines,
)
from models.recording import RecordingQuality, worn_intervals_s
from models.report import CONTEXT_AFTER_S

NO_CONTEXT: Final[dict[str, np.ndarray]] = {}
"""Your recordings are not broken down by context: their clocks need not be local time (night
would be UTC night); the per-wearer tables are the breakdown."""

OWN_KEPT_ROWS: Final = 2_000_000
"""Rows of all wearers kept in memory from the first reading (about 50 bytes each: 100 MB);
past that, each file is read again for its replay: slower by about a third, not out of memory
(measured: 2.4 M rows of 60 wearers, 318 MB resident reading each twice, 427 MB keeping 2 M)."""

EXAMPLES_SHOWN: Final = 4
"""Labelled episodes drawn in the examples PNG (the report draws at most four); each one also
gets a PNG of its own."""


@dataclass(slots=True)
class Plan:
    """The injected episodes of one wearer, per kind, with the stream that shapes them."""

    episodes: dict[AlarmKind, list[Episode]] = field(default_factory=dict)
    streams: dict[AlarmKind, np.random.Generator] = field(default_factory=dict)

    def all(self) -> list[Episode]:
        """Every planned episode, anaphylaxis-like ones first."""
        return [e for kind in sorted(self.episodes) for e in self.episodes[kind]]


@dataclass(frozen=True, slots=True)
class LabelledOutcome:
    """What happened to one labelled episode, with the signals around it for its own PNG.

    ``hr_readings`` counts heart-rate readings from its onset to the end of its matching window:
    none means the band recorded nothing the detectors could have found it in.
    """

    labelled: LabelledEpisode
    outcome: EpisodeOutcome
    hr_readings: int
    example: Example | None


@dataclass(slots=True)
class OwnEvaluation:
    """The real labelled episodes' result and, unless skipped, the injected episodes' result.

    Both share the false alarms, signal states and exposure of the untouched recordings (outside
    the labelled episodes), so each per-wearer table stands on its own. ``episodes`` holds each
    labelled episode's outcome in wearer and time order.
    """

    real: EvaluationResult
    injected: EvaluationResult | None
    episodes: list[LabelledOutcome] = field(default_factory=list)


def wearer_streams(seed: int, subject: str) -> dict[AlarmKind, np.random.Generator]:
    """Independent random streams of one wearer's injected episodes, per kind."""
    key = zlib.crc32(subject.encode("utf-8"))  # stable across runs, unlike hash()
    streams = np.random.default_rng([seed, key]).spawn(2)
    return {AlarmKind.ANAPHYLAXIS: streams[0], AlarmKind.FLUSH: streams[1]}


def plan_injections(
    frame: pd.DataFrame, windows: list[tuple[float, float]], seed: int, subject: str
) -> Plan:
    """Where and how this wearer's episodes are injected (seeded; none in a labelled window).

    Flushes only where skin temperature is recorded within GAP_RESET_S: a flush is defined by
    the skin warming (docs/models.md).
    """
    plan = Plan(streams=wearer_streams(seed, subject))
    if "hr_bpm" not in frame or not frame["hr_bpm"].notna().any():
        return plan
    onset_frames = {AlarmKind.ANAPHYLAXIS: frame}
    if "skin_temp_c" in frame and frame["skin_temp_c"].notna().any():
        covered = _skin_covered(frame)
        onset_frames[AlarmKind.FLUSH] = frame.assign(hr_bpm=frame["hr_bpm"].where(covered))
    for kind, onset_frame in onset_frames.items():
        rng = plan.streams[kind]
        drawn = [draw_episode(rng, kind, t) for t in fitbit_onsets(onset_frame, rng)]
        plan.episodes[kind] = [e for e in drawn if not _meets_window(e, windows)]
    return plan


def _skin_covered(frame: pd.DataFrame) -> np.ndarray:
    """Rows with a skin-temperature reading less than GAP_RESET_S away (before or after)."""
    time_s = frame["time_s"].to_numpy(dtype="float64")
    skin = time_s[frame["skin_temp_c"].notna().to_numpy()]
    after = np.searchsorted(skin, time_s, side="left")
    next_gap = np.where(after < len(skin), skin[np.minimum(after, len(skin) - 1)] - time_s, np.inf)
    prev_gap = np.where(after > 0, time_s - skin[np.maximum(after - 1, 0)], np.inf)
    return np.asarray(np.minimum(next_gap, prev_gap) < GAP_RESET_S)


def _meets_window(episode: Episode, windows: list[tuple[float, float]]) -> bool:
    """Whether an injected episode's matching span meets a labelled episode's."""
    start, stop = matching_span(episode)
    return any(start <= w_stop and w_start <= stop for w_start, w_stop in windows)


def _inside(time_s: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    """Which of ``time_s`` fall in one of ``windows`` (closed intervals)."""
    inside = np.zeros(len(time_s), dtype=bool)
    for start, stop in windows:
        inside |= (time_s >= start) & (time_s <= stop)
    return inside


def days_outside(frame: pd.DataFrame, windows: list[tuple[float, float]]) -> float:
    """Days covered by data (as Recording.days counts them) outside the labelled windows."""
    time_s = frame["time_s"].to_numpy(dtype="float64")
    worn = worn_intervals_s(time_s)
    return float(worn[~_inside(time_s, windows)].sum()) / 86_400.0


def outside_windows(alarms: list[Alarm], windows: list[tuple[float, float]]) -> list[Alarm]:
    """The alarms without the onsets inside a labelled window (those are no false alarms).

    Signal states and resolutions stay, so a band silent across an episode is still counted.
    """
    times = np.array([a.time_s for a in alarms], dtype="float64")
    inside = _inside(times, windows)
    return [a for a, hit in zip(alarms, inside.tolist(), strict=True) if not (hit and is_onset(a))]


@dataclass(frozen=True, slots=True)
class Wearer:
    """One wearer as the first reading found it: the file, what reading it dropped, the plan.

    ``kept`` is the recording itself while the folder is small enough (OWN_KEPT_ROWS), else None
    and the replay reads the file again.
    """

    subject: str
    path: Path
    quality: RecordingQuality
    days: float
    plan: Plan
    samples: int
    """Samples to replay: the untouched recording once, and each injected episode's window."""
    kept: OwnRecording | None = None

    def recording(self) -> OwnRecording:
        """The wearer's recording: the one kept, or the file read again."""
        if self.kept is not None:
            return self.kept
        return read_wearer(self.subject, self.path, warn=False)  # warned at the first reading


def check_wearers(
    folder: Path,
    files: Mapping[str, Path],
    episodes_file: Path | None,
    episodes: list[LabelledEpisode],
    seed: int,
    *,
    inject: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[Wearer]:
    """Read every file once: check it and its labelled onsets, plan its injected episodes.

    ``progress(done, files)`` is called after each file. Raises RecordingError naming every file
    the reader refuses, or else every line of ``episodes_file`` whose onset lies outside its
    wearer's recording: the run stops before any replay.
    """
    wearers: list[Wearer] = []
    refused: list[str] = []
    outside: list[tuple[int, str]] = []
    kept_rows = 0
    for done, (subject, path) in enumerate(files.items(), start=1):
        try:
            own = read_wearer(subject, path)
        except RecordingError as exc:
            refused.append(str(exc))
        else:
            frame = own.recording.frame
            outside += outside_recording(episodes, subject, frame["time_s"])
            windows = labelled_windows(episodes, subject)
            plan = plan_injections(frame, windows, seed, subject) if inject else Plan()
            samples = len(frame) + sum(len(episode_window(frame, e)) for e in plan.all())
            kept_rows += len(frame)
            kept = own if kept_rows <= OWN_KEPT_ROWS else None
            wearers.append(
                Wearer(subject, path, own.quality, own.recording.days, plan, samples, kept)
            )
        if progress is not None:
            progress(done, len(files))
    refuse_files(folder, refused, len(files))
    if episodes_file is not None:
        refuse_lines(episodes_file, outside)
    return wearers


def evaluate_own(
    bank_factory: BankFactory,
    wearers: list[Wearer],
    episodes: list[LabelledEpisode],
    progress: Progress,
    *,
    inject: bool = True,
    without: list[str] | None = None,
) -> OwnEvaluation:
    """Replay every wearer's recording; score labelled episodes, false alarms, injected ones.

    One wearer's recording is in memory at a time (unless kept); ``without`` names the sensors
    hidden from the detectors.
    """
    real = EvaluationResult(day_source="own")
    injected = EvaluationResult(day_source="own") if inject else None
    outcomes: list[LabelledOutcome] = []
    for wearer in wearers:
        own = wearer.recording()
        recording, frame = own.recording.without(without or ()), own.recording.frame
        labelled = [e for e in episodes if e.subject == wearer.subject]
        windows = labelled_windows(episodes, wearer.subject)
        plan = wearer.plan
        planned = plan.all()
        alarms, snapshots = replay_with_snapshots(
            bank_factory(), recording, frame, [e.onset_s for e in planned], progress
        )
        real.exposure_days[wearer.subject] = days_outside(frame, windows)
        record_false_alarms(recording, frame, outside_windows(alarms, windows), real, NO_CONTEXT)
        score_episodes(recording, frame, [e.episode for e in labelled], alarms, real, NO_CONTEXT)
        first = len(real.outcomes) - len(labelled)
        real.outcomes[first:] = [
            _by_onset_source(e, o) for e, o in zip(labelled, real.outcomes[first:], strict=True)
        ]
        scored = real.outcomes[first:]
        mine = [_outcome(own, e, o, alarms) for e, o in zip(labelled, scored, strict=True)]
        outcomes += mine
        pictures = [m.example for m in mine if m.example is not None]
        real.examples += pictures[: max(EXAMPLES_SHOWN - len(real.examples), 0)]
        if injected is None:
            continue
        start = 0
        for kind in sorted(plan.episodes):
            drawn = plan.episodes[kind]
            score_from_snapshots(
                bank_factory,
                recording,
                frame,
                drawn,
                snapshots[start : start + len(drawn)],
                plan.streams[kind],
                injected,
                NO_CONTEXT,
                progress,
            )
            start += len(drawn)
    if injected is not None:
        # the untouched recordings' figures, so the injected wearer table stands on its own
        injected.false_alarms = real.false_alarms
        injected.signal_losses = real.signal_losses
        injected.exposure_days = real.exposure_days
    return OwnEvaluation(real, injected, outcomes)


def _by_onset_source(labelled: LabelledEpisode, outcome: EpisodeOutcome) -> EpisodeOutcome:
    """The outcome grouped by where its onset came from; no delay from the alarm's own time."""
    if labelled.onset_from is None:
        return outcome
    delay_s = None if labelled.onset_from == ONSET_ALARM else outcome.delay_s
    return dataclasses.replace(
        outcome, delay_s=delay_s, confounders={"onset": labelled.onset_from.replace("_", " ")}
    )


def _outcome(
    own: OwnRecording, labelled: LabelledEpisode, outcome: EpisodeOutcome, alarms: list[Alarm]
) -> LabelledOutcome:
    """One labelled episode's outcome, its heart-rate readings and the signals around it."""
    frame = own.recording.frame
    time_s = frame["time_s"]
    start, stop = labelled.window
    hr_readings = (
        int(frame.loc[(time_s >= start) & (time_s <= stop), "hr_bpm"].notna().sum())
        if "hr_bpm" in frame
        else 0
    )
    shown = frame[
        (time_s >= labelled.onset_s - EXAMPLE_CONTEXT_BEFORE_S)
        & (time_s <= labelled.onset_s + CONTEXT_AFTER_S)
    ]
    # labelled where the band recorded nothing: no signal to draw. The example holds only the
    # rows it shows, not the wearer's whole recording (one per labelled episode is kept).
    example = (
        None
        if shown.empty
        else Example(
            dataclasses.replace(own.recording, frame=shown),
            shown,
            [labelled.episode],
            alarms,
            labelled=True,
        )
    )
    return LabelledOutcome(labelled, outcome, hr_readings, example)
