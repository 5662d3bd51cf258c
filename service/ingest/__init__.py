"""MQTT ingest: validate, deduplicate, store and hand samples to the processing hook."""

from service.ingest.service import IngestService
from service.ingest.stats import IngestStats

__all__ = ["IngestService", "IngestStats"]
