"""PNG report: example detections on the signals, delays by kind, and the wearers side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from models.alarm import AlarmKind, Severity, is_onset
from models.const import (
    TARGET_ANAPHYLAXIS_MEDIAN_DELAY_MIN,
    TARGET_ANAPHYLAXIS_SENSITIVITY,
    TARGET_FALSE_ALARMS_PER_DAY,
    TARGET_FLUSH_MEDIAN_DELAY_MIN,
)
from models.evaluation import EXAMPLE_CONTEXT_BEFORE_S, EvaluationResult, Example
from models.labels import ReviewedEpisode
from models.metrics import wearer_table
from models.profile_comparison import ProfileComparison

KIND_COLOURS = {AlarmKind.FLUSH: "tab:orange", AlarmKind.ANAPHYLAXIS: "tab:red"}
CONTEXT_AFTER_S = 50 * 60.0


def plot_examples(result: EvaluationResult, path: Path) -> None:
    """One panel per example: heart rate (and skin temperature), episode span, alarms."""
    examples = result.examples[:4]
    if not examples:
        return
    fig, axes = plt.subplots(len(examples), 1, figsize=(11, 3.2 * len(examples)), squeeze=False)
    for ax, example in zip(axes[:, 0], examples, strict=True):
        _plot_example(ax, example)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_example(ax: Axes, example: Example) -> None:
    episode = example.episodes[0]
    start = max(episode.onset_s - EXAMPLE_CONTEXT_BEFORE_S, float(example.frame["time_s"].iloc[0]))
    stop = episode.onset_s + CONTEXT_AFTER_S
    frame = example.frame[(example.frame["time_s"] >= start) & (example.frame["time_s"] <= stop)]
    minutes = (frame["time_s"].to_numpy() - episode.onset_s) / 60.0
    if "hr_bpm" in frame:  # a recording of one's own may have skin temperature only
        ax.plot(minutes, frame["hr_bpm"], color="tab:blue", lw=0.8, label="heart rate (bpm)")
    ax.set_ylabel("bpm")
    made = "labelled" if example.labelled else "injected"
    ax.axvspan(0, (episode.end_s - episode.onset_s) / 60.0, color="0.9", label=f"{made} episode")
    if "skin_temp_c" in frame and frame["skin_temp_c"].notna().any():
        twin = ax.twinx()
        twin.plot(minutes, frame["skin_temp_c"], color="tab:green", lw=0.8)
        twin.set_ylabel("skin °C", color="tab:green")
    for alarm in example.alarms:
        if not is_onset(alarm) or not start <= alarm.time_s <= stop:
            continue
        x = (alarm.time_s - episode.onset_s) / 60.0
        colour = KIND_COLOURS.get(alarm.kind, "k")
        ax.axvline(x, color=colour, ls="--", lw=1.2, label=f"{alarm.kind.value} alarm")
    ax.set_xlabel(f"minutes from {made} onset")
    course = (
        "labelled, course unknown"
        if example.labelled
        else f"HR +{episode.hr_rise_frac:.0%}, skin +{episode.temp_rise_c:.1f} °C"
        + (", syncope" if episode.syncope_after_s is not None else "")
    )
    ax.set_title(
        f"{example.recording.source} {example.recording.subject}: {episode.kind.value}, {course}",
        fontsize=9,
    )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left")


def plot_delays(result: EvaluationResult, path: Path) -> None:
    """Histogram of detection delays per kind, with the acceptance limits drawn in."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    limits = {
        AlarmKind.FLUSH: TARGET_FLUSH_MEDIAN_DELAY_MIN,
        AlarmKind.ANAPHYLAXIS: TARGET_ANAPHYLAXIS_MEDIAN_DELAY_MIN,
    }
    for kind, colour in KIND_COLOURS.items():
        delays = [o.delay_s / 60.0 for o in result.outcomes if o.episode.kind is kind and o.delay_s]
        if delays:
            ax.hist(
                delays, bins=[0.5 * i for i in range(33)], alpha=0.6, color=colour, label=kind.value
            )
            ax.axvline(limits[kind], color=colour, ls=":", lw=1)
    ax.set_xlabel("detection delay (min); dotted: median-delay target")
    ax.set_ylabel("episodes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_wearers(result: EvaluationResult, path: Path) -> None:
    """Each free-living wearer's false alarms per day against their anaphylaxis-like sensitivity.

    Pooled figures hide how uneven wearers are; the targets are dotted. Nothing is drawn without
    free-living wearers.
    """
    rows = [r for r in wearer_table(result) if r.unit == "patient-days" and r.anaphylaxis.episodes]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for row in rows:
        rate = row.false_alarms / row.exposure if row.exposure else float("nan")
        ax.scatter(rate, row.anaphylaxis.sensitivity, s=20 + row.exposure, color="tab:red")
        ax.annotate(
            f"{row.subject} ({row.exposure:.0f} d)",
            (rate, row.anaphylaxis.sensitivity),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.axhline(TARGET_ANAPHYLAXIS_SENSITIVITY, color="k", ls=":", lw=1)
    ax.axvline(TARGET_FALSE_ALARMS_PER_DAY, color="k", ls=":", lw=1)
    ax.set_xlabel("false alarms per patient-day (untouched recording)")
    ax.set_ylabel("anaphylaxis-like sensitivity")
    ax.set_title("free-living wearers (dot size: days worn); dotted: targets", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_profile_comparison(
    comparison: ProfileComparison, episodes: Sequence[ReviewedEpisode], path: Path
) -> None:
    """One row per profile: when each would have alarmed over the replayed days.

    Crosses are critical alarms, dots warnings (red anaphylaxis-like, orange flush); labelled
    episodes are vertical lines (green a reaction, grey a false alarm). Clusters show whether a
    profile's alarms come at night, on one bad day or all the time.
    """
    start = comparison.first_s or 0.0
    profiles = list(comparison.runs)
    height = 1.2 + 0.45 * len(profiles)
    fig, ax = plt.subplots(figsize=(11, height))
    for episode in episodes:
        ax.axvline(
            (episode.opened_s - start) / 86_400.0,
            color="tab:green" if episode.reaction else "0.6",
            lw=1.0,
            zorder=0,
        )
    for row, profile in enumerate(reversed(profiles)):
        onsets = comparison.runs[profile].onsets
        for critical in (False, True):
            shown = [a for a in onsets if (a.severity is Severity.CRITICAL) is critical]
            ax.scatter(
                [(a.time_s - start) / 86_400.0 for a in shown],
                [row] * len(shown),
                c=[KIND_COLOURS.get(a.kind, "k") for a in shown],
                marker="x" if critical else "o",
                s=36,
            )
    ax.set_yticks(range(len(profiles)), [p.value for p in reversed(profiles)])
    ax.set_ylim(-0.7, len(profiles) - 0.3)
    ax.set_xlim(0.0, max(((comparison.last_s or start) - start) / 86_400.0, 1.0 / 24.0))
    ax.set_xlabel("days since the start of the replay")
    ax.set_title(
        "alarms each profile would have raised (x critical, o warning; "
        "green line: labelled reaction, grey: labelled false alarm)",
        fontsize=9,
    )
    ax.grid(axis="x", color="0.92")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
