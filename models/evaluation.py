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
from models.const import (
    ACC_SD_ACTIVE_G,
    ACC_SD_TAU_S,
    ACTIVITY_SIGNAL_MEMORY_S,
    EVAL_FITBIT_BLOCK_S,
    EVAL_MATCH_AFTER_END_S,
    EVAL_MIN_EPISODE_SPACING_S,
    EVAL_NIGHT_HOURS,
    EVAL_ONSET_LEAD_S,
    EVAL_ONSET_TAIL_S,
    EVAL_STRESS_FLUSH_COPIES,
    EVAL_STRESS_ONSET_WINDOW_S,
    EVAL_STRESS_SURGE_COPIES,
    GAP_RESET_S,
    REST_AFTER_ACTIVITY_S,
)
from models.datasets import Recording
from models.injection import Episode, draw_episode, inject
from models.recording import worn_intervals_s
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


def rest_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows with no steps or movement in the settling time before them."""
    time_s = frame["time_s"].to_numpy(dtype="float64")
    active = np.zeros(len(frame), dtype=bool)
    if "steps" in frame:
        active |= frame["steps"].fillna(0).to_numpy() > 0
    if "acc_sd_g" in frame and frame["acc_sd_g"].notna().any():
        # the detector's smoothing (SignalTracker): exponential, time constant ACC_SD_TAU_S
        movement = (
            frame["acc_sd_g"]
            .ewm(
                halflife=pd.Timedelta(seconds=ACC_SD_TAU_S * np.log(2.0)),
                times=pd.to_datetime(frame["time_s"], unit="s"),
                ignore_na=True,
            )
            .mean()
        )
        active |= movement.fillna(0).to_numpy() > ACC_SD_ACTIVE_G
    active_times = time_s[active]
    if not len(active_times):
        return np.ones(len(frame), dtype=bool)
    idx = np.searchsorted(active_times, time_s, side="right") - 1
    last = np.where(idx >= 0, active_times[np.maximum(idx, 0)], -np.inf)
    return np.asarray(time_s - last >= REST_AFTER_ACTIVITY_S)


def _segments(time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end time of the wear segment (no gap >= GAP_RESET_S) of each row."""
    breaks = np.flatnonzero(np.diff(time_s) >= GAP_RESET_S) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks - 1, len(time_s) - 1]
    seg = np.searchsorted(starts, np.arange(len(time_s)), side="right") - 1
    return time_s[starts][seg], time_s[ends][seg]


def fitbit_onsets(frame: pd.DataFrame, rng: np.random.Generator) -> list[float]:
    """Random at-rest onsets, one per 8 h block where wear allows, at least 4 h apart."""
    has_hr = frame["hr_bpm"].notna().to_numpy()
    time_s = frame["time_s"].to_numpy(dtype="float64")
    seg_start, seg_end = _segments(time_s[has_hr])
    ok = (
        (time_s[has_hr] - seg_start >= EVAL_ONSET_LEAD_S)
        & (seg_end - time_s[has_hr] >= EVAL_ONSET_TAIL_S)
        & rest_mask(frame)[has_hr]
    )
    candidates = time_s[has_hr][ok]
    if not len(candidates):
        return []
    blocks = ((candidates - time_s[0]) // EVAL_FITBIT_BLOCK_S).astype(int)
    onsets: list[float] = []
    for block in np.unique(blocks):
        choices = candidates[blocks == block]
        onset = float(choices[rng.integers(len(choices))])
        if not onsets or onset - onsets[-1] >= EVAL_MIN_EPISODE_SPACING_S:
            onsets.append(onset)
    return onsets


def stress_onset(frame: pd.DataFrame, rng: np.random.Generator) -> float | None:
    """A random at-rest onset 20-42 min into a stress-predict session."""
    time_s = frame["time_s"].to_numpy(dtype="float64")
    rel = time_s - time_s[0]
    low, high = EVAL_STRESS_ONSET_WINDOW_S
    ok = (rel >= low) & (rel <= high) & rest_mask(frame) & frame["hr_bpm"].notna().to_numpy()
    choices = time_s[ok]
    return float(choices[rng.integers(len(choices))]) if len(choices) else None


def fitbit_context(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The free-living context of every row: night or day, after exercise, steps counted."""
    times = frame["time_s"].to_numpy(dtype="float64")
    steps = frame["steps"].fillna(0).to_numpy() if "steps" in frame else np.zeros(len(frame))
    prefix = np.concatenate([[0.0], np.cumsum(steps)])
    upto = np.arange(1, len(times) + 1)

    def steps_within(seconds: float) -> np.ndarray:
        """Steps in (t - seconds, t] for every row t."""
        since = np.searchsorted(times, times - seconds, side="right")
        return np.asarray(prefix[upto] - prefix[since])

    hours = (times % 86_400 // 3600).astype(int)
    return {
        "time": np.where(np.isin(hours, list(EVAL_NIGHT_HOURS)), "night", "day"),
        "exercise": np.where(
            steps_within(30 * 60.0) >= 500, "after exercise", "no recent exercise"
        ),
        # a day without a single step: the band (or its export) stopped counting them
        "steps": np.where(steps_within(ACTIVITY_SIGNAL_MEMORY_S) > 0, "counted", "none for a day"),
    }


Context = dict[str, np.ndarray]
"""Labels of every row of one recording per context name (see :func:`fitbit_context`)."""


def confounders_at(
    recording: Recording, frame: pd.DataFrame, time_s: float, context: Context | None = None
) -> dict[str, str]:
    """Context of a moment: stress phase, or the free-living context of its row.

    ``context`` is ``fitbit_context(frame)`` when the caller has it (computed once per recording).
    """
    row = int(np.searchsorted(frame["time_s"].to_numpy(), time_s, side="right")) - 1
    row = max(row, 0)
    if recording.source == "stress_predict":
        phase = str(frame["phase"].iloc[row]) if "phase" in frame else ""
        return {"phase": phase or "unlabelled"}
    labels_by_name = fitbit_context(frame) if context is None else context
    return {name: str(labels[row]) for name, labels in labels_by_name.items()}


def context_exposure_days(frame: pd.DataFrame, context: Context | None = None) -> dict[str, float]:
    """Days of wear in each free-living context (``"time = night"`` ...), as Recording.days counts.

    A false-alarm rate within a context divides by the time spent in it, not by all the days.
    """
    dt = worn_intervals_s(frame["time_s"].to_numpy())
    out: dict[str, float] = {}
    for name, labels in (fitbit_context(frame) if context is None else context).items():
        for value in np.unique(labels):
            out[f"{name} = {value}"] = float(dt[labels == value].sum()) / 86_400.0
    return out


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
        window = [
            (i, a)
            for i, a in enumerate(onsets)
            if episode.onset_s <= a.time_s <= episode.end_s + EVAL_MATCH_AFTER_END_S
        ]
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


def episode_window(frame: pd.DataFrame, episode: Episode) -> pd.DataFrame:
    """Rows from an episode's onset until the last moment an alarm still counts for it."""
    time_s = frame["time_s"]
    until = episode.end_s + EVAL_MATCH_AFTER_END_S
    return frame[(time_s >= episode.onset_s) & (time_s <= until)]


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
        for episode, snapshot in zip(episodes, snapshots, strict=True):
            injected = inject(episode_window(frame, episode), [episode], rng)
            bank = bank_factory()
            bank.load_state_dict(snapshot)
            alarms = replay(bank, recording.subject, recording.samples(injected))
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
