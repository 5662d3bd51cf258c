"""Measuring the detectors: choose onsets, inject episodes, replay, match alarms to episodes.

Everything goes through :func:`models.replay.replay` and a :class:`~models.bank.DetectorBank`, the
code path of the service. Positives are injected episodes (:mod:`models.injection`); negatives
are the real recordings untouched, so every alarm on them is false.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from models.alarm import Alarm, AlarmKind, is_onset
from models.bank import DetectorBank
from models.confounders import Context, confounders_at, context_exposure_days, fitbit_context
from models.const import (
    EVAL_MATCH_AFTER_END_S,
    EVAL_STRESS_FLUSH_COPIES,
    EVAL_STRESS_SURGE_COPIES,
)
from models.datasets import Recording
from models.injection import Episode, draw_episode, inject
from models.onsets import fitbit_onsets, stress_onset
from models.replay import replay

BankFactory = Callable[[], DetectorBank]

EXAMPLE_CONTEXT_BEFORE_S: Final = 40 * 60.0
"""An example in the PNG report shows the signals this long before the injected onset."""
Progress = Callable[[int], None]

SIGNAL_KINDS: Final = frozenset({AlarmKind.NO_DATA, AlarmKind.NO_CONTACT})
"""The signal states the detectors raise (the band silent, or off the wrist)."""


STRESS_COPIES: dict[AlarmKind, int] = {
    AlarmKind.FLUSH: EVAL_STRESS_FLUSH_COPIES,
    AlarmKind.ANAPHYLAXIS: EVAL_STRESS_SURGE_COPIES,
}
"""Injected copies of each stress-predict session, per kind (one episode each)."""


@dataclass(slots=True)
class EpisodeOutcome:
    """What happened to one injected episode."""

    source: str
    subject: str
    episode: Episode
    detected: bool
    delay_s: float | None
    other_kind: bool
    severity: str | None
    confounders: dict[str, str]


@dataclass(slots=True)
class FalseAlarm:
    """An onset alarm on an untouched recording."""

    source: str
    subject: str
    alarm: Alarm
    confounders: dict[str, str]


@dataclass(slots=True)
class SignalLoss:
    """A signal-state alarm (``no_data``, ``no_contact``) on an untouched recording.

    ``duration_s`` runs from the alarm to its resolution (or to the end of the recording): how
    long someone would have been told the band is silent or off the wrist.
    """

    source: str
    subject: str
    kind: AlarmKind
    time_s: float
    duration_s: float


@dataclass(slots=True)
class Example:
    """A recording with injected episodes and the alarms raised, for the PNG report."""

    recording: Recording
    frame: pd.DataFrame
    episodes: list[Episode]
    alarms: list[Alarm]
    labelled: bool = False
    """A real episode someone labelled (its course unknown), not an injected one."""


@dataclass(slots=True)
class EvaluationResult:
    """Outcomes of every injected episode and every false alarm, with the exposure behind them."""

    outcomes: list[EpisodeOutcome] = field(default_factory=list)
    false_alarms: list[FalseAlarm] = field(default_factory=list)
    signal_losses: list[SignalLoss] = field(default_factory=list)
    exposure_days: dict[str, float] = field(default_factory=dict)
    context_days: dict[str, float] = field(default_factory=dict)
    """Fitbit days of wear per context ("time = night", "steps = none for a day", ...)."""
    sessions: dict[str, int] = field(default_factory=dict)
    candidates: list[tuple[Alarm, int]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    day_source: str = "fitbit"
    """The source whose wearers ``exposure_days`` holds (false alarms per patient-day); the
    others are counted per session."""


def run_recording(
    bank_factory: BankFactory, recording: Recording, frame: pd.DataFrame, progress: Progress
) -> list[Alarm]:
    """Replay one (possibly injected) recording from an empty bank; the alarms it raised."""
    return replay(bank_factory(), recording.subject, recording.samples(frame), progress=progress)


def score_episodes(
    recording: Recording,
    frame: pd.DataFrame,
    episodes: list[Episode],
    alarms: list[Alarm],
    result: EvaluationResult,
    context: Context | None = None,
) -> None:
    """Match onset alarms to the injected episodes; record outcomes and labelled candidates."""
    onsets = [a for a in alarms if is_onset(a)]
    matched: set[int] = set()
    for episode in episodes:
        start, stop = matching_span(episode)
        window = [(i, a) for i, a in enumerate(onsets) if start <= a.time_s <= stop]
        same = [(i, a) for i, a in window if a.kind is episode.kind]
        matched.update(i for i, _ in window)
        first = same[0][1] if same else None
        result.outcomes.append(
            EpisodeOutcome(
                source=recording.source,
                subject=recording.subject,
                episode=episode,
                detected=first is not None,
                delay_s=None if first is None else first.time_s - episode.onset_s,
                other_kind=bool(window) and not same,
                severity=None if first is None else first.severity.value,
                confounders=confounders_at(recording, frame, episode.onset_s, context),
            )
        )
        result.candidates.extend((a, 1) for _, a in same[:1])


def record_false_alarms(
    recording: Recording,
    frame: pd.DataFrame,
    alarms: list[Alarm],
    result: EvaluationResult,
    context: Context | None = None,
) -> None:
    """Every onset on an untouched recording is a false alarm (and a negative candidate).

    Signal-state alarms are kept apart (:class:`SignalLoss`): they are true, but each one is a
    message to someone.
    """
    end_s = float(frame["time_s"].iloc[-1]) if len(frame) else 0.0
    lost: dict[AlarmKind, float] = {}
    for alarm in alarms:
        if alarm.kind in SIGNAL_KINDS:
            if not alarm.resolved:
                lost[alarm.kind] = alarm.time_s
            elif alarm.kind in lost:
                since = lost.pop(alarm.kind)
                result.signal_losses.append(
                    SignalLoss(
                        recording.source, recording.subject, alarm.kind, since, alarm.time_s - since
                    )
                )
            continue
        if is_onset(alarm):
            where = confounders_at(recording, frame, alarm.time_s, context)
            result.false_alarms.append(
                FalseAlarm(recording.source, recording.subject, alarm, where)
            )
            result.candidates.append((alarm, 0))
    for kind, since in lost.items():
        result.signal_losses.append(
            SignalLoss(recording.source, recording.subject, kind, since, max(end_s - since, 0.0))
        )


def replay_with_snapshots(
    bank: DetectorBank,
    recording: Recording,
    frame: pd.DataFrame,
    cut_times_s: list[float],
    progress: Progress,
) -> tuple[list[Alarm], list[dict[str, Any]]]:
    """Replay ``frame`` once; snapshot the bank's state just before each of ``cut_times_s``.

    Snapshots come back in the order of ``cut_times_s``, whatever that order is.

    The snapshots are what the detectors had learnt from the untouched data up to that moment,
    so an episode injected there meets exactly the state a real one would have met.
    """
    time_s = frame["time_s"].to_numpy(dtype="float64")
    alarms: list[Alarm] = []
    snapshots: list[dict[str, Any]] = [{} for _ in cut_times_s]
    start = 0
    for i in sorted(range(len(cut_times_s)), key=cut_times_s.__getitem__):
        stop = int(np.searchsorted(time_s, cut_times_s[i], side="left"))
        part = frame.iloc[start:stop]
        alarms.extend(replay(bank, recording.subject, recording.samples(part), progress=progress))
        snapshots[i] = bank.state_dict()
        start = stop
    rest = frame.iloc[start:]
    alarms.extend(replay(bank, recording.subject, recording.samples(rest), progress=progress))
    return alarms, snapshots


def matching_span(episode: Episode) -> tuple[float, float]:
    """From an episode's onset until the last moment an onset alarm counts as its detection."""
    return episode.onset_s, episode.end_s + EVAL_MATCH_AFTER_END_S


def episode_window(frame: pd.DataFrame, episode: Episode) -> pd.DataFrame:
    """Rows from an episode's onset until the last moment an alarm still counts for it."""
    time_s = frame["time_s"]
    start, stop = matching_span(episode)
    return frame[(time_s >= start) & (time_s <= stop)]


def evaluate_fitbit(
    bank_factory: BankFactory,
    recordings: list[Recording],
    rng: np.random.Generator,
    result: EvaluationResult,
    progress: Progress,
) -> None:
    """Untouched Fitbit days for false alarms; each injected episode from the untouched state.

    One replay of the untouched recording counts the false alarms and snapshots the detectors
    just before every planned onset. Each episode is then injected alone and replayed from its
    snapshot, so no episode teaches the baselines anything before the next one (a real
    anaphylaxis is rare; the evaluation's one per 8 h is not) and an episode still open cannot
    hide the next. Flushes are not injected: the Fitbit recordings have no skin temperature, and
    a flush is defined by skin warming (see docs/models.md).
    """
    for recording in recordings:
        frame = recording.frame
        result.exposure_days[recording.subject] = recording.days
        context = fitbit_context(frame)
        for group, days in context_exposure_days(frame, context).items():
            result.context_days[group] = result.context_days.get(group, 0.0) + days
        episodes = [draw_episode(rng, AlarmKind.ANAPHYLAXIS, t) for t in fitbit_onsets(frame, rng)]
        alarms, snapshots = replay_with_snapshots(
            bank_factory(), recording, frame, [e.onset_s for e in episodes], progress
        )
        record_false_alarms(recording, frame, alarms, result, context)
        score_from_snapshots(
            bank_factory, recording, frame, episodes, snapshots, rng, result, context
        )


def score_from_snapshots(
    bank_factory: BankFactory,
    recording: Recording,
    frame: pd.DataFrame,
    episodes: list[Episode],
    snapshots: list[dict[str, Any]],
    rng: np.random.Generator,
    result: EvaluationResult,
    context: Context | None = None,
    progress: Progress | None = None,
) -> None:
    """Inject each episode alone into its window and replay it from the state saved before it.

    ``snapshots`` come from :func:`replay_with_snapshots` of the untouched recording, one per
    episode, so each episode meets what the detectors had learnt up to its onset, and nothing
    of the other episodes.
    """
    for episode, snapshot in zip(episodes, snapshots, strict=True):
        injected = inject(episode_window(frame, episode), [episode], rng)
        bank = bank_factory()
        bank.load_state_dict(snapshot)
        alarms = replay(bank, recording.subject, recording.samples(injected), progress=progress)
        score_episodes(recording, frame, [episode], alarms, result, context)
        if len(result.examples) < 3:
            before = frame[
                (frame["time_s"] >= episode.onset_s - EXAMPLE_CONTEXT_BEFORE_S)
                & (frame["time_s"] < episode.onset_s)
            ]
            shown = pd.concat([before, injected], ignore_index=True)
            result.examples.append(Example(recording, shown, [episode], alarms))


def evaluate_stress(
    bank_factory: BankFactory,
    recordings: list[Recording],
    rng: np.random.Generator,
    result: EvaluationResult,
    progress: Progress,
) -> None:
    """Untouched sessions for false alarms, then copies with one injected episode each.

    Each kind draws from its own stream of ``rng``, so more copies of one kind leave the
    episodes of the other unchanged.
    """
    streams = dict(zip(STRESS_COPIES, rng.spawn(len(STRESS_COPIES)), strict=True))
    for recording in recordings:
        frame = recording.frame
        result.sessions[recording.subject] = 1
        alarms = run_recording(bank_factory, recording, frame, progress)
        record_false_alarms(recording, frame, alarms, result)
        for kind, copies in STRESS_COPIES.items():
            rng = streams[kind]
            for _ in range(copies):
                onset = stress_onset(frame, rng)
                if onset is None:
                    progress(len(frame))
                    continue
                episodes = [draw_episode(rng, kind, onset)]
                injected = inject(frame, episodes, rng)
                alarms = run_recording(bank_factory, recording, injected, progress)
                score_episodes(recording, injected, episodes, alarms, result)
                if not any(
                    e.recording.source == recording.source and e.episodes[0].kind is kind
                    for e in result.examples
                ):
                    result.examples.append(Example(recording, injected, episodes, alarms))


def evaluation_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent random streams of the stress-predict and the Fitbit episodes of ``seed``."""
    stress, fitbit = np.random.default_rng(seed).spawn(2)
    return stress, fitbit


def samples_to_process(fitbit: list[Recording], stress: list[Recording]) -> int:
    """Samples replayed, for the progress bar (the short Fitbit episode windows not counted)."""
    return sum(len(r.frame) for r in fitbit) + (1 + sum(STRESS_COPIES.values())) * sum(
        len(r.frame) for r in stress
    )
