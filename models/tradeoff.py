"""How far the surge rule can go: sensitivity and delay against false alarms over its thresholds.

Each setting of the three surge thresholds is replayed on the Fitbit free-living recordings of a
split (the same seeded episodes, each from the untouched state, see
:func:`models.evaluation.evaluate_fitbit`), giving one point of the trade-off curve. The curve
shows which targets of issue 4 a threshold choice can meet together, and which no choice meets.
The settings are replayed with one fixed evidence level for everyone; the profiles' per-patient
calibrated points (1.6, :mod:`models.calibration`) are drawn on top to show how far they move it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from models.bank import DetectorBank
from models.const import (
    TARGET_ANAPHYLAXIS_MEDIAN_DELAY_MIN,
    TARGET_ANAPHYLAXIS_SENSITIVITY,
    TARGET_FALSE_ALARMS_PER_DAY,
    TRADEOFF_FAST_S,
)
from models.datasets import Recording
from models.detector import PatientDetector
from models.evaluation import EvaluationResult, Progress, evaluate_fitbit, evaluation_streams


@dataclass(frozen=True, slots=True)
class TradeoffPoint:
    """What one setting of the surge thresholds does on free-living data."""

    rise_frac: float
    tod_margin_frac: float
    score_frac_s: float
    episodes: int
    sensitivity: float
    fast_share: float
    median_delay_min: float | None
    false_alarms: int
    false_alarms_per_day: float
    target_per_day: float | None = None

    @property
    def label(self) -> str:
        """The setting in words: rise / hourly margin / evidence (fixed or calibrated)."""
        evidence = (
            f"{self.score_frac_s:g} frac·s"
            if self.target_per_day is None
            else f"calibrated to {self.target_per_day:g} / day"
        )
        return f"+{self.rise_frac:.0%} / +{self.tod_margin_frac:.0%} / {evidence}"


def tradeoff_point(
    setting: tuple[float, float, float],
    fitbit: list[Recording],
    seed: int,
    progress: Progress,
    target_per_day: float | None = None,
) -> TradeoffPoint:
    """Replay the split's Fitbit recordings with one setting of the surge thresholds.

    ``target_per_day`` calibrates the evidence per patient (the setting's evidence is then the
    level used until enough history is in); ``None`` keeps it fixed for everyone.
    """
    rise, margin, score = setting
    template = PatientDetector(
        surge_rise_frac=rise,
        surge_tod_margin_frac=margin,
        surge_score_frac_s=score,
        surge_target_per_day=target_per_day,
    )
    result = EvaluationResult()
    evaluate_fitbit(
        lambda: DetectorBank(template), fitbit, evaluation_streams(seed)[1], result, progress
    )
    delays = np.array([o.delay_s for o in result.outcomes if o.delay_s is not None])
    episodes = len(result.outcomes)
    days = sum(result.exposure_days.values())
    return TradeoffPoint(
        rise_frac=rise,
        tod_margin_frac=margin,
        score_frac_s=score,
        episodes=episodes,
        sensitivity=len(delays) / episodes if episodes else float("nan"),
        fast_share=float((delays <= TRADEOFF_FAST_S).sum() / len(delays)) if len(delays) else 0.0,
        median_delay_min=float(np.median(delays)) / 60.0 if len(delays) else None,
        false_alarms=len(result.false_alarms),
        false_alarms_per_day=len(result.false_alarms) / days if days else float("nan"),
        target_per_day=target_per_day,
    )


def tradeoff_markdown(points: list[TradeoffPoint], header: str) -> str:
    """The curve as a table, eagerest setting first."""
    lines = [
        header,
        "",
        "| rise / hourly margin / evidence | sensitivity | detections within 2 min "
        "| median delay (min) | false alarms | per patient-day |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in points:
        median = "—" if p.median_delay_min is None else f"{p.median_delay_min:.1f}"
        lines.append(
            f"| {p.label} | {p.sensitivity:.3f} | {p.fast_share:.2f} | {median} "
            f"| {p.false_alarms} | {p.false_alarms_per_day:.3f} |"
        )
    return "\n".join(lines) + "\n"


def plot_tradeoff(points: list[TradeoffPoint], path: Path, title: str) -> None:
    """Sensitivity and median delay against false alarms per day, with the targets drawn in.

    Fixed settings make the curve; calibrated ones are stars on top of it.
    """
    points = sorted(points, key=lambda p: p.false_alarms_per_day)
    fixed = [p for p in points if p.target_per_day is None]
    calibrated = [p for p in points if p.target_per_day is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _panel(
        left,
        fixed,
        calibrated,
        lambda p: p.sensitivity,
        "tab:red",
        TARGET_ANAPHYLAXIS_SENSITIVITY,
        "sensitivity",
    )
    for p in points:
        left.annotate(p.label, (p.false_alarms_per_day, p.sensitivity), fontsize=6)
    _panel(
        right,
        fixed,
        calibrated,
        lambda p: p.median_delay_min or float("nan"),
        "tab:blue",
        TARGET_ANAPHYLAXIS_MEDIAN_DELAY_MIN,
        "median delay (min)",
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _panel(
    ax: Axes,
    fixed: list[TradeoffPoint],
    calibrated: list[TradeoffPoint],
    value: Callable[[TradeoffPoint], float],
    colour: str,
    target: float,
    what: str,
) -> None:
    """One curve against false alarms per day (log), calibrated stars, the two targets dotted."""
    ax.plot([p.false_alarms_per_day for p in fixed], [value(p) for p in fixed], "o-", color=colour)
    if calibrated:
        ax.plot(
            [p.false_alarms_per_day for p in calibrated],
            [value(p) for p in calibrated],
            "*",
            color="k",
            markersize=10,
            label="calibrated per patient",
        )
        ax.legend(fontsize=7, loc="lower right")
    ax.axhline(target, color="k", ls=":", lw=1)
    ax.axvline(TARGET_FALSE_ALARMS_PER_DAY, color="k", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per patient-day (log)")
    ax.set_ylabel(f"anaphylaxis-like {what}")
    ax.set_title(
        f"dotted: targets ({what} {target:g}, {TARGET_FALSE_ALARMS_PER_DAY:g} / day)", fontsize=8
    )
