"""The per-patient processing hook: what the ingest hands over after every stored batch.

The ingest calls :meth:`Processor.process` once per worker cycle with every *new* (deduplicated,
already stored) sample batch of that cycle, in arrival order (so in ``seq`` order per device), and
the status messages received in the cycle. Detectors score the whole cycle at once, across patients,
instead of row by row. The hook is also called at least every ``PROCESS_TICK_S`` with an empty cycle
so that time-based logic (no data, escalation timers) runs on a quiet stream.

The hook runs on the ingest's worker thread: it must be quick (hand slow work such as push delivery
to its own thread). An exception is logged and counted by the ingest, never propagated: the samples
are already stored and acknowledged regardless.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flarewatch.payloads import DeviceStatus, GatewayStatus, SampleBatch
from service.stores.base import LATEST_VITAL_FIELDS, Reading


@dataclass(frozen=True, slots=True)
class IngestCycle:
    """What one worker cycle of the ingest stored and received.

    ``now_ms`` is the ingest clock (UTC epoch ms) at the end of the cycle: use it, not the wall
    clock, so tests can drive time.
    """

    now_ms: int
    batches: Sequence[SampleBatch] = ()
    device_statuses: Sequence[DeviceStatus] = ()
    gateway_statuses: Sequence[GatewayStatus] = ()

    @property
    def sample_count(self) -> int:
        """Number of new samples in the cycle."""
        return sum(len(batch.samples) for batch in self.batches)


class Processor(ABC):
    """Something that consumes the stream of stored samples (detectors, episode engine, views)."""

    @abstractmethod
    def process(self, cycle: IngestCycle) -> None:
        """Consume one ingest cycle; called from the ingest worker thread, never concurrently."""

    def close(self) -> None:  # noqa: B027 - optional hook, most processors hold nothing
        """Release resources when the ingest stops."""


class NullProcessor(Processor):
    """Does nothing: the ingest only stores."""

    def process(self, cycle: IngestCycle) -> None:
        """Ignore the cycle."""


class ProcessorChain(Processor):
    """Runs several processors in order, so views and detectors can share one ingest."""

    def __init__(self, processors: Sequence[Processor]) -> None:
        self.processors = tuple(processors)

    def process(self, cycle: IngestCycle) -> None:
        """Hand the cycle to every processor in turn."""
        for processor in self.processors:
            processor.process(cycle)

    def close(self) -> None:
        """Close every processor."""
        for processor in self.processors:
            processor.close()


@dataclass
class PatientView:
    """What a live view shows of one patient: latest vitals, samples seen, device states."""

    samples: int = 0
    vitals: dict[str, Reading] = field(default_factory=dict)
    devices: dict[str, DeviceStatus] = field(default_factory=dict)


class LatestVitalsProcessor(Processor):
    """Keeps every patient's latest vitals (by sample time) and device status in memory (live view).

    Thread-safe: the ingest worker updates it while a view thread reads :meth:`snapshot`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._patients: dict[str, PatientView] = {}
        self._gateways: dict[str, GatewayStatus] = {}

    def process(self, cycle: IngestCycle) -> None:
        """Fold the cycle's samples and statuses into the per-patient view."""
        with self._lock:
            for batch in cycle.batches:
                view = self._patients.setdefault(batch.patient_id, PatientView())
                view.samples += len(batch.samples)
                for sample in batch.samples:
                    for name in LATEST_VITAL_FIELDS:
                        value = getattr(sample, name)
                        known = view.vitals.get(name)
                        # newest by sample time: an outbox replayed late is not the latest
                        if value is not None and (known is None or sample.time_ms >= known.time_ms):
                            view.vitals[name] = Reading(sample.time_ms, value)
            for status in cycle.device_statuses:
                view = self._patients.setdefault(status.patient_id, PatientView())
                view.devices[status.device_id] = status
            for gateway in cycle.gateway_statuses:
                self._gateways[gateway.gateway_id] = gateway

    def snapshot(self) -> Mapping[str, PatientView]:
        """A copy of every patient's view, keyed by patient id."""
        with self._lock:
            return {
                patient: PatientView(view.samples, dict(view.vitals), dict(view.devices))
                for patient, view in self._patients.items()
            }

    def gateways(self) -> Mapping[str, GatewayStatus]:
        """Latest status of every gateway seen."""
        with self._lock:
            return dict(self._gateways)
