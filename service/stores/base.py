"""The sample store interface: where validated samples are kept and read back.

One abstract base, one module per implementation (``influx``, ``sqlite``), chosen by
:func:`service.stores.factory.create_store`; every implementation passes the same contract suite
(``tests/test_store_contract.py``).

Contract every implementation keeps:

* ``write`` is idempotent: writing a sample (same device, same ``seq`` and time) again changes
  nothing, so at-least-once MQTT delivery can never create duplicates in the store;
* every sample can be found again by device and ``seq``;
* errors are raised as :class:`service.errors.StoreError` (``retryable`` tells whether to retry).
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from flarewatch.payloads import Sample, SampleBatch
from service.errors import StoreError

VitalValue = float | int | bool | str
"""A stored field value: numbers, ``contact_detected`` (bool), RR intervals (comma separated)."""

SAMPLE_FIELDS: Final = tuple(name for name in Sample.model_fields if name not in ("seq", "time_ms"))
"""The measured fields of a sample, in contract order."""

LATEST_VITAL_FIELDS: Final = (
    "heart_rate_bpm",
    "skin_temperature_c",
    "steps",
    "acceleration_g",
    "acceleration_sd_g",
    "contact_detected",
    "battery_percent",
)
"""Fields :meth:`SampleStore.latest_vitals` reports (what a live view or an alert message shows)."""


@dataclass(frozen=True, slots=True)
class StoredSample:
    """A sample read back from a store, with the patient and device it belongs to."""

    patient_id: str
    device_id: str
    sample: Sample


@dataclass(frozen=True, slots=True)
class Reading:
    """One field's most recent value and when it was measured (UTC epoch ms)."""

    time_ms: int
    value: VitalValue


@dataclass(frozen=True, slots=True)
class IntervalMeans:
    """One interval of a patient's samples reduced to the means a chart draws (None: no reading)."""

    start_ms: int
    """The interval's start (UTC epoch ms, a whole number of intervals since the epoch)."""
    heart_rate_bpm: float | None
    skin_temperature_c: float | None


@dataclass(frozen=True, slots=True)
class EncodedWrite:
    """A write prepared by :meth:`SampleStore.encode`: the batches and the store's own payload."""

    batches: tuple[SampleBatch, ...]
    samples: int
    payload: Any = None


def as_store_error(exc: Exception, store: str) -> StoreError:
    """``exc`` if it is a :class:`StoreError`, else a retryable one naming only where it came from.

    A store should raise nothing else; anything else is a bug or a failure it does not know. Its
    text may quote the data (vital values), so only its type and the line that raised it are kept.
    It counts as retryable: the messages stay unacknowledged (nothing lost) while it lasts.
    """
    if isinstance(exc, StoreError):
        return exc
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return StoreError(
        f"unexpected {type(exc).__name__}{where} (a bug: please report it)",
        store=store,
        retryable=True,
    )


class SampleStore(ABC):
    """Where samples are kept; thread-safe, so the ingest writes while a live view reads."""

    name: str = "store"

    @abstractmethod
    def prepare(self) -> None:
        """Create the database/tables if allowed and check that the store answers (idempotent)."""

    @abstractmethod
    def write(self, batches: Sequence[SampleBatch]) -> int:
        """Store every sample of ``batches`` (idempotent); returns the number of samples sent."""

    def encode(self, batches: Sequence[SampleBatch]) -> EncodedWrite:
        """Prepare a write (serialize, compress), possibly on another thread than the write.

        The ingest encodes the next batches while the previous write is in flight. Stores without
        costly serialization keep the default.
        """
        return EncodedWrite(tuple(batches), sum(len(b.samples) for b in batches))

    def write_encoded(self, encoded: EncodedWrite) -> int:
        """Store a prepared write (idempotent); returns the number of samples sent."""
        return self.write(encoded.batches)

    @abstractmethod
    def samples(
        self,
        *,
        patient_id: str | None = None,
        device_id: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        seq: int | None = None,
    ) -> list[StoredSample]:
        """Samples matching every filter (time in ``[start_ms, end_ms)``), by device then time."""

    @abstractmethod
    def interval_means(
        self, patient_id: str, start_ms: int, end_ms: int, interval_ms: int = 60_000
    ) -> list[IntervalMeans]:
        """Means of the patient's heart rate and skin temperature per interval, oldest first.

        Samples in ``[start_ms, end_ms)`` of every device of the patient, reduced by the store
        itself (a chart of hours reads hundreds of rows, not tens of thousands of samples), in
        intervals of ``interval_ms`` (whole seconds) counted from the epoch. Intervals with
        neither reading are left out.
        """

    @abstractmethod
    def count(self, *, patient_id: str | None = None, device_id: str | None = None) -> int:
        """Number of stored samples, optionally of one patient or device."""

    @abstractmethod
    def time_span_ms(self, patient_id: str) -> tuple[int, int] | None:
        """The patient's first and last sample times (UTC epoch ms); None if there is none."""

    @abstractmethod
    def erase_patient(self, patient_id: str) -> int:
        """Delete every sample of the patient, and any other record of them the store keeps.

        Returns how many samples there were. Idempotent: erasing again finds none. This is the
        sample side of ``flarewatch admin patient erase`` (a patient's right to erasure).
        """

    @abstractmethod
    def last_seqs(self) -> dict[str, int]:
        """Highest stored ``seq`` per device id."""

    @abstractmethod
    def recent_seqs(self, per_device: int) -> dict[str, list[int]]:
        """Stored ``seq`` numbers of each device's most recent samples, ascending.

        The highest one and about ``per_device`` recent others, as the store finds them without
        reading a device's whole history (the highest, or the newest in time). They seed the
        ingest's duplicate filter: which numberings a device used recently (one far ahead of the
        others is a jump, see ``service/ingest/dedup.py``).
        """

    @abstractmethod
    def latest_vitals(self, patient_id: str) -> Mapping[str, Reading]:
        """Most recent non-missing value of each of :data:`LATEST_VITAL_FIELDS` for a patient."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
