"""Each patient's devices lined up in sample time before the detectors see them.

A detector folds samples in time order and skips one older than what it has already seen (the
bank counts it). A patient with two devices (a chest strap and a thermometer) has two streams,
and one device's batch can reach the ingest a cycle after the other's newer one: a gateway's
round split across two worker cycles, or its backlog drained after an outage. Handed over as
they came, the later device's readings were older than the detector's newest and were skipped:
most of a thermometer's, so a flush went unseen.

:class:`DeviceAlignment` holds a patient's samples that are newer than another of the patient's
devices has reported so far, for at most ``hold_s`` of ingest time, and hands them over in time
order once every device has caught up (a watermark per patient, as stream processors do). A
patient with one device is never held. A device that falls ``lag_s`` behind what was handed
over (switched off, put away, moved to another patient) stops holding the others back until it
reports again. A device never registered is expected from its gateway's first "online" status
(:meth:`DeviceAlignment.announce`), which comes before its first data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from flarewatch.const import MAX_SAMPLES_PER_BATCH
from flarewatch.payloads import Sample, SampleBatch
from service.const import ALIGN_DEVICE_LAG_S, ALIGN_HOLD_S

_NOT_YET: Final = -1
"""Newest sample time of a registered device that has not reported yet (older than any)."""


@dataclass(slots=True)
class _Waiting:
    arrived_s: float
    device_id: str
    sample: Sample


@dataclass(slots=True)
class _Patient:
    newest_ms: dict[str, int] = field(default_factory=dict)
    """Each device's newest sample time (ms) received."""
    waiting: list[_Waiting] = field(default_factory=list)
    released_ms: int | None = None
    """Newest sample time handed over so far."""


class DeviceAlignment:
    """A per-patient watermark over the patient's devices (see the module docstring)."""

    def __init__(self, hold_s: float = ALIGN_HOLD_S, lag_s: float = ALIGN_DEVICE_LAG_S) -> None:
        self.hold_s = hold_s
        self.lag_ms = int(lag_s * 1000)
        self._patients: dict[str, _Patient] = {}
        self._device_patient: dict[str, str] = {}
        self._known: set[str] = set()
        """Devices ever expected or reported (an announcement of one of them is not news)."""
        self.released_late = 0
        """Samples handed over because a device did not catch up within ``hold_s``."""

    @property
    def waiting(self) -> int:
        """Samples held back now."""
        return sum(len(p.waiting) for p in self._patients.values())

    def expect(self, patient_id: str, device_ids: Iterable[str]) -> None:
        """Devices registered to the patient, before any of them reported (the service started).

        Each holds the patient's first samples like a device that reported long ago, for at most
        ``hold_s``: after a restart the gateway's backlog may bring a thermometer's batch a cycle
        after the strap's. One that does not report in time stops holding.
        """
        patient = self._patients.setdefault(patient_id, _Patient())
        for device_id in device_ids:
            self._known.add(device_id)
            if device_id not in self._device_patient:
                self._device_patient[device_id] = patient_id
                patient.newest_ms[device_id] = _NOT_YET

    def announce(self, patient_id: str, device_id: str) -> None:
        """A device its gateway says is connected: expected (see ``expect``) if never seen.

        A device never registered was unknown until it reported, so the patient's other device
        was handed on without waiting, and the new one's first minute came too old for the
        detector: skipped. The gateway publishes a device's status when it connects, before its
        first data. Only a device never seen: one connected but silent, announced again at every
        status refresh, would hold the others back every time.
        """
        if device_id not in self._known:
            self.expect(patient_id, [device_id])

    def forget(self, patient_id: str) -> None:
        """Drop the patient's held samples and devices (their erasure)."""
        self._patients.pop(patient_id, None)
        self._device_patient = {
            device: patient
            for device, patient in self._device_patient.items()
            if patient != patient_id
        }

    def add(self, batches: Iterable[SampleBatch], now_s: float) -> None:
        """Take a cycle's new batches (received at ingest time ``now_s``)."""
        for batch in batches:
            moved_from = self._device_patient.get(batch.device_id)
            if moved_from is not None and moved_from != batch.patient_id:
                self._patients[moved_from].newest_ms.pop(batch.device_id, None)
            self._device_patient[batch.device_id] = batch.patient_id
            self._known.add(batch.device_id)
            patient = self._patients.setdefault(batch.patient_id, _Patient())
            newest = max(sample.time_ms for sample in batch.samples)
            patient.newest_ms[batch.device_id] = max(
                newest, patient.newest_ms.get(batch.device_id, newest)
            )
            patient.waiting.extend(
                _Waiting(now_s, batch.device_id, sample) for sample in batch.samples
            )

    def release(self, now_s: float) -> list[tuple[str, list[Sample]]]:
        """Samples every device of their patient has caught up with, or held long enough.

        Per patient in time order (a device's batch arriving too late to be held for is passed
        on as it is: the detector counts what it has to skip).
        """
        out = []
        for patient_id, patient in self._patients.items():
            samples = self._release(patient, now_s)
            if samples:
                out.append((patient_id, samples))
        return out

    def release_all(self) -> list[tuple[str, list[Sample]]]:
        """Everything held (at a shutdown without a checkpoint to keep it in)."""
        return self.release(float("inf"))

    def devices(self) -> dict[str, list[str]]:
        """The devices each patient is lined up across now (for the checkpoint: see ``expect``).

        Registered ones are expected again at a start; one learnt from its data alone was
        forgotten at a stop, and the other device's samples were handed on without waiting.
        """
        return {
            patient_id: sorted(patient.newest_ms)
            for patient_id, patient in self._patients.items()
            if len(patient.newest_ms) > 1
        }

    def held(self) -> list[SampleBatch]:
        """What is held now, as batches per device (for the checkpoint: see ``add`` to resume).

        Handed over at a stop, a device's held minute made the other device's minute, delivered
        after the restart, older than the detector's newest sample: skipped.
        """
        batches = []
        for patient_id, patient in self._patients.items():
            by_device: dict[str, list[Sample]] = {}
            for waiting in patient.waiting:
                by_device.setdefault(waiting.device_id, []).append(waiting.sample)
            for device_id, samples in by_device.items():
                samples.sort(key=lambda sample: sample.seq)
                for start in range(0, len(samples), MAX_SAMPLES_PER_BATCH):
                    part = tuple(samples[start : start + MAX_SAMPLES_PER_BATCH])
                    # not validated: a stop must not fail; the restore validates
                    batches.append(
                        SampleBatch.model_construct(
                            patient_id=patient_id, device_id=device_id, samples=part
                        )
                    )
        return batches

    def _release(self, patient: _Patient, now_s: float) -> list[Sample]:
        if not patient.waiting:
            return []
        # no device left to wait for (the only one moved to another patient): hand all over
        watermark = min(patient.newest_ms.values(), default=None)
        if watermark is None:
            watermark = max(w.sample.time_ms for w in patient.waiting)
        # a sample that arrived "after" now: the wall clock was stepped back (NTP), and how long
        # it waited is unknown; held until the clock read its arrival again, it would keep the
        # patient from the detectors for as long as the step (an hour)
        due = [
            w.sample.time_ms
            for w in patient.waiting
            if now_s - w.arrived_s >= self.hold_s or now_s < w.arrived_s
        ]
        if due and max(due) > watermark:
            late = max(due)
            self.released_late += sum(
                1 for w in patient.waiting if watermark < w.sample.time_ms <= late
            )
            watermark = late
        ready = [w for w in patient.waiting if w.sample.time_ms <= watermark]
        if not ready:
            return []
        patient.waiting = [w for w in patient.waiting if w.sample.time_ms > watermark]
        ready.sort(key=lambda w: w.sample.time_ms)
        newest = ready[-1].sample.time_ms
        patient.released_ms = max(newest, patient.released_ms or newest)
        for device_id, device_newest in list(patient.newest_ms.items()):
            if device_newest < patient.released_ms - self.lag_ms:
                del patient.newest_ms[device_id]
                if self._device_patient.get(device_id) is not None:
                    del self._device_patient[device_id]
        return [w.sample for w in ready]
