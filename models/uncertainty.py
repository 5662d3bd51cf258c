"""95 % intervals of the headline figures: a bootstrap over subjects, not over episodes.

Episodes of one wearer share that wearer's physiology and habits, so they are not independent: a
held-out split of four Fitbit users is four observations of "a new wearer", however many episodes
they hold. The intervals resample subjects with replacement, within each source (Fitbit users,
stress-predict sessions), and recompute each figure, seeded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.const import EVAL_BOOTSTRAP_RESAMPLES
from models.evaluation import EvaluationResult


@dataclass(slots=True)
class _Subject:
    """What one subject contributes to the headline figures."""

    episodes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    detected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    delays_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    false_alarms: int = 0
    days: float = 0.0


def _subjects(result: EvaluationResult) -> dict[str, dict[str, _Subject]]:
    """Per source, per subject: episodes, detections, delays, false alarms, exposure."""
    by_source: dict[str, dict[str, _Subject]] = defaultdict(lambda: defaultdict(_Subject))
    for o in result.outcomes:
        subject = by_source[o.source][o.subject]
        kind = o.episode.kind.value
        subject.episodes[kind] += 1
        if o.delay_s is not None:
            subject.detected[kind] += 1
            subject.delays_s[kind].append(o.delay_s)
    for fa in result.false_alarms:
        by_source[fa.source][fa.subject].false_alarms += 1
    for name, days in result.exposure_days.items():
        by_source[result.day_source][name].days = days
    for name in result.sessions:
        by_source["stress_predict"][name].days = 0.0  # present even without alarms or episodes
    return by_source


def _figures(sample: list[_Subject]) -> dict[str, float]:
    """Sensitivity and median delay per kind over the subjects of one resample."""
    out: dict[str, float] = {}
    for kind in ("flush", "anaphylaxis"):
        episodes = sum(s.episodes[kind] for s in sample)
        if episodes:
            out[f"{kind}_sensitivity"] = sum(s.detected[kind] for s in sample) / episodes
            delays = [d for s in sample for d in s.delays_s[kind]]
            if delays:
                out[f"{kind}_median_delay_min"] = float(np.median(delays)) / 60.0
    return out


def subject_intervals(
    result: EvaluationResult, seed: int, resamples: int = EVAL_BOOTSTRAP_RESAMPLES
) -> dict[str, list[float]]:
    """95 % percentile intervals of sensitivity, median delay and false-alarm rates."""
    rng = np.random.default_rng(seed)
    sources = {k: list(v.values()) for k, v in _subjects(result).items() if v}
    draws: dict[str, list[float]] = defaultdict(list)
    for _ in range(resamples):
        sample: dict[str, list[_Subject]] = {
            source: [subjects[i] for i in rng.integers(len(subjects), size=len(subjects))]
            for source, subjects in sources.items()
        }
        pooled = [s for subjects in sample.values() for s in subjects]
        for name, value in _figures(pooled).items():
            draws[name].append(value)
        worn = sample.get(result.day_source, [])
        days = sum(s.days for s in worn)
        if days:
            rate = sum(s.false_alarms for s in worn) / days
            draws[f"{result.day_source}_false_alarms_per_day"].append(rate)
        if "stress_predict" in sample:
            draws["stress_predict_false_alarms"].append(
                float(sum(s.false_alarms for s in sample["stress_predict"]))
            )
    return {
        name: [round(float(np.percentile(v, 2.5)), 3), round(float(np.percentile(v, 97.5)), 3)]
        for name, v in sorted(draws.items())
    }


def intervals_markdown(intervals: dict[str, Any]) -> str:
    """The intervals as a Markdown table."""
    lines = [
        "### 95 % intervals (bootstrap over subjects)",
        "",
        "| figure | 95 % interval |",
        "| --- | --- |",
    ]
    lines += [
        f"| {name.replace('_', ' ')} | {lo} to {hi} |" for name, (lo, hi) in intervals.items()
    ]
    return "\n".join(lines) + "\n"
