"""Episodes: detector alarms grouped into one record per physiological event, and signal states."""

from service.episodes.engine import EpisodeEngine
from service.episodes.processor import AlertingProcessor
from service.episodes.signals import SignalKind

__all__ = ["AlertingProcessor", "EpisodeEngine", "SignalKind"]
