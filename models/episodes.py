"""Hysteresis of one kind of episode: onset after a persistent condition, end after a calm spell.

A latch turns a noisy per-sample condition into episodes: the onset condition must hold for
``persist_s`` before the episode starts, and the release condition for ``release_s`` before it
ends, so a continuing episode raises exactly one alarm and one resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LatchState(StrEnum):
    """Where an episode latch is; ``suppressed`` is an episode the confirmer rejected."""

    IDLE = "idle"
    PENDING = "pending"
    ACTIVE = "active"
    SUPPRESSED = "suppressed"


class LatchEvent(StrEnum):
    """What a latch step produced."""

    NONE = "none"
    ONSET = "onset"
    RESOLVED = "resolved"
    EXPIRED = "expired"
    """Closed after ``max_episode_s`` without a calm spell (active or suppressed): the level it
    settled at is the patient's state now, and the baselines must restart from it."""


@dataclass(slots=True)
class EpisodeLatch:
    """State of one episode kind for one patient (plain attributes, see :func:`advance`)."""

    state: LatchState = LatchState.IDLE
    since_s: float = 0.0
    release_since_s: float | None = None
    episode_no: int = 0
    severity_critical: bool = False

    @property
    def engaged(self) -> bool:
        """An episode is suspected or running: baselines must not learn from these samples."""
        return self.state is not LatchState.IDLE


def advance(
    latch: EpisodeLatch,
    time_s: float,
    onset: bool,
    release: bool,
    persist_s: float,
    release_s: float,
    max_episode_s: float,
) -> LatchEvent:
    """Move ``latch`` by one sample and say whether an episode started or ended."""
    state = latch.state
    if state is LatchState.IDLE:
        if onset:
            latch.state, latch.since_s = LatchState.PENDING, time_s
            state = LatchState.PENDING
        else:
            return LatchEvent.NONE
    if state is LatchState.PENDING:
        if not onset:
            latch.state = LatchState.IDLE
            return LatchEvent.NONE
        if time_s - latch.since_s < persist_s:
            return LatchEvent.NONE
        latch.state, latch.since_s, latch.release_since_s = LatchState.ACTIVE, time_s, None
        latch.episode_no += 1
        latch.severity_critical = False
        return LatchEvent.ONSET
    # ACTIVE or SUPPRESSED: wait for a calm spell (or give up after max_episode_s)
    if release and not onset:
        if latch.release_since_s is None:
            latch.release_since_s = time_s
    else:
        latch.release_since_s = None
    calm = latch.release_since_s is not None and time_s - latch.release_since_s >= release_s
    if calm:
        latch.state, latch.release_since_s = LatchState.IDLE, None
        return LatchEvent.RESOLVED if state is LatchState.ACTIVE else LatchEvent.NONE
    if time_s - latch.since_s >= max_episode_s:
        latch.state, latch.release_since_s = LatchState.IDLE, None
        return LatchEvent.EXPIRED
    return LatchEvent.NONE
