"""What each detection profile would have raised on one patient's own recording.

No setting of the surge rule meets every target (docs/evaluation.md): earlier alarms cost false
ones, and how many depends on the heart (0.01 to 0.4 false alarms a day between wearers at the
same setting). The evaluation measures that over many people; a care team choosing a profile for
one patient needs it for that patient. :func:`compare_profiles` replays the patient's recording
(a CSV, or the samples the service stored) through one bank that holds the patient once per
profile, so every profile meets the same samples in the same batches, from an empty state.

Where the care team labelled the patient's real episodes (``flarewatch admin episode label``),
each profile is scored against them too: which reactions it would have caught, how much earlier
or later than the alarm the patient actually had, and which false alarms it would raise again.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np

from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind, Severity, is_onset
from models.bank import DetectorBank
from models.const import (
    MAX_EPISODE_S,
    PROFILE_REVIEW_MATCH_BEFORE_S,
    PROFILE_REVIEW_MIN_DAYS,
    WARMUP_S,
)
from models.labels import ReviewedEpisode
from models.profiles import DetectionProfile
from models.recording import worn_intervals_s

_DAY_S = 86_400.0


@dataclass(slots=True)
class ProfileRun:
    """The onset alarms one profile raised over the replay."""

    profile: DetectionProfile
    onsets: list[Alarm] = field(default_factory=list)

    def count(self, kind: AlarmKind, severity: Severity | None = None) -> int:
        """Onsets of ``kind`` (of ``severity`` when given)."""
        return sum(
            1
            for a in self.onsets
            if a.kind is kind and (severity is None or a.severity is severity)
        )

    def matches(self, episodes: Sequence[ReviewedEpisode]) -> list[Alarm | None]:
        """Per episode, the first onset of its kind while it lasted (None: none).

        A more eager profile may alarm before the patient's own alarm did, so the search starts
        PROFILE_REVIEW_MATCH_BEFORE_S earlier; an episode never closed lasted at most
        MAX_EPISODE_S. Episodes take onsets in the order they opened, each onset at most once,
        so one alarm between two close episodes does not count for both.
        """
        taken: set[int] = set()
        found: list[Alarm | None] = [None] * len(episodes)
        for i in sorted(range(len(episodes)), key=lambda i: episodes[i].opened_s):
            episode = episodes[i]
            start = episode.opened_s - PROFILE_REVIEW_MATCH_BEFORE_S
            end = episode.closed_s
            end = episode.opened_s + MAX_EPISODE_S if end is None else end
            for n, alarm in enumerate(self.onsets):
                if n not in taken and alarm.kind is episode.kind and start <= alarm.time_s <= end:
                    taken.add(n)
                    found[i] = alarm
                    break
        return found


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One line of the comparison: a profile's alarms, and its score on the labelled episodes."""

    profile: DetectionProfile
    anaphylaxis: int
    critical: int
    flush: int
    per_worn_day: float | None
    """Onsets per day of wear (None under PROFILE_REVIEW_MIN_DAYS of wear: too little to say)."""
    reactions: int
    reactions_found: int
    median_shift_s: float | None
    """Median of (this profile's alarm - the patient's alarm) over the reactions it found;
    negative is earlier."""
    false_alarms: int
    false_alarms_raised: int


@dataclass(slots=True)
class ProfileComparison:
    """Every profile's run over the same samples, and how much wear they covered."""

    runs: dict[DetectionProfile, ProfileRun]
    samples: int = 0
    worn_s: float = 0.0
    first_s: float | None = None
    last_s: float | None = None

    @property
    def worn_days(self) -> float:
        """Days of wear replayed (gaps of an hour or more are not wear)."""
        return self.worn_s / _DAY_S

    def rows(self, episodes: Sequence[ReviewedEpisode] = ()) -> list[ProfileRow]:
        """One row per profile, in the order they were compared."""
        reactions = sum(1 for e in episodes if e.reaction)
        out: list[ProfileRow] = []
        for profile, run in self.runs.items():
            matched = list(zip(episodes, run.matches(episodes), strict=True))
            found = [(e, a) for e, a in matched if e.reaction and a is not None]
            shifts = [a.time_s - e.opened_s for e, a in found]
            physiological = len(run.onsets)
            out.append(
                ProfileRow(
                    profile=profile,
                    anaphylaxis=run.count(AlarmKind.ANAPHYLAXIS),
                    critical=run.count(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL),
                    flush=run.count(AlarmKind.FLUSH),
                    per_worn_day=(
                        physiological / self.worn_days
                        if self.worn_days >= PROFILE_REVIEW_MIN_DAYS
                        else None
                    ),
                    reactions=reactions,
                    reactions_found=len(found),
                    median_shift_s=statistics.median(shifts) if shifts else None,
                    false_alarms=len(episodes) - reactions,
                    false_alarms_raised=sum(
                        1 for e, a in matched if not e.reaction and a is not None
                    ),
                )
            )
        return out


def compare_profiles(
    bank: DetectorBank,
    batches: Iterable[Sequence[Sample]],
    profiles: Sequence[DetectionProfile] = tuple(DetectionProfile),
    progress: Callable[[int], None] | None = None,
) -> ProfileComparison:
    """Replay one patient's ``batches`` (oldest first) under every profile in ``profiles``.

    ``bank`` must be fresh (the service's own kind: rules and confirmer); each profile gets a
    patient of its own in it. Each batch is preceded by a tick, as the service and ``flarewatch
    detect`` do. Signal-state alarms are the same under every profile and are not counted.
    """
    if not profiles:
        raise ValueError("name at least one detection profile to compare")
    ids = {f"profile:{profile.value}": profile for profile in profiles}
    for patient_id, profile in ids.items():
        bank.set_profile(patient_id, profile)
    result = ProfileComparison({profile: ProfileRun(profile) for profile in profiles})
    for batch in batches:
        if not batch:
            continue
        times = np.fromiter((s.time_ms for s in batch), dtype="float64", count=len(batch)) / 1e3
        result.worn_s += float(worn_intervals_s(times, before_s=result.last_s).sum())
        result.first_s = float(times[0]) if result.first_s is None else result.first_s
        result.last_s = float(times[-1])
        result.samples += len(batch)
        bank.tick(float(times[0]))
        for alarm in bank.update([(patient_id, batch) for patient_id in ids]):
            if is_onset(alarm):
                result.runs[ids[alarm.patient_id]].onsets.append(alarm)
        if progress is not None:
            progress(len(batch))
    return result


def _shift(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60.0:+.1f} min"


def _wear(seconds: float) -> str:
    return f"{seconds / _DAY_S:.1f} days" if seconds >= _DAY_S else f"{seconds / 3600.0:.1f} h"


def comparison_table(
    rows: Sequence[ProfileRow], current: DetectionProfile | None = None
) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the comparison; ``current`` (the patient's profile) is starred."""
    headers = ["profile", "anaphylaxis-like (critical)", "flush", "alarms / worn day"]
    labelled = any(r.reactions or r.false_alarms for r in rows)
    if labelled:
        headers += ["reactions found", "vs the alarm they had", "false alarms raised again"]
    cells: list[list[str]] = []
    for r in rows:
        line = [
            f"{r.profile.value}{' *' if r.profile is current else ''}",
            f"{r.anaphylaxis} ({r.critical})",
            str(r.flush),
            "-" if r.per_worn_day is None else f"{r.per_worn_day:.2f}",
        ]
        if labelled:
            line += [
                f"{r.reactions_found}/{r.reactions}",
                _shift(r.median_shift_s),
                f"{r.false_alarms_raised}/{r.false_alarms}",
            ]
        cells.append(line)
    return headers, cells


def write_comparison(
    comparison: ProfileComparison,
    episodes: Sequence[ReviewedEpisode],
    out: IO[str],
    current: DetectionProfile | None = None,
) -> None:
    """The comparison as a plain-text table with a line on what was replayed."""
    headers, cells = comparison_table(comparison.rows(episodes), current)
    grid = [headers, *cells]
    widths = [max(len(line[i]) for line in grid) for i in range(len(headers))]
    for line in grid:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")
    out.write(
        f"{comparison.samples:,} samples, {_wear(comparison.worn_s)} of wear replayed from an "
        f"empty state (counted: episode onsets, not escalations; no alarm in the first "
        f"{WARMUP_S / 60.0:.0f} min of wear"
        + ("; * = the patient's profile" if current is not None else "")
        + ")\n"
    )


def comparison_json(
    comparison: ProfileComparison, episodes: Sequence[ReviewedEpisode]
) -> dict[str, Any]:
    """The comparison as JSON-able data (for scripts and dashboards)."""
    return {
        "samples": comparison.samples,
        "worn_days": round(comparison.worn_days, 4),
        "first_s": comparison.first_s,
        "last_s": comparison.last_s,
        "profiles": [
            {**asdict(row), "profile": row.profile.value} for row in comparison.rows(episodes)
        ],
    }
