"""Episodes: detector alarms grouped into one record per physiological event, and signal states."""

from service.episodes.engine import EpisodeEngine, SignalKind

__all__ = ["EpisodeEngine", "SignalKind"]
