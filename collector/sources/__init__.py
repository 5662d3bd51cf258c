"""Sources of wearable readings (BLE, simulator, replay) and the interface they share."""

from collector.sources.base import Reading, SampleSink, Source

__all__ = ["Reading", "SampleSink", "Source"]
