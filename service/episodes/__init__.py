"""Episodes: detector alarms grouped into one record per physiological event, and signal states."""

from service.episodes.engine import EpisodeEngine, SignalKind
from service.episodes.processor import AlertingProcessor

__all__ = ["AlertingProcessor", "EpisodeEngine", "SignalKind"]
