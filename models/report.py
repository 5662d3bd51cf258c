"""PNG report: example detections on the signals, delays by kind, and the wearers side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from models.alarm import AlarmKind, is_onset
from models.const import (
    TARGET_ANAPHYLAXIS_MEDIAN_DELAY_MIN,
    TARGET_ANAPHYLAXIS_SENSITIVITY,
    TARGET_FALSE_ALARMS_PER_DAY,
    TARGET_FLUSH_MEDIAN_DELAY_MIN,
)
from models.evaluation import EXAMPLE_CONTEXT_BEFORE_S, EvaluationResult, Example
from models.metrics import wearer_table

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
    ax.plot(minutes, frame["hr_bpm"], color="tab:blue", lw=0.8, label="heart rate (bpm)")
    ax.set_ylabel("bpm")
    ax.axvspan(0, (episode.end_s - episode.onset_s) / 60.0, color="0.9", label="injected episode")
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
    ax.set_xlabel("minutes from injected onset")
    ax.set_title(
        f"{example.recording.source} {example.recording.subject}: {episode.kind.value}, "
        f"HR +{episode.hr_rise_frac:.0%}, skin +{episode.temp_rise_c:.1f} °C"
        + (", syncope" if episode.syncope_after_s is not None else ""),
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
