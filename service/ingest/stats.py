"""Counters of the ingest, updated by its threads and read as an immutable snapshot."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IngestStats:
    """What the ingest did since it started (for the live view, logs and benchmarks).

    Sample counts: ``received_samples`` = ``stored_samples`` + ``duplicate_samples`` (+ samples of
    batches the store refused, counted under ``rejected['store_refused']`` by message).
    """

    connected: bool = False
    received_messages: int = 0
    received_samples: int = 0
    stored_samples: int = 0
    duplicate_samples: int = 0
    seq_jumps: int = 0
    """Samples whose ``seq`` jumped away from their device's numbering (see ingest/dedup.py)."""
    rejected: Mapping[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    unacked_messages: int = 0
    store_writes: int = 0
    store_errors: int = 0
    store_failing: bool = False
    """The last store write failed (the store is down or refusing): nothing stored since."""
    store_latency_ms_last: float = 0.0
    store_latency_ms_max: float = 0.0
    processing_errors: int = 0
    stored_by_patient: Mapping[str, int] = field(default_factory=dict)
    rejected_by_patient: Mapping[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        """Messages rejected for any reason."""
        return sum(self.rejected.values())

    def summary(self) -> str:
        """One log line of counters (no health data)."""
        rejects = ",".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "0"
        return (
            f"connected={self.connected} messages={self.received_messages} "
            f"stored={self.stored_samples} duplicates={self.duplicate_samples} "
            f"seq_jumps={self.seq_jumps} "
            f"rejected={rejects} queue={self.queue_depth} unacked={self.unacked_messages} "
            f"writes={self.store_writes} store_errors={self.store_errors} "
            f"store_ms_last={self.store_latency_ms_last:.1f} "
            f"store_ms_max={self.store_latency_ms_max:.1f} "
            f"processing_errors={self.processing_errors}"
        )


class IngestCounters:
    """Mutable counters behind :class:`IngestStats`; every update takes one short lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connected = False
        self.received_messages = 0
        self.received_samples = 0
        self.stored_samples = 0
        self.duplicate_samples = 0
        self.seq_jumps = 0
        self.rejected: Counter[str] = Counter()
        self.store_writes = 0
        self.store_errors = 0
        self.store_failing = False
        self.store_latency_ms_last = 0.0
        self.store_latency_ms_max = 0.0
        self.processing_errors = 0
        self.stored_by_patient: Counter[str] = Counter()
        self.rejected_by_patient: Counter[str] = Counter()

    def reject(self, reason: str, patient_id: str | None) -> None:
        """Count one rejected message."""
        with self._lock:
            self.rejected[reason] += 1
            if patient_id is not None:
                self.rejected_by_patient[patient_id] += 1

    def cycle(
        self,
        *,
        messages: int,
        samples: int,
        duplicates: int,
        stored_by_patient: Mapping[str, int],
        seq_jumps: int = 0,
    ) -> None:
        """Count one worker cycle whose new samples were stored."""
        with self._lock:
            self.received_messages += messages
            self.received_samples += samples
            self.duplicate_samples += duplicates
            self.seq_jumps += seq_jumps
            self.stored_samples += sum(stored_by_patient.values())
            self.stored_by_patient.update(stored_by_patient)

    def store_write(self, latency_ms: float) -> None:
        """Count one accepted store write."""
        with self._lock:
            self.store_writes += 1
            self.store_failing = False
            self.store_latency_ms_last = latency_ms
            self.store_latency_ms_max = max(self.store_latency_ms_max, latency_ms)

    def store_error(self) -> None:
        """Count one failed store write."""
        with self._lock:
            self.store_errors += 1
            self.store_failing = True

    def processing_error(self) -> None:
        """Count one exception raised by the processing hook."""
        with self._lock:
            self.processing_errors += 1

    def snapshot(self, *, queue_depth: int, unacked_messages: int) -> IngestStats:
        """An immutable copy of every counter."""
        with self._lock:
            return IngestStats(
                connected=self.connected,
                received_messages=self.received_messages,
                received_samples=self.received_samples,
                stored_samples=self.stored_samples,
                duplicate_samples=self.duplicate_samples,
                seq_jumps=self.seq_jumps,
                rejected=dict(self.rejected),
                queue_depth=queue_depth,
                unacked_messages=unacked_messages,
                store_writes=self.store_writes,
                store_errors=self.store_errors,
                store_failing=self.store_failing,
                store_latency_ms_last=self.store_latency_ms_last,
                store_latency_ms_max=self.store_latency_ms_max,
                processing_errors=self.processing_errors,
                stored_by_patient=dict(self.stored_by_patient),
                rejected_by_patient=dict(self.rejected_by_patient),
            )
