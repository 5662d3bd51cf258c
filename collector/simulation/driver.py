"""Runs a cohort in simulated time: as fast as possible or paced against an injected clock."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from collector.errors import SimulationError
from collector.outbox import DeviceGroup
from collector.simulation.cohort import Cohort
from collector.simulation.const import (
    MAX_CHUNK_MS,
    TICK_S,
)
from collector.sources.base import SampleSink, Source

log = logging.getLogger(__name__)


class GroupSink(Protocol):
    """A sink that stores readings of many devices in one transaction (the MQTT publisher)."""

    def submit_many(self, groups: Iterable[DeviceGroup]) -> object:
        """Store the groups durably."""
        ...


@dataclass
class SimulationProgress:
    """How far a simulation run has got (updated in place; read it for progress displays)."""

    simulated_ms: int
    end_ms: int | None
    generated: int = 0
    by_patient: dict[str, int] = field(default_factory=dict)
    """Samples generated per patient (those handed to the sink)."""


class SimulatedSource(Source):
    """Feeds a :class:`Cohort` to a sink from ``start_ms`` to ``end_ms`` at ``speed``.

    ``speed`` is simulated seconds per real second; ``0`` means as fast as the sink accepts.
    ``resume_ms`` maps a device id to the time of its newest stored sample (from the outbox),
    so a restarted gateway continues each device after it instead of repeating samples.
    """

    def __init__(
        self,
        cohort: Cohort,
        *,
        start_ms: int,
        end_ms: int | None,
        speed: float = 1.0,
        resume_ms: Mapping[str, int | None] | None = None,
        clock_s: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed < 0:
            raise SimulationError("speed must be 0 (as fast as possible) or positive")
        if speed == 0 and end_ms is None:
            raise SimulationError("running as fast as possible needs an end (--duration)")
        self.cohort = cohort
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.speed = speed
        self._clock_s = clock_s
        self._sleep = sleep
        resume = resume_ms or {}
        self._cursor = {
            p.profile.device_id: max(start_ms, (resume.get(p.profile.device_id) or -1) + 1)
            for p in cohort.patients
        }
        self.resumed_ms = {device: at for device, at in self._cursor.items() if at > start_ms}
        """Devices the outbox already had samples of after ``start_ms``: where each resumes.
        Their time before that is not generated again, by this configuration or any other."""
        self.progress = SimulationProgress(simulated_ms=min(self._cursor.values()), end_ms=end_ms)

    async def run(self, sink: SampleSink) -> None:
        """Generate and submit until ``end_ms`` (forever without an end) or cancellation."""
        submit_many = getattr(sink, "submit_many", None)
        began = self._clock_s()
        origin = self.progress.simulated_ms  # after a restart: the oldest device's resume point
        while True:
            if self.speed == 0:
                target = self.progress.simulated_ms + MAX_CHUNK_MS
            else:
                target = origin + round((self._clock_s() - began) * self.speed * 1000)
            if self.end_ms is not None:
                target = min(target, self.end_ms)
            groups = self._step(target)
            if groups:
                if submit_many is not None:
                    await asyncio.to_thread(submit_many, groups)
                else:
                    for patient_id, device_id, readings in groups:
                        await asyncio.to_thread(sink.submit, patient_id, device_id, readings)
            if self.end_ms is not None and self.progress.simulated_ms >= self.end_ms:
                return
            if self.speed != 0 and self.progress.simulated_ms >= target:
                await self._sleep(TICK_S)  # caught up with the paced clock
            elif not groups:
                await asyncio.sleep(0)

    def _step(self, target_ms: int) -> list[DeviceGroup]:
        groups: list[DeviceGroup] = []
        for patient in self.cohort.patients:
            device = patient.profile.device_id
            start = self._cursor[device]
            end = min(target_ms, start + MAX_CHUNK_MS)
            if end <= start:
                continue
            readings = patient.generate(start, end).readings()
            self._cursor[device] = end
            if readings:
                patient_id = patient.profile.patient_id
                groups.append((patient_id, device, readings))
                self.progress.generated += len(readings)
                by_patient = self.progress.by_patient
                by_patient[patient_id] = by_patient.get(patient_id, 0) + len(readings)
        self.progress.simulated_ms = min(self._cursor.values())
        return groups
